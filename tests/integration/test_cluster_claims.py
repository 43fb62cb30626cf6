# SPDX-License-Identifier: Apache-2.0
"""Cluster-wide uniqueness on a real cluster (tools/devcluster), issue 11 item 6: pod CIDRs claimed
from the cluster CIDR (claim and verify through the replicated store), unique whatever the
timing, kept across restarts and published in gossip metadata; a ClusterIP and a nodePort handed
to two Services on the two sides of a partition are repaired after the heal: the later Service
is re-addressed, with an Event.

Every check waits on a condition with a deadline (the machine is shared).
"""
import ipaddress
import json

import pytest

from devcluster import cluster_factory, tool, wait_for  # noqa: F401

pytestmark = pytest.mark.skipif("--tombstone-horizon-ms" not in tool.shoald_help(),
                                reason="shoald does not replicate yet")

CONVERGE = 90  # s
CLUSTER = ipaddress.ip_network("10.244.0.0/16")
SVC = "/api/v1/namespaces/default/services"


def get(nd, path):
    try:
        st, body = nd.api("GET", path)
    except OSError:
        return None
    return json.loads(body) if st == 200 else None


def pod_cidrs(obs, nodes):
    """{node name: spec.podCIDR of its Node as obs sees it}."""
    out = {}
    for nd in nodes:
        n = get(obs, f"/api/v1/nodes/{nd.name}")
        out[nd.name] = n["spec"].get("podCIDR") if n else None
    return out


def claims_dump(nd):
    st, body = nd.api("GET", "/apis/shoal.io/v1/registers/claims.shoal.io", timeout=10)
    return body if st == 200 else None


def wait_cidrs_settled(c, nodes):
    """Every node sees every node's pod CIDR, the same everywhere, all distinct /24s of the
    cluster CIDR, each published in the member's gossip metadata; returns {name: cidr}."""
    def settled():
        views = [pod_cidrs(o, nodes) for o in nodes]
        first = views[0]
        if any(v is None for v in first.values()) or any(v != first for v in views):
            return None
        nets = [ipaddress.ip_network(v) for v in first.values()]
        if len(set(nets)) != len(nets) or not all(n.prefixlen == 24 and n.subnet_of(CLUSTER)
                                                   for n in nets):
            return None
        for o in nodes:
            view = o.members_api() or {}
            if any((view.get(nd.name) or {}).get("meta", {}).get("podCIDR") != first[nd.name]
                   for nd in nodes):
                return None
        dumps = [claims_dump(o) for o in nodes]
        if dumps[0] is None or any(d != dumps[0] for d in dumps):
            return None
        return first
    return wait_for(settled, CONVERGE, "distinct pod CIDRs, the same on every node", interval=0.2)


def test_pod_cidrs_claimed_unique_and_kept(cluster_factory):
    # four nodes started at once race for the same first free /24
    c = cluster_factory(4, extra_args=["--pod-cidr", "auto", "--claim-settle-ms", "1000"])
    cidrs = wait_cidrs_settled(c, c.nodes())
    print("pod CIDRs:", cidrs)
    # one live claim per node, for its CIDR (the losers' claims were deleted)
    dump = claims_dump(c.nodes()[0]).decode()
    live = [line for line in dump.splitlines() if "tombstone" not in line and "deleted" not in
            line]
    for nd in c.nodes():
        mine = [line for line in live if line.rstrip().split()[1].endswith("." + nd.name)]
        want = cidrs[nd.name].replace(".", "-").replace("/", "-")
        assert len(mine) == 1 and want in mine[0], (nd.name, mine)

    # a restart keeps its CIDR
    n2 = c.node("n2")
    c.kill("n2")
    c.start("n2")
    c.wait_converged(timeout=CONVERGE)
    assert wait_cidrs_settled(c, c.nodes())[n2.name] == cidrs[n2.name]

    # a node joining later gets a free one
    n5 = c.add_node(extra_args=["--pod-cidr", "auto", "--claim-settle-ms", "1000"])
    c.wait_converged(timeout=CONVERGE)
    after = wait_cidrs_settled(c, c.nodes())
    assert {k: v for k, v in after.items() if k != n5.name} == cidrs
    assert after[n5.name] not in cidrs.values()


def svc_body(name, ip, node_port):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": ip, "selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": 8080, "nodePort": node_port}]}}


def test_duplicates_after_a_partition_heal_are_repaired(cluster_factory):
    c = cluster_factory(3)
    n1, n2, n3 = c.nodes()
    c.partition(["n1"])
    # both sides hand out the same address and port: each replica sees it free
    ip, port = "10.96.200.200", 31234
    st, body = n1.api("POST", SVC, svc_body("first", ip, port))
    assert st == 201, body
    st, body = n2.api("POST", SVC, svc_body("second", ip, port))
    assert st == 201, body
    c.heal()

    def repaired():
        views = []
        for o in c.nodes():
            a, b = get(o, f"{SVC}/first"), get(o, f"{SVC}/second")
            if not a or not b:
                return None
            views.append((a["spec"]["clusterIP"], a["spec"]["ports"][0]["nodePort"],
                          b["spec"]["clusterIP"], b["spec"]["ports"][0]["nodePort"]))
        if any(v != views[0] for v in views):
            return None
        a_ip, a_port, b_ip, b_port = views[0]
        return views[0] if a_ip != b_ip and a_port != b_port else None
    a_ip, a_port, b_ip, b_port = wait_for(repaired, CONVERGE,
                                          "the later service re-addressed on every node")
    # the service created first keeps what it had; the other got new ones in range
    assert (a_ip, a_port) == (ip, port)
    assert ipaddress.ip_address(b_ip) in ipaddress.ip_network("10.96.0.0/12")
    assert 30000 <= b_port <= 32767
    b = get(n3, f"{SVC}/second")
    assert b["spec"]["clusterIPs"] == [b_ip]

    def events():
        ev = get(n3, "/api/v1/namespaces/default/events") or {"items": []}
        return {e["reason"] for e in ev["items"]
                if e["involvedObject"].get("name") == "second"
                and e["involvedObject"].get("kind") == "Service"} >= {
            "ClusterIPAlreadyAllocated", "PortAlreadyAllocated"}
    wait_for(events, CONVERGE, "Warning Events on the re-addressed service")
