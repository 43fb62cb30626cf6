# SPDX-License-Identifier: Apache-2.0
"""`shoald --teardown` decommissions a node whose daemon died with pods running: containers and
their shims, mounts, pod network namespaces, cgroups, pinned maps, tc programs and the nft table
all go, and the command says so with exit status 0."""
import os

import pytest

from podtest import HTTPD, PodNode, ctr, pod_spec
from shoaltest import Shoald, sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")


def run_teardown(node):
    r = node.netns.run(node.args() + ["--teardown"], check=False, timeout=120)
    return r.returncode, r.stdout + r.stderr


def node_cgroups(node):
    return [f"/sys/fs/cgroup/{c}/{node.cgroup}" for c in os.listdir("/sys/fs/cgroup")
            if os.path.isdir(f"/sys/fs/cgroup/{c}/{node.cgroup}")]


def tc_filters(node):
    out = []
    for where in ("ingress", "egress"):
        r = node.in_node("tc", "filter", "show", "dev", "eth0", where, check=False)
        out += [f"tc {where} {l.strip()}" for l in r.stdout.splitlines() if l.strip()]
    return out


def nft_table(node):
    return node.in_node("nft", "list", "table", "ip", f"shoal-{node.node}",
                        check=False).returncode == 0


def pin_dir(node):
    return f"/sys/fs/bpf/shoal/{node.node}"


def test_teardown_after_sigkill_with_pods_running():
    n = PodNode(extra_args=["--uplink", "eth0"])
    try:
        n.start()
        n.create_pod(pod_spec("hostport", [ctr("httpd", HTTPD, ports=[
            {"containerPort": 8080, "hostPort": 18080}])]))
        n.create_pod(pod_spec("volume", [ctr("c", ["sh", "-c", "trap 'exit 0' TERM; "
                                                   "date > /data/x; sleep 3600 & wait"],
                                             volumeMounts=[{"name": "data", "mountPath": "/data"},
                                                           {"name": "mem", "mountPath": "/mem"}])],
                              volumes=[{"name": "data", "emptyDir": {}},
                                       {"name": "mem", "emptyDir": {"medium": "Memory"}}]))
        n.create_pod(pod_spec("ready", [ctr("httpd", HTTPD, readinessProbe={
            "httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1})]))
        for name in ("hostport", "volume", "ready"):
            n.wait_running(name, timeout=60)

        # there is something of every kind to remove
        procs = n.processes()
        assert len([p for p in procs if p.startswith("shim ")]) == 3, procs
        assert len([p for p in procs if p.startswith("container process ")]) >= 3, procs
        assert len([l for l in n.leftovers() if l.startswith("netns ")]) == 3
        assert any(l.startswith("mount ") for l in n.leftovers())
        assert tc_filters(n) and nft_table(n) and os.path.isdir(pin_dir(n))

        n.kill()
        assert len([p for p in n.processes() if p.startswith("shim ")]) == 3, \
            "the pods outlive the daemon"

        rc, out = run_teardown(n)
        assert rc == 0, out
        # the IP leases and pod directories are state, kept like the rest of the state dir
        left = [l for l in n.leftovers() if not l.startswith(("lease ", "pod dir "))]
        assert left == [], out
        assert node_cgroups(n) == [], out
        assert tc_filters(n) == [], out
        assert not nft_table(n), out
        assert not os.path.exists(pin_dir(n)), out

        # nothing left to remove is not an error either
        rc, out = run_teardown(n)
        assert rc == 0, out
    finally:
        n.close()


def test_teardown_of_a_node_that_never_ran():
    d = Shoald(pods=True)
    try:
        rc, out = run_teardown(d)
        assert rc == 0, out
    finally:
        d.netns.close()
        sh("rm", "-rf", d.tmp, check=False)
