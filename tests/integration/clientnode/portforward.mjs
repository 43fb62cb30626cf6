// SPDX-License-Identifier: Apache-2.0
// PortForward over the WebSocket channel protocol (v4.channel.k8s.io) to a pod running
// `shoal-probe serve PORT` (greets "NAME CLIENT-IP", answers each line L with "NAME L").
// Usage: node portforward.mjs POD PORT REFUSED_PORT
import assert from 'node:assert/strict';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { k8s, kubeConfig, step, until, done } from './lib.mjs';

const [pod, portArg, refusedArg] = process.argv.slice(2);
const port = Number(portArg);
const refused = Number(refusedArg);
const kc = kubeConfig();

step('PortForward: greeting, lines both ways, close');
const out = new PassThrough();
const err = new PassThrough();
const input = new PassThrough();
let outText = '';
let errText = '';
out.on('data', (d) => { outText += d.toString(); });
err.on('data', (d) => { errText += d.toString(); });
const ws = await new k8s.PortForward(kc).portForward('default', pod, [port], out, err, input);
assert.equal(ws.protocol, 'v4.channel.k8s.io');
const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
await until(() => outText.includes('\n'), 20000, 'greeting');
// seen from the pod, the client is on its own loopback: the bytes went into its netns
assert.equal(outText, `${pod} 127.0.0.1\n`);
const want = [`${pod} 127.0.0.1`];
for (let i = 0; i < 50; i++) {
	input.write(`line ${i}\n`);
	want.push(`${pod} line ${i}`);
}
await until(() => outText.split('\n').length > want.length, 20000, '50 replies');
assert.equal(outText, want.join('\n') + '\n');
// v4 has no half-close: client-node closes the WebSocket when its input ends
input.end();
assert.equal(await closed, 1000);
assert.equal(errText, '');

step('raw channels: two ports, one refused');
const { WebSocketHandler } = await import(pathToFileURL(path.join(
	process.env.SHOAL_CLIENT_NODE_MODULES,
	'@kubernetes/client-node/dist/web-socket-handler.js')).href);
const msgs = { 0: [], 1: [], 2: [], 3: [] };
const raw = await new WebSocketHandler(kc).connect(
	`/api/v1/namespaces/default/pods/${pod}/portforward?ports=${port}&ports=${refused}`, null,
	(stream, buff) => { msgs[stream].push(Buffer.from(buff)); return true; });
const rawClosed = new Promise((resolve) => raw.on('close', (code) => resolve(code)));
// the first message of every channel is its port, 2 bytes little endian
await until(() => [0, 1, 2, 3].every((s) => msgs[s].length > 0), 20000, 'port prefixes');
const le = (p) => Buffer.from([p & 0xff, p >> 8]);
assert.deepEqual(msgs[0][0], le(port));
assert.deepEqual(msgs[1][0], le(port));
assert.deepEqual(msgs[2][0], le(refused));
assert.deepEqual(msgs[3][0], le(refused));
await until(() => msgs[3].length > 1, 20000, 'the refused port\'s error');
const refusedErr = Buffer.concat(msgs[3].slice(1)).toString();
assert.match(refusedErr, new RegExp(`^error forwarding port ${refused} to pod ${pod}, uid [0-9a-f-]+: ` +
	`failed to connect to localhost:${refused} inside the pod's network namespace`));
assert.equal(msgs[2].length, 1, 'no data on the refused port');
// the other port still works on the same WebSocket
await until(() => Buffer.concat(msgs[0].slice(1)).toString().includes('\n'), 20000, 'greeting 2');
raw.send(Buffer.concat([Buffer.from([0]), Buffer.from('ping\n')]));
await until(() => Buffer.concat(msgs[0].slice(1)).toString().includes(`${pod} ping\n`), 20000,
	'reply on the raw channel');
assert.equal(msgs[1].length, 1, 'no error on the working port');
raw.close();
assert.equal(await rawClosed, 1000);

done({ refusedErr });
