# SPDX-License-Identifier: Apache-2.0
"""A pod's /etc/resolv.conf for dnsPolicy ClusterFirst, Default and None with dnsConfig, read
inside running containers."""
import os

import pytest

from podtest import PodNode, ctr, pod_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done & wait"]


@pytest.fixture
def node():
    n = PodNode()
    try:
        n.start()
        yield n
    finally:
        n.close()


def resolv(node, name):
    node.wait_running(name)
    r = node.exec(name, "cat", "/etc/resolv.conf")
    assert r.returncode == 0, r
    return r.stdout.splitlines()


def test_dns_policies(node):
    cfg = {"nameservers": ["192.0.2.53"], "searches": ["my.dns.search.suffix"],
           "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    node.create_pod(pod_spec("none", [ctr("c", SLEEPER)], dnsPolicy="None", dnsConfig=cfg))
    node.create_pod(pod_spec("merged", [ctr("c", SLEEPER)], dnsConfig=cfg))
    node.create_pod(pod_spec("default", [ctr("c", SLEEPER)], dnsPolicy="Default"))

    assert resolv(node, "none") == ["search my.dns.search.suffix", "nameserver 192.0.2.53",
                                    "options ndots:2 edns0"]
    assert resolv(node, "merged") == [
        "search default.svc.cluster.local svc.cluster.local cluster.local my.dns.search.suffix",
        "nameserver 10.244.0.1", "nameserver 192.0.2.53", "options ndots:2 edns0"]

    # Default: the node's nameservers (at most three) and search domains
    host_ns, host_search = [], []
    with open("/etc/resolv.conf") as f:
        for l in f:
            w = l.split()
            if len(w) >= 2 and w[0] == "nameserver":
                host_ns.append(w[1])
            elif w and w[0] in ("search", "domain"):
                host_search = w[1:]
    lines = resolv(node, "default")
    assert [l.split()[1] for l in lines if l.startswith("nameserver")] == host_ns[:3]
    assert "nameserver 10.244.0.1" not in lines or "10.244.0.1" in host_ns
    got_search = [l.split()[1:] for l in lines if l.startswith("search")]
    assert got_search == ([host_search] if host_search else [])
    for name in ("none", "merged", "default"):
        node.delete_pod(name, grace=0)
    node.assert_no_leftovers()
