// SPDX-License-Identifier: Apache-2.0
// CoreV1Api patch with the client's default Content-Type (JSON patch in client-node 1.x) and with
// an explicit JSON merge patch and strategic merge patch.
// Usage: node patch.mjs NAME
import assert from 'node:assert/strict';
import { k8s, kubeConfig, step, done } from './lib.mjs';

const name = process.argv[2];
const namespace = 'default';
const core = kubeConfig().makeApiClient(k8s.CoreV1Api);

await core.createNamespacedConfigMap({
	namespace,
	body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { a: '1', b: '2' } },
});
try {
	step('merge patch');
	let cm = await core.patchNamespacedConfigMap(
		{ name, namespace, body: { data: { a: null, c: '3' } } },
		k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
	assert.deepEqual(cm.data, { b: '2', c: '3' });

	step('strategic merge patch');
	cm = await core.patchNamespacedConfigMap(
		{ name, namespace, body: { metadata: { labels: { s: 'yes' } } } },
		k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch));
	assert.equal(cm.metadata.labels.s, 'yes');

	step('default (JSON patch)');
	cm = await core.patchNamespacedConfigMap({
		name, namespace,
		body: [{ op: 'replace', path: '/data/b', value: 'two' }, { op: 'remove', path: '/data/c' }],
	});
	assert.deepEqual(cm.data, { b: 'two' });
} finally {
	await core.deleteNamespacedConfigMap({ name, namespace });
}
done();
