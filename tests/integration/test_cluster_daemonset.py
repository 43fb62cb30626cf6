# SPDX-License-Identifier: Apache-2.0
"""A DaemonSet on a devcluster (issue 12 item 4): created through one node, it runs one pod on
every node, bound there at creation and Running on that node; a node that joins later gets its
pod; a node that leaves (stopped, its Node deleted) takes its pod along; a rolling update moves
every node to the new template; every node reports the same status."""
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
