# SPDX-License-Identifier: Apache-2.0
"""Host-reachable services: the socket LB attached at the cgroup2 root, acting only on its node.

The topology of test_svc_nodeport.py (two nodes n1, n2 on a LAN with an outside client cl, pod
backends p1 on n1 and p2 on n2), with both service proxies started in the host-reachable scope
(--host-reach): their sock_addr programs sit on the cgroup2 root of this machine, beside those
of every other daemon running here, and must act on their own node's network namespaces only.

Traffic goes only to addresses inside the namespaces the test creates; the machine's own
namespace is checked with a UDP connect() (no packet is sent) and the kernel's view of the peer
(/proc/net/udp), which no BPF program rewrites.
"""
import json
import os
import time

import pytest

from test_svc_nodeport import CLIENT, DRIVE, PY, SERVER, Cluster, endpoints, sh, svc

VIP, PORT, NODEPORT = "10.96.5.5", 80, 30080

# The kernel's peer of a connected UDP socket, as /proc/net/udp shows it (getpeername() is
# rewritten by the socket LB, this is not). Prints {"kpeer": "ip:port"} or {"err": errno}.
KPEER = r"""
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError as e:
    print(json.dumps({"err": e.errno})); sys.exit(0)
lport = s.getsockname()[1]
for line in open("/proc/self/net/udp").readlines()[1:]:
    f = line.split()
    lip, lp = f[1].split(":")
    if int(lp, 16) == lport:
        rip, rp = f[2].split(":")
        b = bytes.fromhex(rip)[::-1]
        print(json.dumps({"kpeer": "%s:%d" % (socket.inet_ntoa(b), int(rp, 16))}))
        break
"""


class HostCluster(Cluster):
    DRIVE_ARGS = ["--host-reach"]


@pytest.fixture
def hc():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    c = HostCluster()
    try:
        c.build()
        yield c
    finally:
        c.close()


def web_on(c, node, backends):
    spec = {"type": "NodePort", "clusterIP": VIP,
            "ports": [{"name": "http", "port": PORT, "targetPort": 8080, "nodePort": NODEPORT,
                       "protocol": "TCP"},
                      {"name": "dns", "port": PORT, "targetPort": 8080, "nodePort": NODEPORT,
                       "protocol": "UDP"}]}
    d = c.drives[node]
    assert "error" not in d.cmd(json.dumps({"op": "put", "obj": svc("web", spec)}))
    ep = endpoints("web", [(ip, c.node_name(n)) for ip, n in backends])
    ep["subsets"][0]["ports"].append({"name": "dns", "port": 8080, "protocol": "UDP"})
    assert "error" not in d.cmd(json.dumps({"op": "put", "obj": ep}))


def kpeer(ns):
    argv = [PY, "-c", KPEER, VIP, str(PORT)]
    if ns:
        argv = ["nsenter", "--net=/run/netns/" + ns] + argv
    return json.loads(sh(*argv).stdout)


def link_ids(c, node):
    """Program ids of the node's pinned links, by pin name."""
    out = {}
    d = os.path.join("/sys/fs/bpf/shoal", c.node_name(node), "links")
    for name in sorted(os.listdir(d)):
        info = json.loads(sh("bpftool", "-j", "link", "show", "pinned", os.path.join(d, name))
                          .stdout)
        out[name] = (info["id"], info["prog_id"])
    return out


def cgroup_progs(path):
    r = sh("bpftool", "-j", "cgroup", "show", path)
    return {p["id"] for p in json.loads(r.stdout or "[]")}


def test_node_processes_reach_services(hc):
    c = hc
    # only node 1 has the service; both nodes' programs are on the root cgroup
    web_on(c, "n1", [("10.244.1.2", "n1"), ("10.244.2.2", "n2")])
    ids1, ids2 = link_ids(c, "n1"), link_ids(c, "n2")
    root = os.path.dirname(c.cgroup_path("n1"))
    at_root = cgroup_progs(root)
    for ids in (ids1, ids2):
        assert {ids[n][1] for n in ("connect4", "sendmsg4", "recvmsg4", "getpeername4")} \
            <= at_root
        assert ids["sock_create"][1] not in at_root
    assert ids1["sock_create"][1] in cgroup_progs(c.cgroup_path("n1"))

    # a process of node 1 that is not in its cgroup subtree (as a shell on a real node)
    host = c.run_in("n1", [PY, "-c", CLIENT])
    names = set()
    for _ in range(30):
        r = host.cmd("tcp %s %d" % (VIP, PORT))
        assert "name" in r, r
        assert r["peer"] == [VIP, PORT]  # getpeername() shows the service
        names.add(r["name"])
    assert names == {"p1", "p2"}
    for _ in range(10):
        r = host.cmd("udp %s %d" % (VIP, PORT))
        assert "name" in r, r
        assert r["src"] == [VIP, PORT]  # replies come from the service
    # connected UDP is translated once, in connect()
    assert kpeer(c.ns["n1"])["kpeer"] in ("10.244.1.2:8080", "10.244.2.2:8080")
    # the node's own address : nodePort, from the node itself
    names = set()
    for _ in range(30):
        r = host.cmd("tcp 192.168.77.2 %d" % NODEPORT)
        assert "name" in r, r
        assert r["peer"] == ["192.168.77.2", NODEPORT]
        names.add(r["name"])
    assert names == {"p1", "p2"}
    # a pod of node 1 (in its cgroup subtree, its own netns) too
    pod = c.run_in("p1", ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"',
                          c.cgroup_path("n1"), PY, "-c", CLIENT])
    r = pod.cmd("tcp %s %d" % (VIP, PORT))
    assert r.get("peer") == [VIP, PORT], r
    # a process in that pod's namespace but outside the subtree (`ip netns exec`): the pod's
    # sockets registered the namespace (shoal_netns_dm, shoal_netns)
    outside = c.run_in("p1", [PY, "-c", CLIENT])
    r = outside.cmd("tcp %s %d" % (VIP, PORT))
    assert r.get("peer") == [VIP, PORT], r
    # every array entry taken by some other namespace: the hash behind it still knows the pods
    dm = os.path.join("/sys/fs/bpf/shoal", c.node_name("n1"), "shoal_netns_dm")
    taken = [e["key"] for e in json.loads(sh("bpftool", "-j", "map", "dump", "pinned", dm).stdout)
             if any(int(b, 16) for b in e["value"])]
    assert taken, "no pod namespace in shoal_netns_dm"
    for k in taken:
        sh("bpftool", "map", "update", "pinned", dm, "key", "hex", *[b[2:] for b in k],
           "value", "hex", "01", "00", "00", "00", "00", "00", "00", "00")
    r = outside.cmd("tcp %s %d" % (VIP, PORT))
    assert r.get("peer") == [VIP, PORT], r

    # node 2 and the machine's own namespace: not translated (no route, or the VIP itself)
    for ns in (c.ns["n2"], None):
        r = kpeer(ns)
        assert r.get("kpeer", VIP + ":80") == "%s:%d" % (VIP, PORT), (ns, r)
    other = c.run_in("n2", [PY, "-c", CLIENT])
    r = other.cmd("tcp 192.168.77.2 %d" % NODEPORT)
    # node 2 reaches node 1's NodePort from outside (tc on node 1), its own socket untranslated
    assert "name" in r, r
    assert r["seen"] == "192.168.77.3" or r["name"] == "p2", r


def test_second_node_unaffected_and_teardown_detaches(hc):
    c = hc
    web_on(c, "n1", [("10.244.1.2", "n1")])
    web_on(c, "n2", [("10.244.2.2", "n2")])
    h1 = c.run_in("n1", [PY, "-c", CLIENT])
    h2 = c.run_in("n2", [PY, "-c", CLIENT])
    for _ in range(10):
        assert h1.cmd("tcp %s %d" % (VIP, PORT)).get("name") == "p1"
        assert h2.cmd("tcp %s %d" % (VIP, PORT)).get("name") == "p2"
    assert kpeer(None).get("kpeer", VIP + ":80") == "%s:%d" % (VIP, PORT)

    ids1 = link_ids(c, "n1")
    c.drives["n1"].stop()
    sh(DRIVE, "--node", c.node_name("n1"), "--teardown")
    live = {ln["id"] for ln in json.loads(sh("bpftool", "-j", "link", "show").stdout)}
    assert not {i for i, _ in ids1.values()} & live, (ids1, "still attached")
    root = os.path.dirname(c.cgroup_path("n1"))
    assert not {p for _, p in ids1.values()} & cgroup_progs(root)
    assert not os.path.exists(os.path.join("/sys/fs/bpf/shoal", c.node_name("n1")))
    # node 1's processes are plain again; node 2 is untouched
    r = kpeer(c.ns["n1"])
    assert r.get("kpeer", VIP + ":80") == "%s:%d" % (VIP, PORT), r
    for _ in range(10):
        assert h2.cmd("tcp %s %d" % (VIP, PORT)).get("name") == "p2"


class AutoNode(Cluster):
    """One node with no datapath flags but --host-reach (as shoald's defaults): its uplink eth0
    (192.168.77.2, default route via the outside client 192.168.77.1) is found by itself."""

    def build(self):
        lan = self.netns("lan")
        sh("ip", "-n", lan, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", lan, "link", "set", "br0", "up")
        for what, ip in (("cl", "192.168.77.1"), ("n1", "192.168.77.2")):
            n = self.netns(what)
            sh("ip", "-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", what,
               "netns", lan)
            sh("ip", "-n", lan, "link", "set", what, "master", "br0", "up")
            sh("ip", "-n", n, "addr", "add", ip + "/24", "dev", "eth0")
            sh("ip", "-n", n, "link", "set", "eth0", "up")
        n, p = self.ns["n1"], self.netns("p1")
        sh("ip", "-n", n, "route", "add", "default", "via", "192.168.77.1")
        sh("ip", "-n", n, "link", "add", "vp", "type", "veth", "peer", "name", "eth0", "netns", p)
        sh("ip", "-n", n, "addr", "add", "10.244.1.1/24", "dev", "vp")
        sh("ip", "-n", n, "link", "set", "vp", "up")
        sh("ip", "-n", p, "addr", "add", "10.244.1.2/24", "dev", "eth0")
        sh("ip", "-n", p, "link", "set", "eth0", "up")
        sh("ip", "-n", p, "route", "add", "default", "via", "10.244.1.1")
        sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        srv = self.run_in("p1", [PY, "-c", SERVER, "p1", "8080"])
        assert srv.readline().strip() == "ready"
        cg = self.node_name("n1")
        d = self.run_in("n1", [DRIVE, "--node", cg, "--cgroup-name", cg, "--host-reach",
                               "--nodeport-auto"])
        line = json.loads(d.readline())
        assert line.get("ready"), line
        self.drives["n1"] = d
        self.client = self.run_in("cl", [PY, "-c", CLIENT])

    def close(self):
        for d in self.drives.values():
            d.stop()
        for p in self.procs:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
        # the teardown finds the interfaces it attached to in the node's netns
        sh("nsenter", "--net=/run/netns/" + self.ns["n1"], DRIVE, "--node",
           self.node_name("n1"), "--teardown", check=False)
        for what in list(self.ns):
            sh("ip", "netns", "del", self.ns[what], check=False)
        cg = self.cgroup_path("n1")
        for _ in range(50):
            try:
                if os.path.isdir(os.path.join(cg, "shoald")):
                    os.rmdir(os.path.join(cg, "shoald"))
                os.rmdir(cg)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


@pytest.fixture
def auto():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    c = AutoNode()
    try:
        c.build()
        yield c
    finally:
        c.close()


def tc_progs(ns, dev):
    out = ""
    for hook in ("ingress", "egress"):
        out += sh("ip", "netns", "exec", ns, "tc", "filter", "show", "dev", dev, hook,
                  check=False).stdout
    return out


def wait_for(what, pred, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if r:
            return r
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def test_nodeport_out_of_the_box_and_followed(auto):
    c = auto
    web_on(c, "n1", [("10.244.1.2", "n1")])
    n = c.ns["n1"]
    assert "shoal_np_ingres" in tc_progs(n, "eth0")  # the default route's interface
    assert "shoal_np" not in tc_progs(n, "vp")
    # from the outside client on the node's link: the backend sees the client itself
    for _ in range(10):
        r = c.client.cmd("tcp 192.168.77.2 %d" % NODEPORT)
        assert r.get("name") == "p1" and r["seen"] == "192.168.77.1", r
        assert r["peer"] == ["192.168.77.2", NODEPORT]
    r = c.client.cmd("udp 192.168.77.2 %d" % NODEPORT)
    assert r.get("name") == "p1" and r["src"] == ["192.168.77.2", NODEPORT], r
    # from the node itself, on every address of the node
    host = c.run_in("n1", [PY, "-c", CLIENT])
    for addr in ("192.168.77.2", "10.244.1.1"):
        r = host.cmd("tcp %s %d" % (addr, NODEPORT))
        assert r.get("name") == "p1" and r["peer"] == [addr, NODEPORT], (addr, r)

    # an address added later is served
    sh("ip", "-n", n, "addr", "add", "192.168.77.12/24", "dev", "eth0")
    wait_for("NodePort on the new address",
             lambda: c.client.cmd("tcp 192.168.77.12 %d" % NODEPORT).get("name") == "p1")
    # a new interface becomes the default route: the programs move there
    sh("ip", "-n", n, "link", "add", "eth1", "type", "veth", "peer", "name", "cl1", "netns",
       c.ns["cl"])
    sh("ip", "-n", n, "addr", "add", "192.168.88.2/24", "dev", "eth1")
    sh("ip", "-n", n, "link", "set", "eth1", "up")
    sh("ip", "-n", c.ns["cl"], "addr", "add", "192.168.88.1/24", "dev", "cl1")
    sh("ip", "-n", c.ns["cl"], "link", "set", "cl1", "up")
    sh("ip", "-n", n, "route", "replace", "default", "via", "192.168.88.1", "dev", "eth1")
    wait_for("tc programs on eth1", lambda: "shoal_np_ingres" in tc_progs(n, "eth1"))
    wait_for("tc programs off eth0", lambda: "shoal_np" not in tc_progs(n, "eth0"))
    r = wait_for("NodePort through eth1",
                 lambda: c.client.cmd("tcp 192.168.88.2 %d" % NODEPORT).get("name") == "p1")
