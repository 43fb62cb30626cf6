#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""make bench-svc: the service datapath against its floor and against kube-proxy's rulesets.

One node network namespace routes between pod namespaces (three clients and three servers, each
on its own veth). New TCP connection per request (build/bench/svc-load), client and servers pinned
to one CPU. At each size (N services x 3 endpoints, the client hitting the last one installed; each
service has its own pods, the others' at unreachable addresses, unless --shared-backends):

  direct    a client that is not the node's (netns d) connects to a backend's pod IP
  floor     the same client in a cgroup with a bare cgroup/connect4 program (tools/bench/
            floor.bpf.c: one hash lookup of the destination, rewrite, nothing else) connects to
            the ClusterIP: the floor of any socket LB
  floor3    the floor program with an entry of the hit service's endpoints (--hit-endpoints,
            default 3) at an address of its own: one lookup and a random pick among them, the
            floor for a socket LB serving a 3-endpoint service (three server processes behind it
            instead of direct's and floor's one); not run with --hit-endpoints 1
  direct3   the same client connecting to the hit service's pods directly, picking one per
            connection itself (xorshift, multiply-shift): direct with the same three servers
            behind it (rounds of svc-load multi only, not with --block-ms 0 or --bpf-stats)
  bpf       ClusterIP through Shoal's socket LB in the host-reachable scope (shoald's default:
            programs on the cgroup2 root) from a pod of the node (netns c, in the node's cgroup2
            subtree; services programmed by the service proxy from a store, build/shoal-svc-drive)
  bpf_sub   the same through a second proxy in subtree scope (--socket-lb-scope subtree: programs
            on its node's subtree), a second node on the machine with the same services, from
            its pod (netns c2). The first node's programs on the root see that pod's connect()
            too and leave it at their first check, as they do direct's and floor's
  nft       kube-proxy nftables-mode ruleset (table ip kube-proxy: services vmap, numgen per
            service, endpoint chains with DNAT, masquerade marking) in the node netns
  ipt       kube-proxy iptables-mode ruleset (KUBE-SERVICES -> KUBE-SVC-* statistic rules ->
            KUBE-SEP-* DNAT) through iptables-restore (nft backend; --legacy adds legacy)

A round is one client process (svc-load multi) that takes the modes in turns of --block-ms
(default 10 ms, the order rotating each turn), entering each mode's network namespace and cgroup
before its block, for --secs of each mode (default 0.5 s); --rounds (default 20) such rounds.
Whatever the machine does (other sessions' work, the other CPU, the hypervisor) changes within
milliseconds far less than between seconds, so it falls on every mode alike. The result of a mode
is the median over the rounds of its rate divided by the same round's direct (and floor), with a
95 % bootstrap interval of that median and the rounds' min..max. --block-ms 0 (and --bpf-stats)
runs each mode alone in its own process instead, one after the other, as before.
nft and ipt (from netns d) run after those rounds with their rulesets installed (which direct
crosses too), with their own direct; their ratios are to the medians of the rounds without them.
--bpf-stats turns kernel.bpf_stats_enabled on and prints the run time per call of the connect4
programs (it adds two clock reads per program run, so ratios are measured without it).

Also: time to program N services (BPF from the store, cold maps; nft -f; iptables-restore) and
the time from an endpoint change committed to the store to the maps holding it.
Ratios against `direct` in the same run are the result; absolute numbers depend on the machine.

--program-only N: no traffic and no namespaces; at each size, N cold restarts of the proxy (every
service from the store into empty maps) and the min/median/max of `start_program_us`.

Default: sizes 1, 1000, 10000 for direct/bpf, and 1, 1000 for nft/ipt (installing 10,000
services in nft/iptables takes minutes): --anchor-sizes 1,1000,10000 runs them too.
"""
import argparse
import hashlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SHOAL_BUILD", os.path.join(ROOT, "build"))
DRIVE = os.path.join(BUILD, "shoal-svc-drive")
LOAD = os.path.join(BUILD, "bench", "svc-load")
FLOOR = os.path.join(BUILD, "bench", "floor.bpf.o")
VIP_BASE = (10 << 24) | (96 << 16)
BACKENDS = ["10.244.1.2", "10.244.2.2", "10.244.3.2"]
PORT, TPORT = 80, 8080
DISTINCT_BASE = (10 << 24) | (248 << 16)  # other services' (unreachable) pods
FLOOR_N_VIP = "10.96.255.254"  # the floor's entry with the hit service's endpoints


def sh(*cmd, check=True, **kw):
    r = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd[:6]), r.stderr[-2000:]))
    return r


def ip4(n):
    return "%d.%d.%d.%d" % (n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255)


def vip(i):
    return ip4(VIP_BASE + 1 + i)


def h(s):
    return hashlib.sha256(s.encode()).hexdigest()[:16].upper()


def nft_ruleset(n):
    """kube-proxy nftables mode, as pkg/proxy/nftables writes it (trimmed to the DNAT path)."""
    out = ["add table ip kube-proxy { comment \"rules for kube-proxy\" ; }",
           "add chain ip kube-proxy mark-for-masquerade",
           "add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000",
           "add chain ip kube-proxy masquerading",
           "add rule ip kube-proxy masquerading mark and 0x4000 == 0 return",
           "add rule ip kube-proxy masquerading mark set mark xor 0x4000",
           "add rule ip kube-proxy masquerading masquerade fully-random",
           "add chain ip kube-proxy services",
           "add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }",
           "add rule ip kube-proxy nat-prerouting jump services",
           "add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }",
           "add rule ip kube-proxy nat-output jump services",
           "add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }",
           "add rule ip kube-proxy nat-postrouting jump masquerading",
           "add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . "
           "inet_service : verdict ; }",
           "add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }",
           "add rule ip kube-proxy filter-forward ct state new ip daddr . meta l4proto . "
           "th dport vmap @no-endpoint-services",
           "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : "
           "verdict ; }",
           "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap "
           "@service-ips"]
    for i in range(n):
        svc = "service-%s-default/s%d/tcp/" % (h("s%d" % i)[:8], i)
        out.append("add chain ip kube-proxy %s" % svc)
        eps = []
        for j, b in enumerate(BACKENDS):
            ep = "endpoint-%s-default/s%d/tcp/__%s/%d" % (h("s%d%s" % (i, b))[:8], i, b, TPORT)
            eps.append(ep)
            out.append("add chain ip kube-proxy %s" % ep)
            out.append("add rule ip kube-proxy %s ip saddr %s jump mark-for-masquerade" % (ep, b))
            out.append("add rule ip kube-proxy %s meta l4proto tcp dnat to %s:%d" % (ep, b, TPORT))
        out.append("add rule ip kube-proxy %s ip daddr %s tcp dport %d ip saddr != 10.244.0.0/16 "
                   "jump mark-for-masquerade" % (svc, vip(i), PORT))
        out.append("add rule ip kube-proxy %s numgen random mod %d vmap { %s }" % (
            svc, len(eps), ", ".join("%d : goto %s" % (k, e) for k, e in enumerate(eps))))
        out.append("add element ip kube-proxy service-ips { %s . tcp . %d : goto %s }" % (
            vip(i), PORT, svc))
    return "\n".join(out) + "\n"


def ipt_ruleset(n):
    """kube-proxy iptables mode, as pkg/proxy/iptables writes it (nat table, trimmed)."""
    chains = [":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]",
              ":KUBE-NODEPORTS - [0:0]"]
    rules = ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" '
             '-j KUBE-POSTROUTING',
             "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
             "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
             "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
             "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring "
             "SNAT\" -j MASQUERADE --random-fully"]
    for i in range(n):
        name = "default/s%d:http" % i
        svc = "KUBE-SVC-" + h(name)
        chains.append(":%s - [0:0]" % svc)
        rules.append('-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment "%s cluster IP" '
                     '-m tcp --dport %d -j %s' % (vip(i), name, PORT, svc))
        rules.append('-A %s ! -s 10.244.0.0/16 -d %s/32 -p tcp -m comment --comment "%s cluster '
                     'IP" -m tcp --dport %d -j KUBE-MARK-MASQ' % (svc, vip(i), name, PORT))
        k = len(BACKENDS)
        for j, b in enumerate(BACKENDS):
            sep = "KUBE-SEP-" + h(name + b)
            chains.append(":%s - [0:0]" % sep)
            prob = "" if j == k - 1 else \
                " -m statistic --mode random --probability %.11f" % (1.0 / (k - j))
            rules.append('-A %s -m comment --comment "%s -> %s:%d"%s -j %s' % (
                svc, name, b, TPORT, prob, sep))
            rules.append('-A %s -s %s/32 -m comment --comment "%s" -j KUBE-MARK-MASQ' % (
                sep, b, name))
            rules.append('-A %s -p tcp -m comment --comment "%s" -m tcp -j DNAT '
                         '--to-destination %s:%d' % (sep, name, b, TPORT))
    rules.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: '
                 'this must be the last rule in this chain" -m addrtype --dst-type LOCAL '
                 '-j KUBE-NODEPORTS')
    return "*nat\n" + "\n".join(chains + rules) + "\nCOMMIT\n"


class Bench:
    def __init__(self, a):
        self.a = a
        self.sfx = secrets.token_hex(3)
        self.node = "shoal-svc-bench-%s" % self.sfx
        self.ns = {}
        self.procs = []
        # one service proxy per scope: "host" the node self.node (its pod: netns c), "subtree"
        # a second node on the same machine (its pod: netns c2); scope -> [node, Popen, cgroup]
        self.drives = {}
        self.cg_root = None
        self.results = {"sizes": {}, "program": {}, "endpoint_change_us": None}
        self.floor_pin = "/sys/fs/bpf/shoal-bench-floor-%s" % self.sfx
        self.floor_cg = None

    def netns(self, what):
        n = "shoal-svc-b%s-%s" % (what, self.sfx)
        sh("ip", "netns", "add", n)
        sh("ip", "-n", n, "link", "set", "lo", "up")
        self.ns[what] = n
        return n

    def setup(self):
        node = self.netns("node")
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, what in enumerate(["c", "s1", "s2", "s3", "d", "c2"]):
            p = self.netns(what)
            sh("ip", "-n", node, "link", "add", "v" + what, "type", "veth", "peer", "name",
               "eth0", "netns", p)
            sh("ip", "-n", node, "addr", "add", "10.244.%d.1/24" % i, "dev", "v" + what)
            sh("ip", "-n", node, "link", "set", "v" + what, "up")
            sh("ip", "-n", p, "addr", "add", "10.244.%d.2/24" % i, "dev", "eth0")
            sh("ip", "-n", p, "link", "set", "eth0", "up")
            sh("ip", "-n", p, "route", "add", "default", "via", "10.244.%d.1" % i)
            if what.startswith("s"):
                srv = subprocess.Popen(["nsenter", "--net=/run/netns/" + p] +
                                       self.pin(self.a.server_cpu) + [LOAD, "echo", str(TPORT)],
                                       stdout=subprocess.PIPE, text=True)
                self.procs.append(srv)
                assert srv.stdout.readline().strip() == "ready"
        for line in open("/proc/self/mountinfo"):
            f = line.split()
            if f[f.index("-") + 1] == "cgroup2":
                self.cg_root = f[4]
                break
        for sc in self.a.scopes:
            name = self.node if sc == self.a.scopes[0] else self.node + "-st"
            # both proxies in the node netns: in subtree scope the programs act on whatever
            # reaches them (the second node's cgroup subtree), the namespace plays no part
            d = subprocess.Popen(["nsenter", "--net=/run/netns/" + node, DRIVE, "--node", name,
                                  "--cgroup-name", name] +
                                 (["--cfg-flags", self.a.cfg_flags] if self.a.cfg_flags else []) +
                                 (["--host-reach"] if sc == "host" else []),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.drives[sc] = [name, d, os.path.join(self.cg_root, name)]
            assert json.loads(d.stdout.readline()).get("ready")
        self.floor_cg = os.path.join(self.cg_root, "shoal-svc-bench-floor-%s" % self.sfx)
        os.mkdir(self.floor_cg)
        sh("bpftool", "prog", "load", FLOOR, self.floor_pin, "type", "cgroup/connect4",
           "pinmaps", self.floor_pin + "-maps")
        sh("bpftool", "cgroup", "attach", self.floor_cg, "cgroup_inet4_connect", "pinned",
           self.floor_pin, "multi")

    def floor_set(self, ip, port, bes):
        """The floor's entry for ip:port: the backends bes [(ip, port)], up to 4."""
        def hexkey(a, p):
            return [("%02x" % int(x)) for x in a.split(".")] + \
                ["%02x" % (p >> 8), "%02x" % (p & 255), "00", "00"]
        val = ["%02x" % len(bes), "00", "00", "00"]  # n, little-endian
        for b in (bes + [("0.0.0.0", 0)] * 4)[:4]:
            val += hexkey(*b)
        sh("bpftool", "map", "update", "pinned", self.floor_pin + "-maps/floor_svc", "key",
           "hex", *hexkey(ip, port), "value", "hex", *val)

    def prog_stats(self):
        """run_time_ns and run_cnt of each proxy's connect4 and of the floor
        (bpf_stats_enabled)."""
        out = {}
        progs = [("floor", ["pinned", self.floor_pin])]
        for sc, (name, _, _) in self.drives.items():
            link = json.loads(sh("bpftool", "-j", "link", "show", "pinned",
                                 "/sys/fs/bpf/shoal/%s/links/connect4" % name).stdout)
            progs.append((SCOPE_MODE[sc], ["id", str(link["prog_id"])]))
        for name, args in progs:
            info = json.loads(sh("bpftool", "-j", "prog", "show", *args).stdout)
            out[name] = (info.get("run_time_ns", 0), info.get("run_cnt", 0))
        return out

    def cmd(self, obj, scope=None):
        """A command to one proxy (scope), or to every proxy (the first one's answer)."""
        ans = None
        for sc in ([scope] if scope else self.a.scopes):
            d = self.drives[sc][1]
            d.stdin.write(json.dumps(obj) + "\n")
            d.stdin.flush()
            r = json.loads(d.stdout.readline())
            if "error" in r:
                raise RuntimeError("drive %s: %s" % (sc, r))
            ans = ans or r
        return ans

    def pin(self, cpu):
        """taskset (and nice, chrt with --nice, --rt) for a client or server process."""
        argv = ["taskset", "-c", str(cpu)]
        if self.a.nice:
            argv = ["nice", "-n", str(self.a.nice)] + argv
        if self.a.rt:
            argv = ["chrt", "-f", str(self.a.rt)] + argv
        return argv

    def load(self, ip, ns, cg, secs=None):
        """One mode alone in its own process (--block-ms 0, --bpf-stats)."""
        secs = secs or self.a.secs
        argv = ["nsenter", "--net=/run/netns/" + self.ns[ns]] + self.pin(self.a.cpu) + \
            [LOAD, ip, str(PORT if ip.startswith("10.96.") else TPORT), str(secs)]
        if cg:
            argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg] + argv
        r = json.loads(sh(*argv, timeout=secs + 60).stdout)
        if r["errors"]:
            raise RuntimeError("%s: %d errors" % (ip, r["errors"]))
        return r

    def load_multi(self, modes, secs):
        """Every mode in one process, taking turns in blocks of --block-ms (svc-load multi)."""
        specs = ["%s=/run/netns/%s,%s,%s,%d" % (
            m, self.ns[ns], os.path.join(cg or self.cg_root, "cgroup.procs"), ip,
            PORT if ip.startswith("10.96.") else TPORT) for m, (ip, ns, cg) in modes.items()]
        argv = self.pin(self.a.cpu) + [LOAD, "multi", str(secs * len(modes)),
                                       str(self.a.block_ms)] + specs
        r = json.loads(sh(*argv, timeout=secs * len(modes) + 60).stdout)
        for m, v in r.items():
            if v["errors"]:
                raise RuntimeError("%s: %d errors" % (m, v["errors"]))
        return r

    def rounds(self, modes):
        """a.rounds rounds of every mode (name -> (ip, netns, cgroup)). By default a round is
        one process taking the modes in turns of --block-ms (--secs of each mode in all); with
        --block-ms 0 or --bpf-stats each mode runs alone in its own process, one after the
        other, the order rotating from round to round. Per mode: the rounds' rates, and per
        round its rate over the same round's direct and floor (paired ratios)."""
        got = {m: [] for m in modes}
        names = list(modes)
        multi = self.a.block_ms > 0 and not self.a.bpf_stats
        # --bpf-stats: run time per call of each program while each mode ran, per round. Shoal's
        # connect4 in host scope is on the cgroup2 root: in the bpf mode it serves the pod's
        # connects; in the others it sees the foreign client's and leaves them (its first check)
        per_call = {}
        if self.a.warmup > 0:  # neighbour entries, the programs' and maps' cache lines
            if multi:
                self.load_multi(modes, self.a.warmup)
            else:
                for m in names:
                    self.load(*modes[m], secs=self.a.warmup)
        for r in range(self.a.rounds):
            if multi:
                res = self.load_multi(modes, self.a.secs)
                for m in names:
                    got[m].append(res[m])
                continue
            k = r % len(names)
            for m in names[k:] + names[:k]:
                st0 = self.prog_stats() if self.a.bpf_stats else None
                got[m].append(self.load(*modes[m]))
                if st0:
                    st1 = self.prog_stats()
                    for prog in st1:
                        runs = st1[prog][1] - st0[prog][1]
                        if runs >= 100:
                            per_call.setdefault("%s@%s" % (prog, m), []).append(
                                (st1[prog][0] - st0[prog][0]) / runs)
        out = {}
        if per_call:
            out["ns_per_call"] = {k: summary(v) for k, v in per_call.items()}
            # Shoal's connect4 serving the pod over the floor's serving its client, round by
            # round (the two ran in the same round, so the machine's state cancels out)
            f = per_call.get("floor@floor")
            for bm in SCOPE_MODE.values():
                b = per_call.get("%s@%s" % (bm, bm))
                if b and f and len(b) == len(f):
                    out.setdefault("ns_per_call_ratio", {})[bm] = summary(
                        [x / y for x, y in zip(b, f)])
        rates = {m: [r["rate"] for r in rs] for m, rs in got.items()}
        for m, rs in got.items():
            v = rates[m]
            out[m] = {"rate": statistics.median(v), "min": min(v), "max": max(v), "rates": v,
                      "cv": statistics.pstdev(v) / statistics.mean(v),
                      "p50_us": statistics.median(r["p50_us"] for r in rs),
                      "p99_us": statistics.median(r["p99_us"] for r in rs)}
            for ref in ("direct", "floor", "floor2", "floor3", "direct2", "direct3"):
                if ref in rates and m != ref:
                    out[m]["per_round_" + ref] = summary([x / y for x, y in zip(v, rates[ref])])
        if "bpf" in rates and "bpf_sub" in rates:
            out["bpf"]["per_round_sub"] = summary(
                [x / y for x, y in zip(rates["bpf"], rates["bpf_sub"])])
        return out

    def nft_install(self, n):
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
            f.write(nft_ruleset(n))
        t = time.monotonic()
        sh("ip", "netns", "exec", self.ns["node"], "nft", "-f", f.name, timeout=3600)
        dt = time.monotonic() - t
        os.unlink(f.name)
        return dt

    def nft_remove(self):
        sh("ip", "netns", "exec", self.ns["node"], "nft", "delete", "table", "ip", "kube-proxy",
           check=False, timeout=3600)

    def ipt_install(self, n, tool):
        text = ipt_ruleset(n)
        t = time.monotonic()
        sh("ip", "netns", "exec", self.ns["node"], tool, input=text, timeout=3600)
        return time.monotonic() - t

    def ipt_remove(self, tool):
        sh("ip", "netns", "exec", self.ns["node"], tool, input="*nat\nCOMMIT\n", check=False,
           timeout=3600)

    def endpoints(self, i, addrs):
        self.cmd({"op": "put", "obj": {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "s%d" % i, "namespace": "default"},
            "subsets": [{"addresses": [{"ip": b} for b in addrs],
                         "ports": [{"port": TPORT, "protocol": "TCP"}]}]}})

    def run(self):
        installed = 0
        last = None
        real = ["%s:%d" % (b, TPORT) for b in BACKENDS]
        for n in self.a.sizes:
            if self.a.shared_backends:
                # every service the same 3 pods: the one hit is not the one shoal_be_rev names,
                # so its connect() writes the per-socket record (the worst case)
                self.cmd({"op": "gen", "n": n, "start": installed, "vip": ip4(VIP_BASE),
                          "port": PORT, "backends": real})
            else:
                # each service its own pods (fake addresses), the one hit the real servers
                if installed:
                    self.endpoints(installed - 1, [ip4(DISTINCT_BASE + 1 + (installed - 1) * 3
                                                       + j) for j in range(3)])
                self.cmd({"op": "gen", "n": n, "start": installed, "vip": ip4(VIP_BASE),
                          "port": PORT, "backends": real, "distinct": ip4(DISTINCT_BASE)})
                self.endpoints(n - 1, BACKENDS[:self.a.hit_endpoints])
            installed = n
            # programming time: every service from the store into fresh (empty) maps, after
            # the programs are loaded and attached (each proxy; the first one's time)
            self.cmd({"op": "restart", "cold": True})
            for sc in self.a.scopes:
                st = self.cmd({"op": "stats"}, sc)
                assert st["frontends"] == n and st["failed"] == 0, st
                if sc == self.a.scopes[0]:
                    self.results["program"].setdefault("bpf_s", {})[n] = \
                        st["start_program_us"] / 1e6
            last = vip(n - 1)
            self.floor_set(last, PORT, [(BACKENDS[0], TPORT)])
            direct = (BACKENDS[0], "d", None)
            modes = {"direct": direct, "floor": (last, "d", self.floor_cg)}
            if self.a.hit_endpoints > 1:
                # the floor with the service's endpoints: a random pick among them (its own
                # address, which no proxy knows)
                self.floor_set(FLOOR_N_VIP, PORT, [(b, TPORT) for b in
                                                   BACKENDS[:self.a.hit_endpoints]])
                modes["floor%d" % self.a.hit_endpoints] = (FLOOR_N_VIP, "d", self.floor_cg)
                if self.a.block_ms > 0 and not self.a.bpf_stats:
                    # the pods directly, the client itself picking one of the service's
                    # endpoints per connection: direct with the same three servers behind it
                    modes["direct%d" % self.a.hit_endpoints] = (
                        "+".join(BACKENDS[:self.a.hit_endpoints]), "d", None)
            for sc in self.a.scopes:
                modes[SCOPE_MODE[sc]] = (last, "c" if sc == self.a.scopes[0] else "c2",
                                         self.drives[sc][2])
            res = self.rounds(modes)
            if n in self.a.anchor_sizes:
                # the rulesets are in the node netns, on direct's path too: they run after the
                # rounds above, with a direct of their own in the same rounds (direct_same_run);
                # their ratios are to the direct and floor of the rounds above
                dt = self.nft_install(n)
                self.results["program"].setdefault("nft_s", {})[n] = dt
                r = self.rounds({"direct": direct, "nft": (last, "d", None)})
                res["nft"] = r["nft"]
                res["nft"]["direct_same_run"] = r["direct"]["rate"]
                self.nft_remove()
                for tool, key in self.ipt_tools():
                    dt = self.ipt_install(n, tool)
                    self.results["program"].setdefault(key + "_s", {})[n] = dt
                    r = self.rounds({"direct": direct, key: (last, "d", None)})
                    res[key] = r[key]
                    res[key]["direct_same_run"] = r["direct"]["rate"]
                    self.ipt_remove(tool)
            d, f = res["direct"]["rate"], res["floor"]["rate"]
            for m, v in res.items():
                if m.startswith("ns_per_call"):
                    continue
                # the rulesets' per-round ratios are to a direct that also crossed them
                if m in ("nft", "ipt", "ipt_legacy"):
                    v["per_round_same_run_direct"] = v.pop("per_round_direct")
                # the result: the median of the per-round paired ratios; for the rulesets (not
                # in the rounds of direct and floor) the ratio of the medians
                v["ratio"] = v["per_round_direct"]["median"] if "per_round_direct" in v \
                    else v["rate"] / d
                v["vs_floor"] = v["per_round_floor"]["median"] if "per_round_floor" in v \
                    else v["rate"] / f
                v["ratio_of_medians"] = v["rate"] / d
                v["spread"] = [v["min"] / d, v["max"] / d]
            self.results["sizes"][n] = res
            self.report_size(n, res)
        # an endpoint change of the last service: store commit -> maps written
        name = "s%d" % (installed - 1)
        lat = []
        for k in range(self.a.ep_changes):
            bes = BACKENDS if k % 2 else BACKENDS[:2]
            ep = {"apiVersion": "v1", "kind": "Endpoints",
                  "metadata": {"name": name, "namespace": "default"},
                  "subsets": [{"addresses": [{"ip": b} for b in bes],
                               "ports": [{"port": TPORT, "protocol": "TCP"}]}]}
            lat.append(self.cmd({"op": "put", "obj": ep}, self.a.scopes[0])["us"])
        st = self.cmd({"op": "stats"}, self.a.scopes[0])
        self.results["endpoint_change_us"] = {"p50": statistics.median(lat), "max": max(lat),
                                              "last_writes": st["last_writes"]}
        print("endpoint change -> datapath (store commit + proxy + map writes): p50 %.0f us, "
              "max %.0f us, %d map writes" % (statistics.median(lat), max(lat),
                                              st["last_writes"]))
        print("program (s): %s" % json.dumps(self.results["program"]))

    def ipt_tools(self):
        tools = [("iptables-restore", "ipt")]
        if self.a.legacy:
            tools.append(("iptables-legacy-restore", "ipt_legacy"))
        return tools

    def report_size(self, n, res):
        def iv(v):
            return "%.3f [%.3f..%.3f] (%.2f..%.2f)" % (v["median"], v["ci95"][0], v["ci95"][1],
                                                     v["min"], v["max"])

        print("== %d services x 3 endpoints (hitting the last one); per-round paired ratios: "
              "median [95%% bootstrap interval of the median] (min..max of the rounds)" % n)
        print("   %-10s %8s %5s  %-34s %-34s %6s %6s" % (
            "mode", "conn/s", "cv%", "/direct, per round", "/floor, per round", "p50us",
            "p99us"))
        for m, r in res.items():
            if m.startswith("ns_per_call"):
                continue
            dd = iv(r["per_round_direct"]) if "per_round_direct" in r else \
                ("%.3f (medians)" % r["ratio"] if m != "direct" else "1")
            ff = iv(r["per_round_floor"]) if "per_round_floor" in r else \
                ("%.3f (medians)" % r["vs_floor"] if m != "floor" else "1")
            print("   %-10s %8.0f %5.1f  %-34s %-34s %6.0f %6.0f" % (
                m, r["rate"], 100 * r["cv"], dd, ff, r["p50_us"], r["p99_us"]))
        if "per_round_sub" in res.get("bpf", {}):
            print("   bpf (host scope) / bpf_sub (subtree scope), per round: %s" %
                  iv(res["bpf"]["per_round_sub"]))
        for fn, what in (("floor2", "the floor with the service's endpoints"),
                         ("floor3", "the floor with the service's endpoints"),
                         ("direct2", "the service's pods directly, picked by the client"),
                         ("direct3", "the service's pods directly, picked by the client")):
            for m in ("bpf", "bpf_sub"):
                if "per_round_" + fn in res.get(m, {}):
                    print("   %s / %s (%s), per round: %s"
                          % (m, fn, what, iv(res[m]["per_round_" + fn])))
        for m in ("bpf", "bpf_sub"):
            if m not in res:
                continue
            r = res[m]
            print("   goal %-8s: /direct %.3f %s 0.97 (interval %s), /floor %.3f %s 0.99 "
                  "(interval %s)" % (
                      m, r["ratio"], ">=" if r["ratio"] >= 0.97 else "<",
                      verdict(r["per_round_direct"], 0.97), r["vs_floor"],
                      ">=" if r["vs_floor"] >= 0.99 else "<",
                      verdict(r["per_round_floor"], 0.99)))
        if "ns_per_call" in res:
            print("   connect4 run time per call (bpf_stats; program@mode: median of rounds, "
                  "min..max):")
            for k, v in sorted(res["ns_per_call"].items()):
                print("     %-14s %6.0f ns  (%.0f..%.0f)" % (k, v["median"], v["min"], v["max"]))
            for bm, v in sorted(res.get("ns_per_call_ratio", {}).items()):
                print("     %s@%s / floor@floor per round: median %.2f (%.2f..%.2f)" % (
                    bm, bm, v["median"], v["min"], v["max"]))
        sys.stdout.flush()

    def close(self):
        for _, d, _ in self.drives.values():
            if d.poll() is None:
                d.stdin.close()
                d.wait(30)
        for p in self.procs:
            p.kill()
            p.wait()
        for name, _, _ in self.drives.values():
            sh(DRIVE, "--node", name, "--teardown", check=False)
        if self.floor_cg and os.path.isdir(self.floor_cg):
            sh("bpftool", "cgroup", "detach", self.floor_cg, "cgroup_inet4_connect", "pinned",
               self.floor_pin, check=False)
            os.rmdir(self.floor_cg)
        for path in (self.floor_pin, self.floor_pin + "-maps/floor_svc"):
            if os.path.exists(path):
                os.unlink(path)
        if os.path.isdir(self.floor_pin + "-maps"):
            os.rmdir(self.floor_pin + "-maps")
        for n in self.ns.values():
            sh("ip", "netns", "del", n, check=False)
        for _, _, cg in self.drives.values():
            for _ in range(50):
                try:
                    if os.path.isdir(os.path.join(cg, "shoald")):
                        os.rmdir(os.path.join(cg, "shoald"))  # the proxy's own leaf
                    os.rmdir(cg)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)

SCOPE_MODE = {"host": "bpf", "subtree": "bpf_sub"}


def verdict(v, goal):
    """Where the goal lies against the bootstrap interval of the median."""
    lo, hi = v["ci95"]
    return "above" if lo >= goal else "below" if hi < goal else "contains it"


def summary(v):
    """Median, min..max and a 95 % bootstrap interval of the median (rounds resampled with
    replacement, 2,000 times; fixed seed, so a run's report is reproducible from its rounds)."""
    rng = random.Random(9)
    meds = sorted(statistics.median(rng.choices(v, k=len(v))) for _ in range(2000))
    return {"median": statistics.median(v), "min": min(v), "max": max(v),
            "ci95": [meds[50], meds[1949]], "n": len(v), "rounds": v}


def program_only(a):
    """Only the programming time: N cold restarts per size, no traffic, no namespaces."""
    node = "shoal-svc-bench-%s" % secrets.token_hex(3)
    drive = subprocess.Popen([DRIVE, "--node", node, "--cgroup-name", node],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out = {}

    def cmd(obj):
        drive.stdin.write(json.dumps(obj) + "\n")
        drive.stdin.flush()
        r = json.loads(drive.stdout.readline())
        if "error" in r:
            raise RuntimeError("drive: %s" % r)
        return r

    try:
        assert json.loads(drive.stdout.readline()).get("ready")
        installed = 0
        for n in a.sizes:
            gen = {"op": "gen", "n": n, "start": installed, "vip": ip4(VIP_BASE), "port": PORT,
                   "backends": ["%s:%d" % (b, TPORT) for b in BACKENDS]}
            if not a.shared_backends:
                gen["distinct"] = ip4(DISTINCT_BASE)
            cmd(gen)
            installed = n
            ts, warm = [], []
            for _ in range(a.program_only):
                cmd({"op": "restart", "cold": True})
                st = cmd({"op": "stats"})
                assert st["frontends"] == n and st["failed"] == 0, st
                ts.append(st["start_program_us"] / 1e3)
            # a restart adopting the programmed maps (nothing to write)
            cmd({"op": "restart", "cold": False})
            warm = cmd({"op": "stats"})["start_program_us"] / 1e3
            out[n] = {"cold_ms": ts, "min": min(ts), "median": statistics.median(ts),
                      "max": max(ts), "warm_ms": warm}
            print("program %6d services x 3: cold min %.1f ms, median %.1f ms, max %.1f ms "
                  "(%d runs); warm restart %.1f ms" % (n, min(ts), statistics.median(ts),
                                                        max(ts), len(ts), warm))
            sys.stdout.flush()
    finally:
        if drive.poll() is None:
            drive.stdin.close()
            drive.wait(60)
        sh(DRIVE, "--node", node, "--teardown", check=False)
        for line in open("/proc/self/mountinfo"):
            f = line.split()
            if f[f.index("-") + 1] == "cgroup2":
                for d in (os.path.join(f[4], node, "shoald"), os.path.join(f[4], node)):
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
                break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,1000,10000")
    ap.add_argument("--anchor-sizes", default="1,1000",
                    help="sizes at which the nft/iptables rulesets are installed and measured")
    ap.add_argument("--secs", type=float, default=0.5, help="seconds of each mode per round")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--scopes", default="host,subtree",
                    help="socket-LB scopes, each a proxy of its own and a mode (host: bpf, "
                    "shoald's default, its pod netns c; subtree: bpf_sub, a second node on "
                    "the machine, its pod netns c2)")
    ap.add_argument("--bpf-stats", action="store_true",
                    help="kernel.bpf_stats_enabled on: run time per call of the programs")
    ap.add_argument("--cpu", type=int, default=1, help="the client's CPU")
    ap.add_argument("--server-cpu", type=int, help="the servers' CPU (default: --cpu)")
    ap.add_argument("--nice", type=int, default=0,
                    help="nice value of client and servers (e.g. -10: other sessions' work on "
                    "that CPU yields to them)")
    ap.add_argument("--rt", type=int, default=0, metavar="PRIO",
                    help="SCHED_FIFO priority of client and servers (chrt -f)")
    ap.add_argument("--warmup", type=float, default=0.2,
                    help="seconds of each mode, not measured, before a size's rounds")
    ap.add_argument("--block-ms", type=float, default=10,
                    help="one client process takes the modes in turns of this long (0: each "
                    "mode its own process per round, as with --bpf-stats)")
    ap.add_argument("--hit-endpoints", type=int, default=3, choices=[1, 2, 3],
                    help="servers behind the service hit (direct and floor always reach one: "
                         "with 3 the bpf mode's connections are spread over three server "
                         "processes on the one CPU; not with --shared-backends)")
    ap.add_argument("--shared-backends", action="store_true",
                    help="every service the same 3 pods (the service hit then is not the one "
                         "its backends' shoal_be_rev entries name: a per-socket record each)")
    ap.add_argument("--legacy", action="store_true", help="also iptables-legacy")
    ap.add_argument("--ep-changes", type=int, default=50)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--cfg-flags", help="socket-LB flags (enum shoal_cfg_flags), e.g. 2: "
                    "no getpeername() record for TCP")
    ap.add_argument("--program-only", type=int, metavar="N", default=0,
                    help="only the programming time: N cold restarts per size, no traffic")
    a = ap.parse_args()
    a.sizes = sorted(int(x) for x in a.sizes.split(","))
    a.anchor_sizes = {int(x) for x in a.anchor_sizes.split(",") if x}
    a.scopes = [x for x in a.scopes.split(",") if x]
    if not a.scopes or any(x not in SCOPE_MODE for x in a.scopes):
        sys.exit("--scopes: host and/or subtree")
    if a.server_cpu is None:
        a.server_cpu = a.cpu
    if os.geteuid() != 0:
        sys.exit("bench-svc needs root (namespaces, BPF)")
    if a.program_only:
        res = program_only(a)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
        return
    b = Bench(a)
    stats_was = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    try:
        if a.bpf_stats:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write("1")
        b.setup()
        b.run()
    finally:
        if a.bpf_stats:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(stats_was)
        b.close()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(b.results, f, indent=1)


if __name__ == "__main__":
    main()
