# SPDX-License-Identifier: Apache-2.0
"""tools/devcluster itself: standalone nodes (no gossip) reached through the kubeconfig's
contexts, every fault command, coexisting clusters, and `down` leaving nothing behind, also
after a crash in the middle of `up`."""
import os
import signal
import subprocess

import pytest

from devcluster import (Cluster, cluster_factory, down_and_check, new_cluster, tool,  # noqa: F401
                        udp_delivery, wait_for)
from kubeclients import KUBECTL, missing_reason


def api_code(c, src, dst, timeout=3):
    """HTTP status of GET /version from node src's namespace to node dst's API (0: no answer).
    Without a token the API answers 401, which proves the TLS listener is there."""
    r = src.in_ns("curl", "-sk", "-m", str(timeout), "-o", "/dev/null", "-w", "%{http_code}",
                  f"https://{dst.ip}:6443/version", check=False, timeout=timeout + 10)
    return int(r.stdout.strip() or 0)


def kubectl(c, *args, check=True):
    return c.hub_run(KUBECTL["1.33"], *args, check=check, timeout=60)


def test_devcluster_standalone_faults_and_down(cluster_factory):
    why = missing_reason("kubectl-1.33", KUBECTL["1.33"])
    if why:
        pytest.skip(why)
    c = cluster_factory(3, gossip=False)
    n1, n2, n3 = c.nodes()
    assert [nd.name for nd in c.nodes()] == [f"{c.name}-n{i}" for i in (1, 2, 3)]

    # the kubeconfig: one context per node named after it, current n1, TLS verified with the
    # node's CA, the cluster's token
    for nd in c.nodes():
        r = kubectl(c, "--context", nd.name, "get", "nodes", "-o", "name")
        assert r.stdout.split() == [f"node/{nd.name}"]
    assert kubectl(c, "config", "current-context").stdout.strip() == n1.name
    assert kubectl(c, "get", "nodes", "-o", "name").stdout.split() == [f"node/{n1.name}"]
    # each node has its own pod CIDR
    for nd in c.nodes():
        r = kubectl(c, "--context", nd.name, "get", "node", nd.name, "-o",
                    "jsonpath={.spec.podCIDR}")
        assert r.stdout == f"10.244.{nd.index}.0/24"
    # the API off loopback needs the token
    assert api_code(c, n1, n2) == 401

    # kill: SIGKILL, the API is gone; start: a new process, ready again
    pid = n3.pid()
    c.kill("n3")
    assert n3.pid() is None and n3.state() == "down"
    assert api_code(c, n1, n3, timeout=2) == 0
    c.start("n3")
    assert n3.pid() not in (None, pid)
    assert kubectl(c, "--context", n3.name, "get", "nodes", "-o", "name").returncode == 0

    # stop/cont: a stopped daemon answers nothing, then answers again
    c.stop(n2.name)  # the full node name works as well as nK
    assert n2.state() == "stopped"
    assert api_code(c, n1, n2, timeout=2) == 0
    c.cont("n2")
    assert n2.state() == "running"
    wait_for(lambda: api_code(c, n1, n2) == 401, 30, "n2 answers after cont")

    # partition: n1 | n2,n3; the hub (clients) still reaches everyone
    c.partition(["n1", "n2,n3"])
    assert api_code(c, n1, n2, timeout=2) == 0 and api_code(c, n3, n1, timeout=2) == 0
    assert api_code(c, n2, n3) == 401
    for nd in c.nodes():
        assert kubectl(c, "--context", nd.name, "get", "ns", "default", "-o", "name").stdout
    assert c.record["partition"] == [["n1"], ["n2", "n3"]]
    c.heal()
    assert api_code(c, n1, n2) == 401 and api_code(c, n3, n1) == 401

    # loss: a share of the packets arriving at a node is dropped (nftables numgen)
    c.loss(100, ["n2"])
    assert udp_delivery(n1, n2, count=200) == 0
    assert udp_delivery(n2, n1, count=200) == 200  # only what arrives at n2
    c.loss(50, ["n2"])
    got = udp_delivery(n1, n2, count=400)
    assert 100 < got < 300, got  # binomial(400, 0.5): outside this range ~1e-23
    c.loss(0)
    assert udp_delivery(n1, n2, count=200) == 200

    # the CLI on the same cluster: status names every node and its state
    c.kill("n3")
    r = subprocess.run([tool.__file__, "--name", c.name, "--dir", c.dir, "status"],
                       capture_output=True, text=True, check=True)
    lines = {l.split()[0]: l for l in r.stdout.splitlines()[1:] if l.strip()}
    assert "running" in lines[n1.name] and "down" in lines[n3.name], r.stdout
    r = subprocess.run([tool.__file__, "--name", c.name, "--dir", c.dir, "start", "n3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    c.record = c._load()
    assert n3.state() == "running"

    # a second cluster coexists, with the same node addresses in its own namespaces
    other = cluster_factory(1, gossip=False)
    (o1,) = other.nodes()
    assert o1.ip == n1.ip and o1.netns != n1.netns
    r = other.hub_run(KUBECTL["1.33"], "get", "nodes", "-o", "name")
    assert r.stdout.split() == [f"node/{o1.name}"]
    down_and_check(other)
    assert kubectl(c, "get", "nodes", "-o", "name").stdout.split() == [f"node/{n1.name}"]

    # down: nothing of the cluster is left (the fixture checks again)
    down_and_check(c)
    assert not os.path.exists(c.dir)


def test_devcluster_down_after_crash_mid_up():
    """A `up` that died after starting a daemon but before recording it (no record at all):
    `down` from a fresh process finds the namespaces, directories and the stray daemon."""
    c = new_cluster(gossip=False)
    n1 = c_pid = None
    try:
        c.record = {"name": c.name, "gossip": False, "nodes": {"n1": {}, "n2": {}}}
        c.save()
        c._write_secrets()
        c._net_up()
        n1 = c.node("n1")
        n1.spawn()
        c.wait_ready(nodes=[n1])
        c_pid = (n1.pid(), n1.rec["start"])
        os.unlink(c.record_path)  # the crash: nothing recorded
        r = subprocess.run([tool.__file__, "--name", c.name, "--dir", c.dir, "down"],
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
        assert n1.pid() is None, "the stray daemon survived down"
        c.record = {"nodes": {"n1": {}, "n2": {}}}
        assert not c.leftovers()
    finally:
        # only the daemon this test started (pid and start time both match)
        if c_pid and (tool.proc_identity(c_pid[0]) or ("", 0))[1] == c_pid[1]:
            os.kill(c_pid[0], signal.SIGKILL)
        if not os.path.exists(c.record_path):
            c.record = {"nodes": {"n1": {}, "n2": {}}}
        down_and_check(c)
