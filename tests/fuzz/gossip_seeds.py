# SPDX-License-Identifier: Apache-2.0
"""Seeds for tests/fuzz/fuzz_gossip.c: op scripts (op byte, little-endian length, bytes) that
seal valid SWIM packets (alive, suspect, dead, ping, ping-req, push-pull with states, refuse)
and open them as datagrams and stream frames, so the fuzzer starts past the codec's framing.
Run in tests/fuzz/corpus when the wire format changes."""
import struct, hashlib, os
def addr(ip=(10,0,0,2), port=7946):
    return bytes([4,0]) + struct.pack(">H", port) + bytes(ip) + bytes(12)
def msg(t, body, flags=0):
    return bytes([t, flags]) + struct.pack(">H", len(body)) + body
def ping(seq, target, frm): return msg(1, struct.pack(">I", seq) + bytes([len(target), len(frm), 0, 0]) + target + frm)
def ack(seq, t=2): return msg(t, struct.pack(">I", seq))
def pingreq(seq, target, frm): return msg(4, struct.pack(">I", seq) + addr() + bytes([len(target), len(frm), 0, 0]) + target + frm, 1)
def alive(inc, inst, name, meta=b'{"podCIDR":"10.244.2.0/24"}'):
    return msg(5, struct.pack(">IQ", inc, inst) + addr() + bytes([len(name), 0]) + struct.pack(">H", len(meta)) + name + meta)
def suspect(t, inc, name, frm): return msg(t, struct.pack(">I", inc) + bytes([len(name), len(frm), 0, 0]) + name + frm)
def pushpull(inst, count, name, flags=1): return msg(8, struct.pack(">QI", inst, count) + bytes([len(name), 0, 0, 0]) + name, flags)
def state(inc, inst, name, st, meta=b"{}"):
    return msg(9, struct.pack(">IQ", inc, inst) + addr() + bytes([len(name), st]) + struct.pack(">H", len(meta)) + name + meta)
def refuse(inst, name): return msg(10, struct.pack(">Q", inst) + bytes([1, len(name), 0, 0]) + name)
H = bytes([0xa7, 1, 0, 0])
me, n2, n3 = b"fuzz-node", b"n2", b"n3"
pkts = [
    [H + alive(1, 2, n2), H + suspect(6, 1, n2, n3), H + suspect(7, 1, n2, n3), H + alive(2, 2, n2)],
    [H + ping(7, me, n2) + alive(1, 2, n2)],
    [H + alive(1, 2, n2) + alive(1, 3, n3), H + pingreq(9, n3, n2), H + ack(9), H + ack(9, 3)],
    [H + pushpull(2, 3, n2) + state(1, 2, n2, 0) + state(4, 3, n3, 1) + state(1, 5, b"n4", 2)],
    [H + suspect(6, 1, me, n2), H + suspect(7, 1, me, n2), H + alive(1, 99, me)],
    [H + refuse(5, me), H + pushpull(2, 0, n2, 3)],
]
for i, script in enumerate(pkts):
    data = b""
    for p in script:
        data += bytes([2]) + struct.pack("<H", len(p)) + p
        data += bytes([6]) + struct.pack("<H", len(p)) + p   # also as a stream frame
    data += bytes([3, 1, 0, 0])  # replay slot 0
    name = hashlib.sha1(data).hexdigest()
    open(name, "wb").write(data)
    print(name, len(data))
