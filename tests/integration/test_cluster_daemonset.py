# SPDX-License-Identifier: Apache-2.0
"""A DaemonSet on a devcluster (issue 12 item 4): created through one node, it runs one pod on
every node, bound there at creation and Running on that node; a node that joins later gets its
pod; a node that leaves (stopped, its Node deleted) takes its pod along; a rolling update moves
every node to the new template; every node reports the same status. A node killed (-9) keeps its
daemon pod (it tolerates unreachable nodes), but once gossip holds the node dead every node's
DaemonSet status counts that pod not ready and the Endpoints of a Service over the daemon pods
list it under notReadyAddresses, as Kubernetes does once its node lifecycle controller marks the
pod NotReady; back alive, it is ready again."""
import json
import os
import signal
import time

import pytest

from devcluster import cluster_factory, wait_for  # noqa: F401
from shoaltest import ROOT

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "daemon", "repl.c")),
                                reason="no store replication in the daemon yet")

T = 120  # s: generous, the machine is shared

DS = {
    "apiVersion": "apps/v1", "kind": "DaemonSet",
    "metadata": {"name": "agent", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "updateStrategy": {"type": "RollingUpdate",
                           "rollingUpdate": {"maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox:latest",
                                "command": ["sleep", "3600"],
                                "env": [{"name": "VERSION", "value": "v1"}]}]}}}}


def get(nd, path):
    st, body = nd.api("GET", path)
    assert st == 200, (st, body[:300])
    return json.loads(body)


def node_names(nd):
    return {n["metadata"]["name"] for n in get(nd, "/api/v1/nodes")["items"]}


def agent_pods(nd):
    return [p for p in get(nd, "/api/v1/namespaces/default/pods?labelSelector=app%3Dagent")
            ["items"] if not p["metadata"].get("deletionTimestamp")]


def running(p):
    return p.get("status", {}).get("phase") == "Running"


def version(p):
    return p["spec"]["containers"][0]["env"][0]["value"]


def one_running_per_node(nd, nodes, want_version):
    """On observer nd: exactly one live agent pod per node in `nodes`, each Running there at
    want_version, and none elsewhere."""
    ps = agent_pods(nd)
    by_node = {}
    for p in ps:
        by_node.setdefault(p["spec"].get("nodeName"), []).append(p)
    return (set(by_node) == set(nodes) and all(len(v) == 1 for v in by_node.values())
            and all(running(v[0]) and version(v[0]) == want_version
                    for v in by_node.values()))


def status(nd):
    return get(nd, "/apis/apps/v1/namespaces/default/daemonsets/agent").get("status", {})


def settled(c, observers, nodes, want_version):
    n = len(nodes)
    return all(one_running_per_node(o, nodes, want_version) and
               (lambda s: s.get("desiredNumberScheduled") == n
                and s.get("numberAvailable") == n
                and s.get("updatedNumberScheduled") == n)(status(o))
               for o in observers)


def test_daemonset_on_every_node(cluster_factory):
    c = cluster_factory(3)
    nodes = c.nodes()
    names = {nd.name for nd in nodes}
    wait_for(lambda: all(node_names(nd) >= names for nd in nodes), T,
             "every Node on every node", interval=0.2)

    t0 = time.time()
    st, body = nodes[1].api("POST", "/apis/apps/v1/namespaces/default/daemonsets", DS)
    assert st == 201, body
    wait_for(lambda: settled(c, nodes, names, "v1"), T, "one Running agent pod per node",
             interval=0.5)
    print(f"3 nodes: every agent pod Running, status everywhere in {time.time() - t0:.1f} s")
    # every pod is bound to its node at creation and runs there (its node reports it)
    for nd in nodes:
        mine = [p for p in agent_pods(nd) if p["spec"]["nodeName"] == nd.name]
        assert len(mine) == 1 and running(mine[0])

    # a node that joins later gets its pod
    n4 = c.add_node()
    c.wait_converged(timeout=T)
    t0 = time.time()
    nodes = c.nodes()
    names = {nd.name for nd in nodes}
    wait_for(lambda: settled(c, nodes, names, "v1"), T, "an agent pod on the new node",
             interval=0.5)
    print(f"joined node converged -> its agent pod Running in {time.time() - t0:.1f} s")

    # a rolling update through the new node reaches every node
    ds = get(n4, "/apis/apps/v1/namespaces/default/daemonsets/agent")
    ds["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "v2"
    st, body = n4.api("PUT", "/apis/apps/v1/namespaces/default/daemonsets/agent", ds)
    assert st == 200, body
    t0 = time.time()
    wait_for(lambda: settled(c, nodes, names, "v2"), T, "every node at v2", interval=0.5)
    print(f"rolling update of 4 nodes (maxUnavailable 1) in {time.time() - t0:.1f} s")
    revs = get(nodes[0], "/apis/apps/v1/namespaces/default/controllerrevisions")["items"]
    assert sorted(r["revision"] for r in revs) == [1, 2]

    # a node that leaves takes its pod along: stopped, and its Node deleted
    gone = nodes[2]
    gone.signal(signal.SIGTERM)
    assert gone.wait_gone(30)
    rest = [nd for nd in nodes if nd is not gone]
    st, _ = rest[0].api("DELETE", f"/api/v1/nodes/{gone.name}")
    assert st in (200, 404)
    names.discard(gone.name)
    t0 = time.time()
    wait_for(lambda: settled(c, rest, names, "v2"), T,
             "the departed node's pod gone everywhere", interval=0.5)
    print(f"departed node's pod gone everywhere {time.time() - t0:.1f} s after its Node")


SVC = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "edge", "namespace": "default"},
    "spec": {"selector": {"app": "edge"}, "ports": [{"port": 80, "targetPort": 8080}]}}


def edge_ds():
    ds = json.loads(json.dumps(DS))
    ds["metadata"]["name"] = "edge"
    ds["spec"]["selector"]["matchLabels"]["app"] = "edge"
    ds["spec"]["template"]["metadata"]["labels"]["app"] = "edge"
    return ds


def edge_view(nd):
    """(ready IPs, not-ready IPs, the DaemonSet's numberReady and numberUnavailable) on nd."""
    st, body = nd.api("GET", "/api/v1/namespaces/default/endpoints/edge")
    ep = json.loads(body) if st == 200 else {}
    ready, not_ready = set(), set()
    for sub in ep.get("subsets", []):
        ready |= {a["ip"] for a in sub.get("addresses", [])}
        not_ready |= {a["ip"] for a in sub.get("notReadyAddresses", [])}
    st, body = nd.api("GET", "/apis/apps/v1/namespaces/default/daemonsets/edge")
    s = json.loads(body).get("status", {}) if st == 200 else {}
    return ready, not_ready, s.get("numberReady"), s.get("numberUnavailable")


def edge_ips(nd):
    """node name -> the IP of its live edge pod, as nd sees them."""
    ps = get(nd, "/api/v1/namespaces/default/pods?labelSelector=app%3Dedge")["items"]
    return {p["spec"]["nodeName"]: p["status"].get("podIP") for p in ps
            if not p["metadata"].get("deletionTimestamp") and running(p)}


def test_dead_nodes_daemon_pod_not_ready(cluster_factory):
    # the pod of a dead node would stay anyway (a daemon pod tolerates unreachable nodes); the
    # long grace keeps every other pod of the dead node in place too
    c = cluster_factory(3, extra_args=["--dead-node-grace-ms", "600000"])
    nodes = c.nodes()
    n1, n2, n3 = nodes
    names = {nd.name for nd in nodes}
    wait_for(lambda: all(node_names(nd) >= names for nd in nodes), T,
             "every Node on every node", interval=0.2)
    for path, obj in (("/apis/apps/v1/namespaces/default/daemonsets", edge_ds()),
                      ("/api/v1/namespaces/default/services", SVC)):
        st, body = n1.api("POST", path, obj)
        assert st == 201, body
    wait_for(lambda: len(edge_ips(n1)) == 3 and all(edge_ips(n1).values()), T,
             "an edge pod Running with an IP on every node", interval=0.5)
    ips = edge_ips(n1)
    every = set(ips.values())
    wait_for(lambda: all(edge_view(nd) == (every, set(), 3, 0) for nd in nodes), T,
             "3 ready addresses and numberReady 3 on every node", interval=0.5)

    t0 = time.time()
    c.kill(n3.short)
    live = (n1, n2)
    want = (every - {ips[n3.name]}, {ips[n3.name]}, 2, 1)
    wait_for(lambda: all(edge_view(nd) == want for nd in live), T,
             "n3's pod not ready in the Endpoints and the DaemonSet on n1 and n2", interval=0.2)
    print(f"n3 killed -> its pod not ready on n1 and n2 in {time.time() - t0:.1f} s")
    # the pod itself stays, bound to n3
    assert all(edge_ips(nd).get(n3.name) == ips[n3.name] for nd in live)

    c.start(n3.short)
    c.wait_converged(timeout=T)
    t0 = time.time()

    def all_ready_again():
        now = edge_ips(n1)  # n3's pod may have been restarted with another IP
        return len(now) == 3 and all(
            edge_view(nd) == (set(now.values()), set(), 3, 0) for nd in nodes)
    wait_for(all_ready_again, T, "n3's pod ready again on every node", interval=0.2)
    print(f"n3 back -> its pod ready again everywhere in {time.time() - t0:.1f} s")
