#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Per-call run time of the socket LB's connect4 by service size, against the floor program.

No traffic: a client in its own network namespace connects to frontends whose backends are
127.0.0.1 ports nobody listens on (the connect() fails at once with ECONNREFUSED after the
program ran), so each call is the program and a loopback RST, and kernel.bpf_stats_enabled's
run_time_ns / run_cnt of the program is the figure. Shoal's programs are attached to a cgroup of
their own with build/shoal-lbctl (subtree scope); the floor (tools/bench/floor.bpf.c: one hash
lookup, the rewrite) to another. One frontend per size (--backends), the client is moved between
the two cgroups; modes are interleaved round by round; each row is the median of --rounds with
min..max, and the ratio to the floor measured in the same round.

  bench_sockcall.py [--backends 1,3,8,64] [--conns 20000] [--rounds 7]
SHOAL_BUILD=<dir> runs another build's shoal-lbctl (before/after comparisons).
"""
import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SHOAL_BUILD", os.path.join(ROOT, "build"))
LBCTL = os.path.join(BUILD, "shoal-lbctl")
FLOOR = os.path.join(ROOT, "build", "bench", "floor.bpf.o")
PY = "/usr/bin/python3"

CLIENT = r"""
import socket, sys
for line in sys.stdin:
    ip, port, n = line.split()
    for _ in range(int(n)):
        s = socket.socket()
        try:
            s.connect((ip, int(port)))
        except OSError:
            pass
        s.close()
    print("ok", flush=True)
"""


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


def be(ip):
    """'a.b.c.d' as the 4 decimal key bytes bpftool takes (network order)."""
    return ip.split(".")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="1,3,8,64")
    ap.add_argument("--conns", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    sizes = [int(x) for x in a.backends.split(",")]
    sfx = secrets.token_hex(3)
    node = "shoal-sockcall-" + sfx
    netns = "shoal-sockcall-" + sfx
    root = sh(LBCTL, "cgroup2-root").stdout.strip()
    cg = os.path.join(root, "shoal-sockcall-" + sfx)
    fcg = os.path.join(root, "shoal-sockcall-floor-" + sfx)
    fpin = "/sys/fs/bpf/shoal-sockcall-floor-" + sfx
    stats_was = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    client = None
    made = []
    try:
        sh("ip", "netns", "add", netns)
        made.append("netns")
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        os.mkdir(cg)
        os.mkdir(fcg)
        sh(LBCTL, "--node", node, "--cgroup", cg, "attach")
        made.append("lb")
        fes = {}
        for i, n in enumerate(sizes):
            vip = "10.97.0.%d" % (i + 1)
            bes = ["127.0.0.1:%d" % (20000 + 100 * i + j) for j in range(n)]
            sh(LBCTL, "--node", node, "svc-set", "%s:80" % vip, *bes)
            fes[n] = vip
        dump = {d["frontend"]: d.get("pick", "?")
                for d in json.loads(sh(LBCTL, "--node", node, "dump").stdout)}
        sh("bpftool", "prog", "load", FLOOR, fpin, "type", "cgroup/connect4", "pinmaps",
           fpin + "-maps")
        made.append("floor")
        sh("bpftool", "cgroup", "attach", fcg, "cgroup_inet4_connect", "pinned", fpin)
        # floor_key {ip, port, pad} -> floor_val {n, be[4]}: 10.97.1.1:80 -> 127.0.0.1:19999
        sh("bpftool", "map", "update", "pinned", fpin + "-maps/floor_svc", "key",
           *be("10.97.1.1"), "0", "80", "0", "0", "value", "1", "0", "0", "0",
           *be("127.0.0.1"), "78", "31", "0", "0", *["0"] * 24)
        link = json.loads(sh("bpftool", "-j", "link", "show", "pinned",
                             "/sys/fs/bpf/shoal/%s/links/connect4" % node).stdout)
        progs = {"shoal": ["id", str(link["prog_id"])], "floor": ["pinned", fpin]}

        def stat(p):
            info = json.loads(sh("bpftool", "-j", "prog", "show", *progs[p]).stdout)
            return info.get("run_time_ns", 0), info.get("run_cnt", 0)

        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        client = subprocess.Popen(["ip", "netns", "exec", netns, PY, "-c", CLIENT],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        modes = [("floor", fcg, "10.97.1.1", "floor")] + \
            [("n=%d" % n, cg, fes[n], "shoal") for n in sizes]
        res = {m[0]: [] for m in modes}
        ratio = {m[0]: [] for m in modes}
        for rnd in range(a.rounds):
            order = modes[rnd % len(modes):] + modes[:rnd % len(modes)]
            per = {}
            for name, cgroup, ip, prog in order:
                t0, c0 = stat(prog)
                # `ip netns exec` hides the cgroup2 mount from the client: move it from here
                with open(cgroup + "/cgroup.procs", "w") as f:
                    f.write(str(client.pid))
                client.stdin.write("%s 80 %d\n" % (ip, a.conns))
                client.stdin.flush()
                assert client.stdout.readline().strip() == "ok"
                t1, c1 = stat(prog)
                per[name] = (t1 - t0) / max(c1 - c0, 1)
                res[name].append(per[name])
            for name in per:
                ratio[name].append(per[name] / per["floor"])
        load = open("/proc/loadavg").read().split()[:3]
        print("connect4 run time per call (bpf_stats), %d rounds x %d connects, load %s" %
              (a.rounds, a.conns, " ".join(load)))
        print("| mode | picks from | ns per call, median (min..max) | / floor, per round |")
        print("| --- | --- | --- | --- |")
        for name, _, ip, _ in modes:
            v, r = res[name], ratio[name]
            print("| %s | %s | %.0f (%.0f..%.0f) | %.2f (%.2f..%.2f) |" %
                  (name, dump.get(ip + ":80/tcp", "-"), statistics.median(v), min(v), max(v),
                   statistics.median(r), min(r), max(r)))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"ns": res, "ratio": ratio, "load": load}, f)
    finally:
        if client:
            client.stdin.close()
            client.wait()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(stats_was)
        if "floor" in made:
            sh("bpftool", "cgroup", "detach", fcg, "cgroup_inet4_connect", "pinned", fpin,
               check=False)
            sh("rm", "-rf", fpin, fpin + "-maps", check=False)
        if "lb" in made:
            sh(LBCTL, "--node", node, "teardown", check=False)
        for d in (cg, fcg):
            if os.path.isdir(d):
                os.rmdir(d)
        if "netns" in made:
            sh("ip", "netns", "del", netns, check=False)


if __name__ == "__main__":
    main()
