#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Crash detection end to end on a real 5-node devcluster (issue 10's performance goal, beside
the simulator's `make bench-gossip`).

Each round SIGKILLs one node and polls every other node's members view (GET
/apis/shoal.io/v1/members on its unix socket, every 10 ms, one thread per observer) until the
victim shows `suspect` and then `dead`; the round's detection time is when the LAST observer saw
it dead ("known to every node"). Then the victim restarts and the views converge before the next
round. Prints per-round times and p50/p90/max over the rounds.

    make bench-gossip-devcluster [BENCH_ARGS="--nodes 5 --rounds 20"]
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import secrets
import signal
import statistics
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_loader = importlib.machinery.SourceFileLoader("devcluster_tool",
                                               os.path.join(ROOT, "tools", "devcluster"))
_spec = importlib.util.spec_from_loader("devcluster_tool", _loader)
dc = importlib.util.module_from_spec(_spec)
_loader.exec_module(dc)


def watch(observer, victim, t0, out, stop):
    first = {}
    while not stop.is_set() and "dead" not in first:
        try:
            st, body = observer.api("GET", "/apis/shoal.io/v1/members", timeout=2)
            if st == 200:
                for m in json.loads(body)["items"]:
                    if m["name"] == victim.name and m["state"] in ("suspect", "dead"):
                        first.setdefault(m["state"], time.monotonic() - t0)
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    out[observer.name] = first


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=60, help="give up on a round after this")
    a = ap.parse_args()
    c = dc.Cluster(name="b" + secrets.token_hex(4),
                   directory=os.path.join("/tmp", f"shoal-bench-dc-{secrets.token_hex(4)}"),
                   quiet=True)
    if not c.gossip:
        sys.exit("shoald has no gossip (--join)")
    results = []
    try:
        t = time.monotonic()
        c.up(a.nodes, timeout=300)
        print(f"{a.nodes} nodes up and converged in {time.monotonic() - t:.1f} s", flush=True)
        nodes = c.nodes()
        for r in range(a.rounds):
            victim = nodes[1 + r % (len(nodes) - 1)]
            observers = [nd for nd in nodes if nd is not victim]
            out, stop = {}, threading.Event()
            t0 = time.monotonic()
            victim.signal(signal.SIGKILL)
            ths = [threading.Thread(target=watch, args=(o, victim, t0, out, stop))
                   for o in observers]
            for th in ths:
                th.start()
            for th in ths:
                th.join(a.timeout)
            stop.set()
            for th in ths:
                th.join()
            victim.wait_gone(10)
            dead = [out.get(o.name, {}).get("dead") for o in observers]
            susp = [out.get(o.name, {}).get("suspect") for o in observers]
            if None in dead:
                print(f"round {r}: {victim.name} not dead everywhere after {a.timeout} s: {out}")
                results.append(float("inf"))
            else:
                results.append(max(dead))
                first_susp = min(x for x in susp + dead if x is not None)
                print(f"round {r}: {victim.name} first suspected {first_susp:.2f} s, dead on "
                      f"every node {max(dead):.2f} s (first {min(dead):.2f} s)", flush=True)
            c.start(victim.short)
            c.wait_converged(timeout=120)
        fin = [x for x in results if x != float("inf")]
        if fin:
            print(f"\ncrash known to every node ({a.nodes} nodes, {len(fin)}/{len(results)} "
                  f"rounds): p50 {statistics.median(fin):.2f} s, p90 {pct(fin, 90):.2f} s, "
                  f"max {max(fin):.2f} s")
    finally:
        c.down()
    return 0 if len(results) == a.rounds and all(x != float("inf") for x in results) else 1


if __name__ == "__main__":
    sys.exit(main())
