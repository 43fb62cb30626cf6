// SPDX-License-Identifier: Apache-2.0
// Watch /api/v1/namespaces/default/pods and see ADDED, MODIFIED, DELETED for a pod this script
// creates, replaces and deletes; then resume a watch from an older resourceVersion.
// Usage: node watch.mjs NAME
import assert from 'node:assert/strict';
import { k8s, kubeConfig, step, podManifest, until, done } from './lib.mjs';

const name = process.argv[2];
const namespace = 'default';
const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const path = '/api/v1/namespaces/default/pods';

const events = [];
let watchErr = null;
let closed = false;
step('start watch');
const ctl = await new k8s.Watch(kc).watch(path, {},
	(type, obj) => {
		if (obj?.metadata?.name === name)
			events.push({ type, rv: obj.metadata.resourceVersion, labels: obj.metadata.labels });
	},
	(err) => {
		closed = true;
		watchErr = err;
	});
assert.ok(!closed, `watch ended at once: ${watchErr}`);

step('create');
const created = await core.createNamespacedPod({ namespace, body: podManifest(name) });
await until(() => events.some((e) => e.type === 'ADDED') || closed, 10000, 'ADDED');
assert.ok(!closed, `watch closed: ${watchErr}`);
const added = events.find((e) => e.type === 'ADDED');
assert.equal(added.rv, created.metadata.resourceVersion, 'ADDED carries the created object');

step('replace');
const cur = await core.readNamespacedPod({ name, namespace });
cur.metadata.labels.phase = 'two';
await core.replaceNamespacedPod({ name, namespace, body: cur });
await until(() => events.some((e) => e.type === 'MODIFIED' && e.labels?.phase === 'two') ||
	closed, 10000, 'MODIFIED');
assert.ok(!closed, `watch closed: ${watchErr}`);

step('delete');
await core.deleteNamespacedPod({ name, namespace });
await until(() => events.some((e) => e.type === 'DELETED') || closed, 15000, 'DELETED');
assert.ok(!closed, `watch closed: ${watchErr}`);
ctl.abort();
const types = events.map((e) => e.type);
assert.equal(types[0], 'ADDED', `first event: ${types}`);
assert.equal(types[types.length - 1], 'DELETED', `last event: ${types}`);
assert.ok(types.indexOf('MODIFIED') > 0, `MODIFIED between: ${types}`);

step('resume from the resourceVersion of the create: replays the later events');
const replay = [];
let rclosed = false;
const ctl2 = await new k8s.Watch(kc).watch(path,
	{ resourceVersion: created.metadata.resourceVersion },
	(type, obj) => {
		if (obj?.metadata?.name === name) replay.push(type);
	},
	(err) => {
		rclosed = true;
		watchErr = err;
	});
await until(() => replay.includes('DELETED') || rclosed, 10000, 'replayed DELETED');
ctl2.abort();
assert.ok(!replay.includes('ADDED'), `resumed watch must not replay the ADDED: ${replay}`);
assert.ok(replay.includes('MODIFIED'), `resumed watch replays MODIFIED: ${replay}`);

done({ events: types, replay });
