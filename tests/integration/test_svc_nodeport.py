# SPDX-License-Identifier: Apache-2.0
"""NodePort and external IPs through the tc programs, with the service proxy fed from a store.

Topology (every name carries a random suffix; all removed at the end, even on failure):

    netns lan      bridge br0
    netns cl       "outside client" 192.168.77.1/24 on the bridge
    netns n1       node 1: uplink eth0 192.168.77.2 (tc programs), pod veth 10.244.1.1
    netns n2       node 2: uplink eth0 192.168.77.3 (tc programs), pod veth 10.244.2.1
    netns p1, p2   backends 10.244.1.2 (on n1) and 10.244.2.2 (on n2)

Each node runs build/shoal-svc-drive (the service proxy on a private store, in the node's cgroup2
subtree shoal-svc-<node>) with the same Maglev seed; services and Endpoints are written into
both stores, as gossip would.
"""
import json
import os
import secrets
import socket
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SHOAL_BUILD", os.path.join(ROOT, "build"))
DRIVE = os.path.join(BUILD, "shoal-svc-drive")
PY = "/usr/bin/python3"
PIN_ROOT = "/sys/fs/bpf/shoal"

SERVER = r"""
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(128)
    while True:
        c, peer = s.accept()
        c.sendall(("%s %s %d\n" % (name, peer[0], peer[1])).encode()); c.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        d, peer = s.recvfrom(2048)
        s.sendto(("%s %s" % (name, peer[0])).encode(), peer)
threading.Thread(target=tcp, daemon=True).start()
print("ready", flush=True)
udp()
"""

CLIENT = r"""
import json, socket, struct, sys, time
for line in sys.stdin:
    a = line.split()
    try:
        if a[0] == "tcp":
            s = socket.socket(); s.settimeout(3)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if len(a) > 3:
                s.bind(("0.0.0.0", int(a[3])))
            try:
                s.connect((a[1], int(a[2])))
                peer = s.getpeername()
                d = s.makefile().readline().split()
            except OSError as e:
                print(json.dumps({"err": e.errno or str(e)}), flush=True); continue
            finally:
                # RST on close: the same source port can be used again at once
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            print(json.dumps({"name": d[0], "seen": d[1], "peer": list(peer)}), flush=True)
        elif a[0] == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
            try:
                s.sendto(b"hi", (a[1], int(a[2])))
                d, src = s.recvfrom(2048)
            except OSError as e:
                print(json.dumps({"err": e.errno or str(e)}), flush=True); continue
            finally:
                s.close()
            print(json.dumps({"name": d.decode().split()[0], "src": list(src)}), flush=True)
    except Exception as e:
        print(json.dumps({"exc": repr(e)}), flush=True)
"""


def sh(*cmd, check=True, **kw):
    r = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(cmd), r.stderr))
    return r


class Proc:
    """A line-protocol process (JSON answers)."""

    def __init__(self, argv, cgroup=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        if cgroup:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(self.p.pid))

    def readline(self):
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError("process exited: " + self.p.stderr.read())
        return line

    def cmd(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()
        return json.loads(self.readline())

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Cluster:
    DRIVE_ARGS = []  # extra shoal-svc-drive flags (subclasses)

    def __init__(self):
        self.sfx = secrets.token_hex(3)
        self.ns = {}
        self.procs = []
        self.drives = {}
        self.cgroups = []
        self.cg_root = None

    def name(self, what):
        return "shoal-svc-%s-%s" % (what, self.sfx)

    def netns(self, what):
        n = self.name(what)
        sh("ip", "netns", "add", n)
        self.ns[what] = n
        sh("ip", "-n", n, "link", "set", "lo", "up")
        return n

    def run_in(self, what, argv, cgroup=None):
        p = Proc(["nsenter", "--net=/run/netns/" + self.ns[what]] + argv, cgroup)
        self.procs.append(p)
        return p

    def build(self):
        lan = self.netns("lan")
        sh("ip", "-n", lan, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", lan, "link", "set", "br0", "up")
        for what, ip in (("cl", "192.168.77.1"), ("n1", "192.168.77.2"), ("n2", "192.168.77.3")):
            n = self.netns(what)
            sh("ip", "-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", what,
               "netns", lan)
            sh("ip", "-n", lan, "link", "set", what, "master", "br0", "up")
            sh("ip", "-n", n, "addr", "add", ip + "/24", "dev", "eth0")
            sh("ip", "-n", n, "link", "set", "eth0", "up")
        for i, node in ((1, "n1"), (2, "n2")):
            n, p = self.ns[node], self.netns("p%d" % i)
            sh("ip", "-n", n, "link", "add", "vp", "type", "veth", "peer", "name", "eth0",
               "netns", p)
            sh("ip", "-n", n, "addr", "add", "10.244.%d.1/24" % i, "dev", "vp")
            sh("ip", "-n", n, "link", "set", "vp", "up")
            sh("ip", "-n", p, "addr", "add", "10.244.%d.2/24" % i, "dev", "eth0")
            sh("ip", "-n", p, "link", "set", "eth0", "up")
            sh("ip", "-n", p, "route", "add", "default", "via", "10.244.%d.1" % i)
            sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", self.ns["n1"], "route", "add", "10.244.2.0/24", "via", "192.168.77.3")
        sh("ip", "-n", self.ns["n2"], "route", "add", "10.244.1.0/24", "via", "192.168.77.2")
        # an external IP is routed to node 1 by the network
        sh("ip", "-n", self.ns["cl"], "route", "add", "192.168.100.0/24", "via", "192.168.77.2")
        for i in (1, 2):
            srv = self.run_in("p%d" % i, [PY, "-c", SERVER, "p%d" % i, "8080"])
            assert srv.readline().strip() == "ready"
        for node, ip in (("n1", "192.168.77.2"), ("n2", "192.168.77.3")):
            cg = self.node_name(node)
            d = self.run_in(node, [DRIVE, "--node", cg, "--cgroup-name", cg, "--uplink", "eth0",
                                   "--node-ip", ip, "--maglev-seed", "0x5eed",
                                   "--maglev-m", "1021"] + self.DRIVE_ARGS)
            line = json.loads(d.readline())
            assert line.get("ready"), line
            self.drives[node] = d
            self.cgroups.append(cg)
        self.client = self.run_in("cl", [PY, "-c", CLIENT])

    def node_name(self, node):
        return self.name(node)

    def cgroup_path(self, node):
        if not self.cg_root:
            for line in open("/proc/self/mountinfo"):
                f = line.split()
                if f[f.index("-") + 1] == "cgroup2":
                    self.cg_root = f[4]
                    break
        return os.path.join(self.cg_root, self.node_name(node))

    def put_all(self, obj):
        for d in self.drives.values():
            r = d.cmd(json.dumps({"op": "put", "obj": obj}))
            assert "error" not in r, r

    def close(self):
        for d in self.drives.values():
            d.stop()
        for p in self.procs:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
        for node in ("n1", "n2"):
            sh(DRIVE, "--node", self.node_name(node), "--teardown", check=False)
        for what in list(self.ns):
            sh("ip", "netns", "del", self.ns[what], check=False)
        for node in ("n1", "n2"):
            cg = self.cgroup_path(node)
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


@pytest.fixture
def cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    c = Cluster()
    try:
        c.build()
        yield c
    finally:
        c.close()


def svc(name, spec):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def endpoints(name, backends, port=8080, proto="TCP"):
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "default"},
            "subsets": [{"addresses": [{"ip": ip, "nodeName": node} for ip, node in backends],
                         "ports": [{"name": "http", "port": port, "protocol": proto}]}]}


def web(c, policy="Cluster", external=None, proto="TCP"):
    spec = {"type": "NodePort", "clusterIP": "10.96.5.5", "externalTrafficPolicy": policy,
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080,
                       "protocol": proto}]}
    if external:
        spec["externalIPs"] = [external]
    for node in ("n1", "n2"):
        s = svc("web", spec)
        c.drives[node].cmd(json.dumps({"op": "put", "obj": s}))
        ep = endpoints("web", [("10.244.1.2", c.node_name("n1")),
                               ("10.244.2.2", c.node_name("n2"))], proto=proto)
        c.drives[node].cmd(json.dumps({"op": "put", "obj": ep}))


def test_nodeport_local_and_remote_backends(cluster):
    c = cluster
    web(c)
    seen = {}
    for _ in range(40):
        r = c.client.cmd("tcp 192.168.77.2 30080")
        assert "name" in r, r
        # the client talks to the node port all along (reverse NAT on the way back)
        assert r["peer"] == ["192.168.77.2", 30080]
        seen.setdefault(r["name"], set()).add(r["seen"])
    assert set(seen) == {"p1", "p2"}, seen
    # the local backend sees the client itself; the remote one sees node 1 (SNAT)
    assert seen["p1"] == {"192.168.77.1"}
    assert seen["p2"] == {"192.168.77.2"}

    # conntrack entries with named fields, readable by bpftool
    pin = os.path.join(PIN_ROOT, c.node_name("n1"), "shoal_ct")
    dump = [e["formatted"] for e in
            json.loads(sh("bpftool", "-j", "map", "dump", "pinned", pin).stdout)]
    assert dump and {"saddr", "daddr", "sport", "dport", "proto", "dir"} <= set(dump[0]["key"])
    assert {"backend_id", "rev_nat", "state", "flags", "nat_addr", "nat_port"} <= \
        set(dump[0]["value"])
    snat = [e for e in dump if e["value"]["flags"] & 1]
    assert snat, dump[:4]
    # shoalctl reads the same pins
    ctl = os.path.join(BUILD, "shoalctl")
    out = sh(ctl, "bpf", "services", c.node_name("n1")).stdout
    assert "192.168.77.2:30080/tcp" in out and "nodeport" in out, out
    assert "10.244.1.2:8080(local)" in out and "10.244.2.2:8080" in out, out
    out = sh(ctl, "bpf", "conntrack", c.node_name("n1")).stdout
    # states print by name; which one depends on whether the FINs were seen before the dump
    assert "192.168.77.1:" in out and ("established" in out or "closing" in out), out
    ct = json.loads(sh(ctl, "bpf", "conntrack", c.node_name("n1"), "-o", "json").stdout)
    assert any(e["snat"] and e["dir"] == "forward" for e in ct), ct[:4]
    st = c.drives["n1"].cmd('{"op":"stats"}')
    assert st["ct_entries"] >= 4 and st["ct_max"] > 0, st
    m = c.drives["n1"].cmd('{"op":"metrics"}')["text"]
    assert 'shoal_bpf_map_entries{map="shoal_ct"}' in m
    assert "shoal_conntrack_pressure" in m


def test_udp_nodeport(cluster):
    c = cluster
    web(c, proto="UDP")
    names = set()
    for _ in range(30):
        r = c.client.cmd("udp 192.168.77.2 30080")
        assert "name" in r, r
        assert r["src"] == ["192.168.77.2", 30080]
        names.add(r["name"])
    assert names == {"p1", "p2"}


def test_external_traffic_policy_local(cluster):
    c = cluster
    web(c, policy="Local")
    for _ in range(20):
        r = c.client.cmd("tcp 192.168.77.2 30080")
        assert r.get("name") == "p1", r
        assert r["seen"] == "192.168.77.1"  # no SNAT: the client's address is preserved


def test_external_ip(cluster):
    c = cluster
    web(c, external="192.168.100.7")
    names = set()
    for _ in range(30):
        r = c.client.cmd("tcp 192.168.100.7 80")
        assert "name" in r, r
        assert r["peer"] == ["192.168.100.7", 80]
        names.add(r["name"])
    assert names == {"p1", "p2"}


def test_maglev_same_backend_on_every_node(cluster):
    c = cluster
    web(c)
    # the same client flow (source address and port) sent to either node reaches one backend
    for sport in range(40000, 40016):
        a = c.client.cmd("tcp 192.168.77.2 30080 %d" % sport)
        b = c.client.cmd("tcp 192.168.77.3 30080 %d" % sport)
        assert "name" in a and "name" in b, (a, b)
        assert a["name"] == b["name"], (sport, a, b)


def test_hairpin_pod_to_own_nodeport(cluster):
    c = cluster
    web(c)
    # a pod of node 1 (in its cgroup subtree) reaches its own service through the node port
    client = c.run_in("p1", [PY, "-c", CLIENT], cgroup=c.cgroup_path("n1"))
    names = set()
    for _ in range(30):
        r = client.cmd("tcp 192.168.77.2 30080")
        assert "name" in r, r
        names.add(r["name"])
    assert "p1" in names
