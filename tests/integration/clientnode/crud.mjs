// SPDX-License-Identifier: Apache-2.0
// CoreV1Api: list, create, read, replace, delete a namespaced pod; list nodes and namespaces.
// Usage: node crud.mjs NAME
import assert from 'node:assert/strict';
import { k8s, kubeConfig, step, expectApiError, podManifest, done } from './lib.mjs';

const name = process.argv[2];
const namespace = 'default';
const core = kubeConfig().makeApiClient(k8s.CoreV1Api);

step('list pods');
const before = await core.listNamespacedPod({ namespace });
assert.equal(before.kind, 'PodList');
assert.ok(Array.isArray(before.items));
assert.ok(before.metadata.resourceVersion, 'list has a resourceVersion');
assert.ok(!before.items.some((p) => p.metadata.name === name), 'pod exists before create');

step('create pod');
const created = await core.createNamespacedPod({ namespace, body: podManifest(name) });
assert.equal(created.metadata.name, name);
assert.equal(created.metadata.namespace, namespace);
assert.ok(created.metadata.uid, 'uid set');
assert.ok(created.metadata.resourceVersion, 'resourceVersion set');
assert.ok(created.metadata.creationTimestamp instanceof Date &&
	!isNaN(created.metadata.creationTimestamp), 'creationTimestamp parses as a date');
assert.equal(created.spec.restartPolicy, 'Always', 'restartPolicy defaulted');

step('create again -> 409 AlreadyExists');
const st = await expectApiError(core.createNamespacedPod({ namespace, body: podManifest(name) }),
	409, 'duplicate create');
assert.equal(st.reason, 'AlreadyExists');

step('read pod');
const read = await core.readNamespacedPod({ name, namespace });
assert.equal(read.metadata.uid, created.metadata.uid);
assert.equal(read.spec.containers[0].image, 'busybox:1.36');
assert.deepEqual(read.spec.containers[0].command, ['sleep', '3600']);

step('list with labelSelector and fieldSelector');
const sel = await core.listNamespacedPod({ namespace, labelSelector: `suite=${name}` });
assert.deepEqual(sel.items.map((p) => p.metadata.name), [name]);
const fsel = await core.listPodForAllNamespaces({ fieldSelector: `metadata.name=${name}` });
assert.deepEqual(fsel.items.map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
	[`${namespace}/${name}`]);
const none = await core.listNamespacedPod({ namespace, labelSelector: `suite=${name},nope=1` });
assert.equal(none.items.length, 0);

step('replace pod (PUT)');
read.metadata.labels.replaced = 'yes';
const replaced = await core.replaceNamespacedPod({ name, namespace, body: read });
assert.equal(replaced.metadata.labels.replaced, 'yes');
assert.notEqual(replaced.metadata.resourceVersion, read.metadata.resourceVersion);
step('replace with the stale resourceVersion -> 409 Conflict');
const conflict = await expectApiError(core.replaceNamespacedPod({ name, namespace, body: read }),
	409, 'stale replace');
assert.equal(conflict.reason, 'Conflict');

step('nodes and namespaces');
const nodes = await core.listNode();
assert.ok(nodes.items.length >= 1, 'at least this node');
const node = nodes.items.find((n) => n.metadata.name === process.env.SHOAL_NODE);
assert.ok(node, `node ${process.env.SHOAL_NODE} listed`);
assert.ok(node.status.capacity.cpu && node.status.capacity.memory && node.status.capacity.pods);
const nss = await core.listNamespace();
assert.ok(nss.items.some((n) => n.metadata.name === 'default'), 'namespace default exists');

step('delete pod');
const del = await core.deleteNamespacedPod({ name, namespace });
assert.ok(del, 'delete returned a body');
step('read deleted pod -> 404 NotFound');
let gone = false;
for (let i = 0; i < 100 && !gone; i++) {
	try {
		await core.readNamespacedPod({ name, namespace });
		await new Promise((r) => setTimeout(r, 100)); // graceful deletion may take a moment
	} catch (e) {
		assert.equal(e.code, 404, `read after delete: ${e.body ?? e}`);
		const s = JSON.parse(e.body);
		assert.equal(s.reason, 'NotFound');
		assert.equal(s.details?.name, name);
		assert.equal(s.details?.kind, 'pods');
		gone = true;
	}
}
assert.ok(gone, 'pod still readable 10 s after delete');
await expectApiError(core.deleteNamespacedPod({ name, namespace }), 404, 'delete missing pod');

done({ uid: created.metadata.uid });
