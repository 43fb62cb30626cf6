# SPDX-License-Identifier: Apache-2.0
"""A minimal SPDY/3.1-over-WebSocket client (what kubectl >= 1.31 does for port-forward), to
drive the cases kubectl does not produce on demand: pings, streams without requestID (old
clients), bad and out-of-order streams, a half-close, GOAWAY.

Run as a script inside the node's netns: `spdyws.py HOST:PORT NS POD PORT REFUSED_PORT`; prints
one JSON object with what the server did. The header dictionary is read from lib/spdy.c."""
import base64
import json
import os
import re
import socket
import struct
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spdy_dict():
    src = open(os.path.join(ROOT, "lib", "spdy.c")).read()
    body = src[src.index("spdy_dict[] = {"):]
    body = body[:body.index("};")]
    return bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", body))


class WS:
    def __init__(self, addr, path, protocol):
        host, port = addr.split(":")
        self.s = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n"
                        "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.s.recv(1)
        self.status = head.split(b" ")[1].decode()
        self.headers = head.decode()
        self.buf = b""

    def send(self, data, op=2):
        mask = os.urandom(4)
        n = len(data)
        h = bytes([0x80 | op])
        if n < 126:
            h += bytes([0x80 | n])
        elif n < 65536:
            h += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            h += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d

    def recv(self):
        """(opcode, payload) of the next frame."""
        self._need(2)
        op, n = self.buf[0] & 0x0f, self.buf[1] & 0x7f
        o = 2
        if n == 126:
            self._need(4)
            n = struct.unpack(">H", self.buf[2:4])[0]
            o = 4
        elif n == 127:
            self._need(10)
            n = struct.unpack(">Q", self.buf[2:10])[0]
            o = 10
        self._need(o + n)
        p = self.buf[o:o + n]
        self.buf = self.buf[o + n:]
        return op, p


class Spdy:
    def __init__(self, ws):
        d = spdy_dict()
        self.ws = ws
        self.zout = zlib.compressobj(zdict=d)
        self.zin = zlib.decompressobj(zdict=d)
        self.buf = b""
        self.closed = None  # WebSocket close code once closed

    def control(self, typ, flags, payload):
        self.ws.send(struct.pack(">HHI", 0x8003, typ, flags << 24 | len(payload)) + payload)

    def syn_stream(self, sid, headers, fin=False):
        block = struct.pack(">I", len(headers))
        for k, v in headers.items():
            block += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + \
                v.encode()
        z = self.zout.compress(block) + self.zout.flush(zlib.Z_SYNC_FLUSH)
        self.control(1, 1 if fin else 0, struct.pack(">IIBB", sid, 0, 0, 0) + z)

    def data(self, sid, payload, fin=False):
        self.ws.send(struct.pack(">II", sid, (1 if fin else 0) << 24 | len(payload)) + payload)

    def frame(self):
        """The next SPDY frame: ("data", sid, flags, payload) or (type, sid, flags, payload);
        ("closed", code) when the WebSocket closes."""
        while True:
            if len(self.buf) >= 8:
                w0, w1 = struct.unpack(">II", self.buf[:8])
                n = w1 & 0xffffff
                if len(self.buf) >= 8 + n:
                    p, flags = self.buf[8:8 + n], w1 >> 24
                    self.buf = self.buf[8 + n:]
                    if not w0 & 0x80000000:
                        return ("data", w0, flags, p)
                    typ = w0 & 0xffff
                    sid = struct.unpack(">I", p[:4])[0] & 0x7fffffff
                    if typ == 2:  # SYN_REPLY: the block must decompress in our context
                        block = self.zin.decompress(p[4:])
                        assert struct.unpack(">I", block[:4])[0] == 0, block
                    return (typ, sid, flags, p)
            op, p = self.ws.recv()
            if op == 8:
                return ("closed", struct.unpack(">H", p[:2])[0] if len(p) >= 2 else None)
            if op == 2:
                self.buf += p


def main():
    addr, ns, pod, port, refused = sys.argv[1:6]
    res = {}
    ws = WS(addr, f"/api/v1/namespaces/{ns}/pods/{pod}/portforward",
            "SPDY/3.1+portforward.k8s.io")
    res["status"] = ws.status
    res["protocol"] = re.search(r"Sec-WebSocket-Protocol: (\S+)", ws.headers).group(1)
    s = Spdy(ws)
    # the client's ping comes back with its id
    s.control(6, 0, struct.pack(">I", 1))
    res["ping"] = list(s.frame()[:2])
    # an old client: no requestID, the pair is found from consecutive ids
    s.syn_stream(1, {"streamtype": "error", "port": port})
    s.syn_stream(3, {"streamtype": "data", "port": port})
    res["replies"] = [list(s.frame()[:2]), list(s.frame()[:2])]
    got = b""
    while not got.endswith(b"\n"):
        f = s.frame()
        assert f[:2] == ("data", 3), f
        got += f[3]
    res["greeting"] = got.decode()
    # a line and the half-close right behind it: the reply still comes, then both FINs
    s.data(3, b"abc\n", fin=True)
    got, fins = b"", set()
    while len(fins) < 2:
        f = s.frame()
        assert f[0] == "data" and f[1] in (1, 3), f
        got += f[3] if f[1] == 3 else b""
        assert f[1] == 3 or not f[3], f  # nothing on the error stream
        if f[2] & 1:
            fins.add(f[1])
    res["reply"] = got.decode()
    # a stream without port is refused (RST_STREAM CANCEL); an id not above the last one is a
    # protocol error
    s.syn_stream(5, {"streamtype": "data"})
    f = s.frame()
    res["no_port"] = [f[0], f[1], struct.unpack(">I", f[3][4:8])[0]]
    s.syn_stream(5, {"streamtype": "data", "port": port})
    f = s.frame()
    res["old_id"] = [f[0], f[1], struct.unpack(">I", f[3][4:8])[0]]
    # a refused port: kubelet's message on the error stream, then FIN on both
    s.syn_stream(7, {"streamtype": "error", "port": refused, "requestid": "x"})
    s.syn_stream(9, {"streamtype": "data", "port": refused, "requestid": "x"})
    res["replies2"] = [list(s.frame()[:2]), list(s.frame()[:2])]
    err, fins = b"", set()
    while len(fins) < 2:
        f = s.frame()
        assert f[0] == "data" and f[1] in (7, 9), f
        if f[1] == 7:
            err += f[3]
        else:
            assert not f[3], f
        if f[2] & 1:
            fins.add(f[1])
    res["error"] = err.decode()
    # GOAWAY: the server answers with its own and closes the WebSocket
    s.control(7, 0, struct.pack(">II", 9, 0))
    f = s.frame()
    res["goaway"] = [f[0], struct.unpack(">I", f[3][:4])[0]]
    res["close"] = list(s.frame())
    print(json.dumps(res))


if __name__ == "__main__":
    main()
