# SPDX-License-Identifier: Apache-2.0
"""Two real shoald on one machine, each in its own network namespace with its own services.

Both daemons run with no datapath flags (host-reachable scope: their sock_addr programs sit on
this machine's cgroup2 root, beside those of every other daemon running here), each runs one
server pod (shoal-probe, answering with its pod name) and has a Service with the same ClusterIP,
TCP and UDP, selecting it. What must hold: each node's own processes (not pods, not in its
cgroup) reach only their own node's pod and see the ClusterIP as the peer; the machine's own
namespace is passed untouched; a node torn down (`shoald --teardown`) leaves no link, program or
pin behind, its namespace is plain again and the other node is unaffected.

The machine's namespace is checked without sending a packet: a connected UDP socket and the
kernel's peer in /proc/net/udp, which no BPF program rewrites.
"""
import json
import os
import time

import pytest

from podtest import PodNode, busybox_image
from shoaltest import sh
from test_services_e2e import PROBE, probe_image
from test_svc_host import KPEER

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")

PY = "/usr/bin/python3"
VIP, PORT, TPORT = "10.96.211.7", 80, 9000


class Node:
    def __init__(self, i):
        self.i = i
        self.d = PodNode(images=[probe_image()])
        self.d.start()

    def serve(self):
        d = self.d
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "srv-%d" % self.i, "labels": {"app": "web"}},
               "spec": {"terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "c", "image": "shoal-probe:latest",
                                        "command": ["shoal-probe", "serve", str(TPORT)]}]}}
        d.create_pod(pod)
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"clusterIP": VIP, "selector": {"app": "web"},
                        "ports": [{"name": "t", "port": PORT, "targetPort": TPORT,
                                   "protocol": "TCP"},
                                  {"name": "u", "port": PORT, "targetPort": TPORT,
                                   "protocol": "UDP"}]}}
        r = d.post("/api/v1/namespaces/default/services", svc)
        assert r.status == 201, r
        return d.wait_running("srv-%d" % self.i)["status"]["podIP"]

    def probe(self, proto):
        """shoal-probe run by a plain process of the node: [ok, name, k=v...]."""
        return self.d.netns.run([PROBE, proto, VIP, str(PORT)], check=False).stdout.split()

    def kpeer(self):
        return json.loads(self.d.netns.run([PY, "-c", KPEER, VIP, str(PORT)]).stdout)

    def pins(self):
        return os.path.join("/sys/fs/bpf/shoal", self.d.node)

    def link_ids(self):
        out = {}
        d = os.path.join(self.pins(), "links")
        for name in sorted(os.listdir(d)):
            info = json.loads(sh("bpftool", "-j", "link", "show", "pinned",
                                 os.path.join(d, name)).stdout)
            out[name] = (info["id"], info["prog_id"])
        return out

    def close(self):
        self.d.close()  # a second teardown after the test's own finds nothing to do


def machine_kpeer():
    return json.loads(sh(PY, "-c", KPEER, VIP, str(PORT)).stdout)


def cgroup2_root():
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        if f[f.index("-") + 1] == "cgroup2":
            return f[4]
    raise AssertionError("no cgroup2 mount")


def root_progs():
    r = sh("bpftool", "-j", "cgroup", "show", cgroup2_root())
    return {p["id"] for p in json.loads(r.stdout or "[]")}


def wait_for(what, pred, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if r:
            return r
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


@pytest.fixture
def nodes():
    busybox_image()
    made = []
    try:
        for i in (1, 2):
            made.append(Node(i))
        yield made
    finally:
        for n in made:
            n.close()
    for n in made:
        assert not os.path.exists(n.pins()), "pins left behind: " + n.pins()


def test_second_daemon_unaffected_and_teardown_detaches(nodes):
    n1, n2 = nodes
    ips = {n.i: n.serve() for n in nodes}
    # each node's programs are on the cgroup2 root
    ids1, ids2 = n1.link_ids(), n2.link_ids()
    at_root = root_progs()
    for ids in (ids1, ids2):
        assert {ids[k][1] for k in ("connect4", "sendmsg4", "recvmsg4", "getpeername4")} \
            <= at_root, (ids, at_root)
    # each node's own processes reach their own pod only; peer and reply source are the VIP
    for n in nodes:
        wait_for("node %d's service" % n.i, lambda: n.probe("tcp")[:1] == ["ok"])
        for _ in range(5):
            w = n.probe("tcp")
            assert w[:2] == ["ok", "srv-%d" % n.i] and "peer=%s:%d" % (VIP, PORT) in w, (n.i, w)
        w = n.probe("udp")
        assert w[:2] == ["ok", "srv-%d" % n.i] and "src=%s:%d" % (VIP, PORT) in w, (n.i, w)
        assert n.kpeer()["kpeer"] == "%s:%d" % (ips[n.i], TPORT)
    # the machine's own namespace: its connected UDP socket keeps the VIP as its peer
    assert machine_kpeer().get("kpeer", "%s:%d" % (VIP, PORT)) == "%s:%d" % (VIP, PORT)

    # node 2 goes away for good: nothing of it stays attached or pinned
    n2.d.delete_all_pods()
    n2.d.stop()
    n2.d.teardown()
    live = {ln["id"] for ln in json.loads(sh("bpftool", "-j", "link", "show").stdout)}
    assert not {i for i, _ in ids2.values()} & live, (ids2, "still attached")
    assert not {p for _, p in ids2.values()} & root_progs()
    assert not os.path.exists(n2.pins())
    # node 2's namespace is plain again; node 1 and the machine are as they were
    assert n2.kpeer().get("kpeer", "%s:%d" % (VIP, PORT)) == "%s:%d" % (VIP, PORT)
    for _ in range(5):
        w = n1.probe("tcp")
        assert w[:2] == ["ok", "srv-1"] and "peer=%s:%d" % (VIP, PORT) in w, w
    assert n1.link_ids() == ids1
    assert machine_kpeer().get("kpeer", "%s:%d" % (VIP, PORT)) == "%s:%d" % (VIP, PORT)
