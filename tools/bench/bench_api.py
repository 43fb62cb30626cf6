#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""API benchmark (issue 2): a real shoald in its own netns, driven over its unix socket with
keep-alive HTTP/1.1 (pipelined, so the client is not the bottleneck).

Creates go through build/bench/api-load (tools/bench/api_load.c, 64 requests in flight on one
connection; `--client python`: the same pipelining from Python, Conn.pipeline below, which
costs the shared cores several times as much CPU a request).

Measures: creates/s, list of N pods (ms), write-to-100-watches latency (p50/p99 ms), daemon RSS
with N pods stored. Prints the store-only floor when build/bench-store exists.

usage: bench_api.py [--pods 10000] [--watchers 100] [--writes 200] [--client c|python]
"""
import argparse
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from shoaltest import BUILD, Shoald  # noqa: E402

PODS = "/api/v1/namespaces/default/pods"
API_LOAD = os.path.join(BUILD, "bench", "api-load")
CLIENTS = ("c", "python")


def pod_body(i):
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"bench-{i:06d}", "labels": {"app": "bench", "shard": str(i % 10)}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                 "command": ["sleep", "infinity"],
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }).encode()


def request(method, path, body=b"", ctype="application/json"):
    head = f"{method} {path} HTTP/1.1\r\nHost: shoal\r\nAccept: application/json\r\n"
    if body:
        head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class Conn:
    """One keep-alive connection; responses parsed by Content-Length."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = bytearray()  # amortised appends: a 7 MB list must not cost the client

    def read_response(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = self.buf[:i].decode("latin-1")
                status = int(head.split(" ", 2)[1])
                clen = 0
                for line in head.split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    if k.lower() == "content-length":
                        clen = int(v)
                if len(self.buf) >= i + 4 + clen:
                    body = bytes(self.buf[i + 4:i + 4 + clen])
                    del self.buf[:i + 4 + clen]
                    return status, body
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def pipeline(self, reqs, window=64):
        """Send reqs keeping `window` in flight; returns the statuses."""
        out, sent = [], 0
        while sent < len(reqs) and sent < window:
            self.s.sendall(reqs[sent])
            sent += 1
        while len(out) < len(reqs):
            st, _ = self.read_response()
            out.append(st)
            if sent < len(reqs):
                self.s.sendall(reqs[sent])
                sent += 1
        return out

    def close(self):
        self.s.close()


def pipelined_creates(sock, path, bodies, client="c", window=64, conns=1):
    """POST each body to path on one keep-alive connection to the unix socket sock, `window`
    requests in flight; raises unless every answer is 201. Returns (creates/s, the client's CPU
    seconds from the first send to the last answer). client "c" runs build/bench/api-load (which
    can also split the bodies over `conns` connections, `window` in flight on each), "python"
    Conn.pipeline in this process (time.process_time: it has no other threads then)."""
    if client == "python":
        if conns != 1:
            raise ValueError("the Python client uses one connection")
        reqs = [request("POST", path, b) for b in bodies]
        c = Conn(sock)
        cpu0, t0 = time.process_time(), time.perf_counter()
        statuses = c.pipeline(reqs, window=window)
        dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        c.close()
        bad = [s for s in statuses if s != 201]
        if bad:
            raise RuntimeError(f"{len(bad)} creates failed (first status {bad[0]})")
        return len(bodies) / dt, cpu
    if client != "c":
        raise ValueError(f"client {client!r}: one of {CLIENTS}")
    if not os.path.exists(API_LOAD):
        sys.exit(f"{API_LOAD} missing: make {os.path.relpath(API_LOAD, ROOT)} "
                 "(or --client python)")
    with tempfile.NamedTemporaryFile(prefix="api-load-", suffix=".jsonl") as f:
        for b in bodies:
            if b"\n" in b:
                raise ValueError("api-load takes one body a line")
            f.write(b + b"\n")
        f.flush()
        r = subprocess.run([API_LOAD, "--socket", sock, "--path", path, "--window", str(window),
                            "--conns", str(conns), "--expect", "201", "--bodies", f.name],
                           capture_output=True, text=True, timeout=3600)
    if r.returncode:
        raise RuntimeError(f"api-load exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    out = json.loads(r.stdout)
    if out["requests"] != len(bodies) or out["bad"]:
        raise RuntimeError(f"api-load: {r.stdout.strip()}")
    return out["rate"], out["cpu_user_s"] + out["cpu_sys_s"]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bench_creates(d, n, client):
    """(creates/s, the client's CPU seconds)"""
    return pipelined_creates(d.socket, PODS, [pod_body(i) for i in range(n)], client)


def bench_list(d, rounds=7):
    c = Conn(d.socket)
    times, size, count = [], 0, 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        c.s.sendall(request("GET", PODS))
        st, body = c.read_response()
        times.append((time.perf_counter() - t0) * 1000)
        assert st == 200
        size = len(body)
    count = len(json.loads(body)["items"])
    c.close()
    return statistics.median(times), max(times), count, size


def bench_watch(d, watchers, writes):
    sel = selectors.DefaultSelector()
    socks = []
    rv = json.loads(Conn_get(d, PODS + "?limit=1"))["metadata"]["resourceVersion"]
    for i in range(watchers):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket)
        s.sendall(request("GET", PODS + f"?watch=1&resourceVersion={rv}"
                          "&fieldSelector=metadata.name%3Dbench-000000"))
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, i)
    # wait for every response header
    pending = set(range(watchers))
    bufs = [b""] * watchers
    deadline = time.time() + 10
    while pending and time.time() < deadline:
        for key, _ in sel.select(0.5):
            i = key.data
            bufs[i] += key.fileobj.recv(65536)
            if b"\r\n\r\n" in bufs[i]:
                pending.discard(i)
                bufs[i] = bufs[i].split(b"\r\n\r\n", 1)[1]
    writer = Conn(d.socket)
    lat = []
    for w in range(writes):
        marker = f"m{w}x".encode()
        body = json.dumps({"metadata": {"annotations": {"bench": marker.decode()}}}).encode()
        got = set()
        t0 = time.perf_counter()
        writer.s.sendall(request("PATCH", PODS + "/bench-000000", body,
                                 "application/merge-patch+json"))
        while len(got) < watchers:
            for key, _ in sel.select(5):
                i = key.data
                if i in got:
                    key.fileobj.recv(1 << 20)
                    continue
                bufs[i] += key.fileobj.recv(1 << 20)
                if marker in bufs[i]:
                    lat.append((time.perf_counter() - t0) * 1000)
                    got.add(i)
                    bufs[i] = b""
        st, _ = writer.read_response()
        assert st == 200, st
        time.sleep(0.002)
    writer.close()
    for s in socks:
        sel.unregister(s)
        s.close()
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1], lat[-1]


def Conn_get(d, path):
    c = Conn(d.socket)
    c.s.sendall(request("GET", path))
    st, body = c.read_response()
    c.close()
    return body


def store_floor(pods):
    exe = os.path.join(BUILD, "bench-store")
    if not os.path.exists(exe):
        return None
    r = subprocess.run([exe, str(pods)], capture_output=True, text=True, timeout=600)
    return (r.stdout + r.stderr).strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--client", choices=CLIENTS, default="c",
                    help="who sends the creates: build/bench/api-load or this Python process")
    a = ap.parse_args()

    d = Shoald(node="shoal-api-bench", extra_args=["--log-level", "info"])
    try:
        d.start()
        rss0 = rss_kib(d.proc.pid)
        rate, ccpu = bench_creates(d, a.pods, a.client)
        print(f"creates: {a.pods} pods at {rate:,.0f}/s (pipelined keep-alive, 1 connection; "
              f"{a.client} client, its CPU {1e6 * ccpu / a.pods:.0f} us a create)"
              f"  [goal >= 5,000/s]")
        med, worst, count, size = bench_list(d)
        print(f"list: {count} pods, {size / 1e6:.1f} MB, median {med:.1f} ms, max {worst:.1f} ms"
              f"  [goal <= 100 ms]")
        p50, p99, pmax = bench_watch(d, a.watchers, a.writes)
        print(f"watch fan-out: {a.writes} writes x {a.watchers} watches: p50 {p50:.2f} ms, "
              f"p99 {p99:.2f} ms, max {pmax:.2f} ms  [goal p99 <= 10 ms]")
        rss = rss_kib(d.proc.pid)
        print(f"rss: {rss / 1024:.1f} MB with {count} pods (idle start {rss0 / 1024:.1f} MB)"
              f"  [goal <= 64 MB]")
        floor = store_floor(a.pods)
        if floor:
            print("store-only floor (build/bench-store):")
            print("  " + floor.replace("\n", "\n  "))
        else:
            print("store-only floor: build/bench-store not built")
    finally:
        d.close()


if __name__ == "__main__":
    main()
