// SPDX-License-Identifier: Apache-2.0
// AppsV1Api: create, list, read a Deployment; read and replace its scale subresource; delete.
// Usage: node apps.mjs NAME
import assert from 'node:assert/strict';
import { k8s, kubeConfig, step, expectApiError, done } from './lib.mjs';

const name = process.argv[2];
const namespace = 'default';
const apps = kubeConfig().makeApiClient(k8s.AppsV1Api);
const body = {
	apiVersion: 'apps/v1',
	kind: 'Deployment',
	metadata: { name, labels: { suite: name } },
	spec: {
		replicas: 2,
		selector: { matchLabels: { app: name } },
		template: {
			metadata: { labels: { app: name } },
			spec: { containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '3600'] }] },
		},
	},
};

step('create deployment');
const created = await apps.createNamespacedDeployment({ namespace, body });
assert.equal(created.metadata.name, name);
assert.ok(created.metadata.uid);
assert.ok(created.metadata.generation >= 1, 'generation set');
assert.equal(created.spec.replicas, 2);

step('list deployments');
const list = await apps.listNamespacedDeployment({ namespace, labelSelector: `suite=${name}` });
assert.equal(list.kind, 'DeploymentList');
assert.deepEqual(list.items.map((d) => d.metadata.name), [name]);
const all = await apps.listDeploymentForAllNamespaces({ fieldSelector: `metadata.name=${name}` });
assert.deepEqual(all.items.map((d) => d.metadata.name), [name]);

step('read deployment');
const read = await apps.readNamespacedDeployment({ name, namespace });
assert.equal(read.metadata.uid, created.metadata.uid);
assert.deepEqual(read.spec.selector.matchLabels, { app: name });

step('scale subresource');
const scale = await apps.readNamespacedDeploymentScale({ name, namespace });
assert.equal(scale.kind, 'Scale');
assert.equal(scale.spec.replicas, 2);
scale.spec.replicas = 5;
const scaled = await apps.replaceNamespacedDeploymentScale({ name, namespace, body: scale });
assert.equal(scaled.spec.replicas, 5);
const after = await apps.readNamespacedDeployment({ name, namespace });
assert.equal(after.spec.replicas, 5);

step('delete deployment');
await apps.deleteNamespacedDeployment({ name, namespace });
await expectApiError(apps.readNamespacedDeployment({ name, namespace }), 404, 'read deleted');

done({ uid: created.metadata.uid });
