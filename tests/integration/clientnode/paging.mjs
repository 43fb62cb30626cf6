// SPDX-License-Identifier: Apache-2.0
// List with limit/continue pages through every object exactly once; deletecollection with a
// label selector removes exactly the selected objects.
// Usage: node paging.mjs NAME
import assert from 'node:assert/strict';
import { k8s, kubeConfig, step, done } from './lib.mjs';

const name = process.argv[2];
const namespace = 'default';
const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
const labelSelector = `suite=${name}`;
const N = 7;

step('create');
for (let i = 0; i < N; i++) {
	await core.createNamespacedConfigMap({
		namespace,
		body: { apiVersion: 'v1', kind: 'ConfigMap',
			metadata: { name: `${name}-${i}`, labels: { suite: name, odd: String(i % 2) } },
			data: { i: String(i) } },
	});
}

step('page with limit=3');
const names = [];
let cont;
let pages = 0;
do {
	const page = await core.listNamespacedConfigMap({ namespace, labelSelector, limit: 3,
		_continue: cont });
	assert.ok(page.items.length <= 3, `page of ${page.items.length} > limit`);
	names.push(...page.items.map((c) => c.metadata.name));
	cont = page.metadata._continue;
	pages++;
	assert.ok(pages <= N, 'continue token never ends');
} while (cont);
assert.equal(pages, 3, `pages: ${pages}`);
assert.deepEqual([...names].sort(), Array.from({ length: N }, (_, i) => `${name}-${i}`).sort());

step('deletecollection odd=1');
await core.deleteCollectionNamespacedConfigMap({ namespace,
	labelSelector: `${labelSelector},odd=1` });
const left = await core.listNamespacedConfigMap({ namespace, labelSelector });
assert.deepEqual(left.items.map((c) => c.metadata.name).sort(),
	[0, 2, 4, 6].map((i) => `${name}-${i}`));
await core.deleteCollectionNamespacedConfigMap({ namespace, labelSelector });
assert.equal((await core.listNamespacedConfigMap({ namespace, labelSelector })).items.length, 0);
done({ pages });
