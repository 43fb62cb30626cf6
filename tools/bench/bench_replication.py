#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Replication on a real devcluster (issue 11's performance goals, beside the simulator's half
of `make bench-replication`).

In one run:
  1. creates/s of N configmaps on a lone node, then on one node of a 5-node cluster (the same
     pipelined client as bench_api.py: 64 requests in flight on one keep-alive connection,
     build/bench/api-load or with --client python the Python one, the same in both runs; the
     client shares the cores with the daemons, so its CPU a create is printed too; with
     --stream-probe MS also write -> visible during the cluster's creates: a create on the
     writer every MS ms on a connection of its own, watched on every other node with a label
     selector that only the probes match);
  2. write -> visible on every node: one watch on each other node, creates on n1 20 ms apart,
     latency = from sending the POST until the LAST watcher read the ADDED event;
  3. the cluster filled to --objects configmaps: the time until every node holds them, and each
     daemon's RSS;
  4. a new node joins: the time from its start until its replica holds everything.

    make bench-replication [BENCH_REPL_ARGS="--objects 100000 --creates 5000"]
"""
import argparse
import http.client
import importlib.machinery
import importlib.util
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from bench_api import CLIENTS, Conn, pipelined_creates, request, rss_kib  # noqa: E402

_loader = importlib.machinery.SourceFileLoader("devcluster_tool",
                                               os.path.join(ROOT, "tools", "devcluster"))
_spec = importlib.util.spec_from_loader("devcluster_tool", _loader)
dc = importlib.util.module_from_spec(_spec)
_loader.exec_module(dc)

NS = "default"
CMS = f"/api/v1/namespaces/{NS}/configmaps"


def cm_body(name, size=200):
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": {"app": "bench-repl"}},
                       "data": {"payload": "x" * size}}).encode()


def create_many(nd, names, client="c", window=64, conns=1):
    """Pipelined creates on one node; returns (creates/s, the client's CPU seconds)."""
    return pipelined_creates(nd.socket, CMS, [cm_body(n) for n in names], client, window,
                             conns)


def client_cpu(client, cpu, n, rate):
    """The client's CPU a create and its share of one core while it ran."""
    return (f"{client} client's CPU {cpu:.2f} s ({1e6 * cpu / n:.0f} us a create, "
            f"{100 * cpu * rate / n:.0f} % of a core)")


def loop_time(ss0, ss1, wall):
    """Where a daemon's event loop spent the creates' wall time (its main thread's schedstat)."""
    if not ss0 or not ss1:
        return "loop: no schedstat"
    run, wait = ss1[0] - ss0[0], ss1[1] - ss0[1]
    return (f"loop {run:.2f} s on a CPU, {wait:.2f} s waiting for one, "
            f"{max(0.0, wall - run - wait):.2f} s idle of {wall:.2f} s")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Watcher(threading.Thread):
    """A watch on one node's configmaps: the monotonic time each name's ADDED event arrived."""

    def __init__(self, nd, selector=""):
        super().__init__(daemon=True)
        self.nd, self.seen, self.ready = nd, {}, threading.Event()
        self.stop, self.selector = False, selector

    def run(self):
        st, body = self.nd.api("GET", CMS + "?limit=1")
        rv = json.loads(body)["metadata"]["resourceVersion"]

        class UConn(http.client.HTTPConnection):
            def connect(conn):
                conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.sock.connect(self.nd.socket)

        c = UConn("localhost")
        sel = f"&labelSelector={self.selector}" if self.selector else ""
        c.request("GET", f"{CMS}?watch=1&resourceVersion={rv}&allowWatchBookmarks=false{sel}",
                  headers={"Accept": "application/json"})
        r = c.getresponse()
        self.ready.set()
        while not self.stop:
            line = r.readline()
            if not line:
                break
            t = time.monotonic()
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("type") == "ADDED":
                self.seen.setdefault(ev["object"]["metadata"]["name"], t)
        c.close()


def write_to_visible(nodes, writer, count, gap, selector="", until=None, ready=None, go=None):
    """Creates on writer gap s apart (count of them, or while until() is false), each watched
    on every other node (with selector, a label selector its bodies match); returns the
    latencies in ms (until the LAST watcher read the ADDED event) and how many were never seen
    everywhere; ready, go: events set once the watches are registered, waited before the
    first write."""
    others = [nd for nd in nodes if nd is not writer]
    ws = [Watcher(nd, selector) for nd in others]
    for w in ws:
        w.start()
    for w in ws:
        w.ready.wait(30)
    time.sleep(0.5)  # the watches are registered before the first write
    conn = Conn(writer.socket)
    if ready:
        ready.set()
    if go:
        go.wait()
    sent = {}
    tag = secrets.token_hex(3)
    i = 0
    while (until is None and i < count) or (until is not None and not until()):
        name = f"lat-{tag}-{i:04d}"
        sent[name] = time.monotonic()
        body = cm_body(name, 100)
        if selector:
            body = body.replace(b'"app": "bench-repl"', b'"app": "bench-probe"')
        conn.s.sendall(request("POST", CMS, body))
        st, _ = conn.read_response()
        if st != 201:
            raise RuntimeError(f"create {name}: {st}")
        time.sleep(gap)
        i += 1
    count = i
    conn.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(len(w.seen) >= count for w in ws):
        time.sleep(0.05)
    lat, missing = [], 0
    for name, t0 in sent.items():
        ts = [w.seen.get(name) for w in ws]
        if None in ts:
            missing += 1
        else:
            lat.append((max(ts) - t0) * 1000)
    for w in ws:
        w.stop = True
    return lat, missing


class LoopProbe(threading.Thread):
    """A small GET on one node every 20 ms on a keep-alive connection: how long its event loop
    keeps a request waiting (the API, gossip and replication share the loop)."""

    def __init__(self, nd, path):
        super().__init__(daemon=True)
        self.nd, self.path, self.lat, self.stop = nd, path, [], False

    def run(self):
        c = None
        while not self.stop:
            try:
                if c is None:
                    c = Conn(self.nd.socket)
                t0 = time.monotonic()
                c.s.sendall(request("GET", self.path))
                c.read_response()
                self.lat.append((time.monotonic() - t0) * 1000)
            except OSError:
                c = None  # not listening yet
            time.sleep(0.02)

    def summary(self):
        if not self.lat:
            return "no answer"
        return (f"p50 {statistics.median(self.lat):.1f} ms, p99 {pct(self.lat, 99):.1f} ms, "
                f"max {max(self.lat):.1f} ms ({len(self.lat)} GETs)")


def schedstat(pid):
    """(on-CPU s, waiting for a CPU s) of a process's main thread (the event loop)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            run, wait, _ = f.read().split()
        return int(run) / 1e9, int(wait) / 1e9
    except (OSError, ValueError, TypeError):
        return None


def ae_bytes(nd):
    """Anti-entropy bytes a node sent (round requests and replies)."""
    return metric(nd, 'shoal_repl_bytes_total{direction="sent",kind="antientropy"}')


ROUND_COUNTERS = ("shoal_repl_rounds_started_total", "shoal_repl_rounds_served_total",
                  "shoal_repl_digest_mismatches_total", "shoal_repl_repairs_total",
                  "shoal_repl_stale_total", "shoal_repl_antientropy_cpu_microseconds_total")


def round_counters(nd):
    """A node's round counters (ROUND_COUNTERS), for deltas."""
    try:
        m = nd.metrics()
    except OSError:
        m = {}
    return [float(m.get(k, 0)) for k in ROUND_COUNTERS]


def cpu_s(pid):
    """User + system CPU seconds of a whole process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rpartition(")")[2].split()
        return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, TypeError, IndexError):
        return None


def minflt(pid):
    """Minor page faults of a whole process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[7])
    except (OSError, ValueError, TypeError, IndexError):
        return 0


def frames(nd):
    """(gossip stream frames the socket took at once, frames that (partly) waited queued)."""
    return tuple(metric(nd, f'shoal_gossip_stream_frames_total{{written="{w}"}}')
                 for w in ("at_once", "queued"))


def metric(nd, name):
    try:
        return float(nd.metrics().get(name, 0))
    except (OSError, ValueError):
        return 0.0


def objects(nd):
    try:
        return int(nd.metrics().get("shoal_store_objects", -1))
    except (OSError, ValueError):
        return -1


def wait_objects(nodes, target, timeout, t0=None, timeline=None):
    """Seconds from t0 (now) until every node holds at least target objects (None: not by the
    deadline); timeline: a list given gets (seconds, the first node's objects) of each poll."""
    t0 = time.monotonic() if t0 is None else t0
    while time.monotonic() - t0 < timeout:
        have = [objects(nd) for nd in nodes]
        if timeline is not None:
            timeline.append((time.monotonic() - t0, have[0]))
        if all(h >= target for h in have):
            return time.monotonic() - t0
        time.sleep(0.1)
    return None


def milestones(timeline, target):
    """When a timeline first reached an object, a quarter, half, three quarters of target."""
    out = []
    for frac in (0, 0.25, 0.5, 0.75):
        t = next((t for t, n in timeline if n > frac * target), None)
        out.append(f"{'first' if not frac else '%d %%' % (frac * 100)} "
                   f"{'%.1f s' % t if t is not None else '-'}")
    return ", ".join(out)


def new_cluster(n, tag, extra_args=()):
    c = dc.Cluster(name=tag + secrets.token_hex(4),
                   directory=os.path.join("/tmp", f"shoal-bench-repl-{secrets.token_hex(4)}"),
                   quiet=True)
    if not c.gossip:
        sys.exit("shoald has no gossip (--join)")
    try:
        c.up(n, timeout=300, extra_args=extra_args)
    except BaseException:
        c.down()  # a half-done up leaves daemons, netns and bpffs pins behind
        raise
    return c


def perf_start(a, nd, out):
    """`perf record` of one daemon into out with --perf1's settings, running once this returns."""
    pr = subprocess.Popen(["perf", "record"]
                          + (["--call-graph", "dwarf,16384"] if a.perf1_dwarf else ["-g"])
                          + ["-F", os.environ.get("PERF_F", "499"), "-o", out, "-p", str(nd.pid())],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return pr


def perf_stop(prs):
    for pr in prs:
        pr.send_signal(signal.SIGINT)
        pr.wait(60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--creates", type=int, default=5000, help="configmaps per creates/s run")
    ap.add_argument("--writes", type=int, default=200, help="timed writes (write -> visible)")
    ap.add_argument("--objects", type=int, default=100000, help="fill the cluster to this many")
    ap.add_argument("--perf", metavar="FILE",
                    help="record the new node with `perf record --call-graph dwarf` into FILE (step 4)")
    ap.add_argument("--perf1", metavar="FILE",
                    help="record a receiving node (into FILE), the writer (FILE.writer) and the "
                         "lone node (FILE.lone) with `perf record -g` during step 1 (PERF_F: Hz)")
    ap.add_argument("--perf1-dwarf", action="store_true",
                    help="--perf1 with DWARF call graphs (the binaries have no frame pointers)")
    ap.add_argument("--client", choices=CLIENTS, default="c",
                    help="who sends step 1's and step 3's creates: build/bench/api-load or "
                         "this Python process (the same for the lone node and the cluster)")
    ap.add_argument("--conns", type=int, default=1,
                    help="api-load's connections for step 1's creates (window in flight on each)")
    ap.add_argument("--daemon-arg", action="append", default=[], metavar="ARG",
                    help="one more shoald argument for the cluster's daemons (not the lone node's)")
    ap.add_argument("--settle", type=float, default=0, metavar="S",
                    help="wait S seconds after the lone node and after the cluster are up before "
                         "step 1's creates on each (the cluster's members' first rounds with "
                         "each other are over by then)")
    ap.add_argument("--stream-probe", type=float, default=0, metavar="MS",
                    help="during step 1's creates on the cluster, also create a configmap on "
                         "the writer every MS ms on a connection of its own and time it to "
                         "the watches of the other nodes (write -> visible during a stream)")
    ap.add_argument("--steps", default="1,2,3,4",
                    help="which of the steps above to run (3 fills the cluster for 4)")
    a = ap.parse_args()
    steps = {int(x) for x in a.steps.split(",") if x}
    # a SIGTERM (timeout, Ctrl-C) still brings the clusters down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    res = {}

    # 1a. a lone node
    if 1 in steps:
        c = new_cluster(1, "r")
        try:
            lone = c.nodes()[0]
            # the same wait as the cluster's: a daemon's first seconds (its start's own work)
            # must not land in one side's creates only
            time.sleep(a.settle)
            perf1 = [perf_start(a, lone, a.perf1 + ".lone")] if a.perf1 else []
            cpu0, ss0 = cpu_s(lone.pid()) or 0, schedstat(lone.pid())
            res["single"], ccpu = create_many(lone, [f"one-{i:06d}" for i in range(a.creates)],
                                              a.client, conns=a.conns)
            cpu, ss1 = (cpu_s(lone.pid()) or 0) - cpu0, schedstat(lone.pid())
            perf_stop(perf1)
            print(f"lone node: {res['single']:.0f} creates/s; its CPU {cpu:.2f} s "
                  f"({1e6 * cpu / a.creates:.0f} us a create), "
                  f"its {loop_time(ss0, ss1, a.creates / res['single'])}; "
                  f"{client_cpu(a.client, ccpu, a.creates, res['single'])}; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            c.down()

    c = new_cluster(a.nodes, "r", a.daemon_arg)
    try:
        nodes = c.nodes()
        writer = nodes[1]
        have = 0
        # 1b. the same on one node of the cluster
        if 1 in steps:
            time.sleep(a.settle)
            cpu0 = [cpu_s(nd.pid()) or 0 for nd in nodes]
            flt0 = [minflt(nd.pid()) for nd in nodes]
            rss0 = [rss_kib(nd.pid()) for nd in nodes]
            perf1 = []
            if a.perf1:
                recv = next(nd for nd in nodes if nd is not writer)
                perf1 = [perf_start(a, nd, out)
                         for nd, out in ((recv, a.perf1), (writer, a.perf1 + ".writer"))]
            pushes0 = metric(writer, "shoal_repl_pushes_sent_total")
            pushb0 = metric(writer, 'shoal_repl_bytes_total{direction="sent",kind="push"}')
            frames0 = [frames(nd) for nd in nodes]
            ae0 = [ae_bytes(nd) for nd in nodes]
            rc0 = [round_counters(nd) for nd in nodes]
            probe, probe_res = None, {}
            creating, pready, pgo = threading.Event(), threading.Event(), threading.Event()
            if a.stream_probe:
                def run_probe():
                    probe_res["lat"] = write_to_visible(
                        nodes, writer, 0, a.stream_probe / 1000, "app%3Dbench-probe",
                        creating.is_set, pready, pgo)
                probe = threading.Thread(target=run_probe, daemon=True)
                probe.start()
                pready.wait(30)
            ss0 = schedstat(writer.pid())
            threading.Timer(0.1, pgo.set).start()  # the probe's first write: in the stream
            res["cluster"], ccpu = create_many(writer,
                                               [f"many-{i:06d}" for i in range(a.creates)],
                                               a.client, conns=a.conns)
            ss1 = schedstat(writer.pid())
            cpu1 = [cpu_s(nd.pid()) or 0 for nd in nodes]
            creating.set()
            have += a.creates
            t_all = wait_objects(nodes, objects(writer), 120)
            cpu2 = [cpu_s(nd.pid()) or 0 for nd in nodes]
            perf_stop(perf1)
            print(f"{a.nodes}-node cluster, creates on {writer.short}: {res['cluster']:.0f} "
                  f"creates/s ({100 * res['cluster'] / res['single']:.0f} % of the lone node); "
                  f"{client_cpu(a.client, ccpu, a.creates, res['cluster'])}; the writer's "
                  f"{loop_time(ss0, ss1, a.creates / res['cluster'])}", flush=True)
            pushes = metric(writer, "shoal_repl_pushes_sent_total") - pushes0
            pushb = metric(writer, 'shoal_repl_bytes_total{direction="sent",kind="push"}') - pushb0
            frames1 = [frames(nd) for nd in nodes]
            rc1 = [round_counters(nd) for nd in nodes]
            print("  anti-entropy KB sent during the creates: "
                  + ", ".join(f"{nd.short}{'*' if nd is writer else ''} "
                              f"{(ae_bytes(nd) - b) / 1024:.0f}" for nd, b in zip(nodes, ae0)),
                  flush=True)
            print("  rounds during the creates (started/served, differing buckets, registers "
                  "repaired, stale, their CPU ms): "
                  + ", ".join(f"{nd.short}{'*' if nd is writer else ''} "
                              + "{:.0f}/{:.0f}, {:.0f}, {:.0f}, {:.0f}, {:.1f}".format(
                                  *[y - x for x, y in zip(c0[:5], c1[:5])], (c1[5] - c0[5]) / 1000)
                              for nd, c0, c1 in zip(nodes, rc0, rc1)), flush=True)
            print(f"  {pushes:.0f} pushes sent by {writer.short} to {a.nodes - 1} members "
                  f"({a.creates * (a.nodes - 1) / pushes if pushes > 0 else 0:.1f} creates a push, "
                  f"{pushb / 1024:.0f} KB)", flush=True)
            print("  gossip frames written at once / (partly) queued: "
                  + ", ".join(f"{nd.short}{'*' if nd is writer else ''} "
                              f"{f1[0] - f0[0]:.0f}/{f1[1] - f0[1]:.0f}"
                              for nd, f0, f1 in zip(nodes, frames0, frames1)), flush=True)
            print("  CPU s during the creates (until every node holds them, "
                  f"{'%.1f s later' % t_all if t_all is not None else 'not within 120 s'}): "
                  + ", ".join(f"{nd.short}{'*' if nd is writer else ''} {b - x:.2f} ({c - x:.2f})"
                              for nd, x, b, c in zip(nodes, cpu0, cpu1, cpu2)), flush=True)
            print("  CPU us a create (until every node holds them): "
                  + ", ".join(f"{nd.short}{'*' if nd is writer else ''} "
                              f"{1e6 * (c - x) / a.creates:.0f}"
                              for nd, x, c in zip(nodes, cpu0, cpu2))
                  + f"; load {os.getloadavg()[0]:.1f}", flush=True)
            if probe:
                probe.join(60)
                plat, pmiss = probe_res.get("lat", ([], 0))
                if plat:
                    print(f"  write -> visible on all {a.nodes} nodes during the creates "
                          f"({len(plat)} writes {a.stream_probe:.0f} ms apart, {pmiss} never "
                          f"seen everywhere): p50 {statistics.median(plat):.1f} ms, p99 "
                          f"{pct(plat, 99):.1f} ms, max {max(plat):.1f} ms", flush=True)
            print("  minor page faults a create (RSS growth in pages a create): "
                  + ", ".join(f"{nd.short}{'*' if nd is writer else ''} "
                              f"{(minflt(nd.pid()) - f) / a.creates:.2f} "
                              f"({(rss_kib(nd.pid()) - r) / 4 / a.creates:.2f})"
                              for nd, f, r in zip(nodes, flt0, rss0)), flush=True)
        # 2. write -> visible on every node
        lat, missing = [], 0
        if 2 in steps:
            lat, missing = write_to_visible(nodes, writer, a.writes, 0.02)
            have += a.writes
        if lat:
            print(f"write -> visible on all {a.nodes} nodes ({len(lat)} writes, {missing} "
                  f"never seen everywhere): p50 {statistics.median(lat):.1f} ms, p99 "
                  f"{pct(lat, 99):.1f} ms, max {max(lat):.1f} ms", flush=True)
        if not steps & {3, 4}:
            return 0
        # 3. fill to --objects
        t0 = time.monotonic()
        names = [f"fill-{i:06d}" for i in range(max(0, a.objects - have))]
        for i in range(0, len(names), 10000):
            create_many(writer, names[i:i + 10000], a.client)
        t_write = time.monotonic() - t0
        target = objects(writer)
        t_all = wait_objects(nodes, target, 600)
        print(f"filled to {a.objects} configmaps on {writer.short} in {t_write:.1f} s; every "
              f"node holds all {target} objects "
              f"{'after %.1f s more' % t_all if t_all is not None else 'NOT within 600 s'}",
              flush=True)
        for nd in nodes:
            print(f"  {nd.short}: RSS {rss_kib(nd.pid()) / 1024:.0f} MB, {objects(nd)} objects",
                  flush=True)
        # 4. a new node receives everything; how long the old nodes' loops stall meanwhile
        probe_path = f"{CMS}/{names[0]}" if names else "/healthz"
        probes = [LoopProbe(nd, probe_path) for nd in nodes]
        for p in probes:
            p.start()
        old_cpu = [cpu_s(nd.pid()) or 0 for nd in nodes]
        t0 = time.monotonic()
        new = c.add_node(wait=False)
        perf = None
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "499",
                                     "-o", a.perf, "-p", str(new.pid())],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probes.append(LoopProbe(new, probe_path))
        probes[-1].start()
        timeline = []
        t_new = wait_objects([new], target, 600, t0, timeline)
        for p in probes:
            p.stop = True
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        # where the new node's wall time went: its loop on a CPU, runnable but waiting for one
        # (the machine's load), or asleep (waiting on the network or the other nodes)
        ss = schedstat(new.pid()) or (0, 0)
        spent = t_new if t_new is not None else time.monotonic() - t0
        old = sum((cpu_s(nd.pid()) or 0) - c0 for nd, c0 in zip(nodes, old_cpu))
        print(f"new node {new.short}: holds all {target} objects "
              f"{'%.1f s after its start' % (t_new) if t_new is not None else 'NOT in 600 s'}"
              f" (RSS {rss_kib(new.pid()) / 1024:.0f} MB); its loop: {ss[0]:.1f} s on a CPU, "
              f"{ss[1]:.1f} s waiting for one, {max(0, spent - ss[0] - ss[1]):.1f} s asleep; "
              f"the old nodes' CPU meanwhile {old:.1f} s; load {os.getloadavg()[0]:.1f}",
              flush=True)
        print(f"  new node's objects: {milestones(timeline, target)}", flush=True)
        m = new.metrics()
        print("  new node: " + ", ".join(
            f"{k.replace('shoal_repl_', '')} {m.get(k, 0):.0f}" for k in (
                "shoal_repl_rounds_started_total", "shoal_repl_rounds_completed_total",
                "shoal_repl_rounds_failed_total", "shoal_repl_rounds_served_total",
                "shoal_repl_applied_total", "shoal_repl_stale_total",
                "shoal_repl_bulk_commits_total", "shoal_repl_rounds_declined_total",
                'shoal_repl_bytes_total{direction="received",kind="antientropy"}',
                'shoal_repl_bytes_total{direction="received",kind="push"}')), flush=True)
        for nd, p in zip(nodes + [new], probes):
            print(f"  {nd.short} answering a GET meanwhile: {p.summary()}", flush=True)
    finally:
        c.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
