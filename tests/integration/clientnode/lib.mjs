// SPDX-License-Identifier: Apache-2.0
// Shared setup for the client-node scripts: load the unmodified @kubernetes/client-node from
// build/clients/node (SHOAL_CLIENT_NODE_MODULES) and a kubeconfig from KUBECONFIG.
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.SHOAL_CLIENT_NODE_MODULES;
if (!modules) throw new Error('SHOAL_CLIENT_NODE_MODULES is not set');
export const k8s = await import(
	pathToFileURL(path.join(modules, '@kubernetes/client-node/dist/index.js')).href);

export function kubeConfig() {
	const kc = new k8s.KubeConfig();
	kc.loadFromFile(process.env.KUBECONFIG);
	return kc;
}

export function step(msg, extra) {
	process.stderr.write(`step: ${msg}${extra === undefined ? '' : ' ' + JSON.stringify(extra)}\n`);
}

// Await `promise`, which must reject with an ApiException carrying HTTP `code`.
export async function expectApiError(promise, code, what) {
	let res;
	try {
		res = await promise;
	} catch (e) {
		assert.equal(e.code, code, `${what}: expected HTTP ${code}, got ${e.code}: ${e.body ?? e}`);
		const status = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
		assert.equal(status?.kind, 'Status', `${what}: error body is not a Status: ${e.body}`);
		assert.equal(status.code, code, `${what}: Status.code ${status.code}`);
		return status;
	}
	assert.fail(`${what}: expected HTTP ${code}, but the call succeeded: ${JSON.stringify(res)}`);
}

export function podManifest(name, labels = {}) {
	return {
		apiVersion: 'v1',
		kind: 'Pod',
		metadata: { name, labels: { suite: name, ...labels } },
		spec: { containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '3600'] }] },
	};
}

// Resolve when pred() is true, polling; reject after ms.
export async function until(pred, ms, what) {
	const end = Date.now() + ms;
	while (!pred()) {
		if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 20));
	}
}

export function done(result = {}) {
	process.stdout.write(JSON.stringify({ ok: true, ...result }) + '\n');
}

process.on('unhandledRejection', (e) => {
	process.stderr.write(`FAILED: ${e?.stack ?? e}\n`);
	process.exit(1);
});
