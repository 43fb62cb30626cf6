// SPDX-License-Identifier: Apache-2.0
// makeInformer (list + watch from the list's resourceVersion) over ConfigMaps with a label
// selector: the cache follows create, update and delete.
// Usage: node informer.mjs NAME
import assert from 'node:assert/strict';
import { k8s, kubeConfig, step, until, done } from './lib.mjs';

const name = process.argv[2];
const namespace = 'default';
const selector = `suite=${name}`;
const kc = kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const cm = (n, v) => ({ apiVersion: 'v1', kind: 'ConfigMap',
	metadata: { name: n, labels: { suite: name } }, data: { v } });

// one object exists before the informer starts: it must come from the initial list
await core.createNamespacedConfigMap({ namespace, body: cm(`${name}-a`, '1') });

const seen = [];
let error = null;
const inf = k8s.makeInformer(kc, '/api/v1/namespaces/default/configmaps',
	() => core.listNamespacedConfigMap({ namespace, labelSelector: selector }), selector);
inf.on('add', (o) => seen.push(['add', o.metadata.name]));
inf.on('update', (o) => seen.push(['update', o.metadata.name, o.data?.v]));
inf.on('delete', (o) => seen.push(['delete', o.metadata.name]));
inf.on('error', (e) => { error = e; });
step('start informer');
await inf.start();
const has = (...ev) => seen.some((s) => ev.every((x, i) => s[i] === x));
await until(() => has('add', `${name}-a`) || error, 10000, 'initial add');
assert.equal(error, null, `informer error: ${error}`);

step('create');
await core.createNamespacedConfigMap({ namespace, body: cm(`${name}-b`, '1') });
await until(() => has('add', `${name}-b`) || error, 10000, 'add b');
step('update');
const b = await core.readNamespacedConfigMap({ name: `${name}-b`, namespace });
b.data.v = '2';
await core.replaceNamespacedConfigMap({ name: `${name}-b`, namespace, body: b });
await until(() => has('update', `${name}-b`, '2') || error, 10000, 'update b');
step('delete');
await core.deleteNamespacedConfigMap({ name: `${name}-a`, namespace });
await until(() => has('delete', `${name}-a`) || error, 10000, 'delete a');
assert.equal(error, null, `informer error: ${error}`);
assert.deepEqual(inf.list(namespace).map((o) => o.metadata.name), [`${name}-b`]);
assert.equal(inf.get(`${name}-b`, namespace)?.data?.v, '2');
await inf.stop();
await core.deleteNamespacedConfigMap({ name: `${name}-b`, namespace });
done({ seen });
