# SPDX-License-Identifier: Apache-2.0
"""Controllers across nodes (issue 11 item 8) on a devcluster:

- the garbage collector never deletes a dependent because its owner has not arrived: only the
  owner's tombstone with the referenced uid deletes it;
- a stale status write (from a node that is not the owner) does not win: the owner writes the
  status again;
- a Deployment whose owner node dies is taken over by a new owner, which resumes (a scale) once
  it has caught up, without ever making more pods than the spec asks for;
- Events expire after --event-ttl, deleted by the node that wrote them."""
import json
import os
import re
import threading
import time

import pytest

from devcluster import cluster_factory, wait_for  # noqa: F401
from shoaltest import ROOT

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "daemon", "repl.c")),
                                reason="no store replication in the daemon yet")

T = 120  # s: generous, the machine is shared
GC_RECHECK = 10  # s: how often the collector looks again at a dependent whose owner is unknown
CMS = "/api/v1/namespaces/default/configmaps"
RSS = "/apis/apps/v1/namespaces/default/replicasets"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def get(nd, path):
    st, body = nd.api("GET", path)
    return json.loads(body) if st == 200 else None


def post(nd, path, obj):
    st, body = nd.api("POST", path, obj)
    assert st == 201, body
    return json.loads(body)


def dependent(name, owner, uid):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": owner, "uid": uid}]}}


def replicaset(name):
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"rs": name}},
                     "template": {"metadata": {"labels": {"rs": name}},
                                  "spec": {"containers": [{"name": "c",
                                                           "image": "busybox:latest"}]}}}}


def exists_everywhere(nodes, path):
    return all(get(nd, path) is not None for nd in nodes)


def gone_everywhere(nodes, path):
    return all(get(nd, path) is None for nd in nodes)


def test_gc_and_stale_status(cluster_factory):
    c = cluster_factory(3)
    n1, n2, n3 = nodes = c.nodes()

    # a dependent whose owner has not arrived (and here never will) is left alone
    post(n1, CMS, dependent("waits", "later", "00000000-0000-4000-8000-00000000beef"))
    # a dependent created on n1 the moment its owner exists on n2: it may well arrive first
    rs = post(n2, RSS, replicaset("owner"))
    post(n1, CMS, dependent("owned", "owner", rs["metadata"]["uid"]))
    wait_for(lambda: exists_everywhere(nodes, CMS + "/waits") and
             exists_everywhere(nodes, CMS + "/owned") and
             exists_everywhere(nodes, RSS + "/owner"), T, "objects on every node")
    # longer than the collector's re-check period: nothing is collected
    deadline = time.time() + GC_RECHECK + 3
    while time.time() < deadline:
        assert exists_everywhere(nodes, CMS + "/waits")
        assert exists_everywhere(nodes, CMS + "/owned")
        time.sleep(0.5)
    # the owner's tombstone (matching uid) collects its dependent, on every node
    st, _ = n3.api("DELETE", RSS + "/owner")
    assert st == 200
    wait_for(lambda: gone_everywhere(nodes, CMS + "/owned"), T, "dependent collected")
    assert exists_everywhere(nodes, CMS + "/waits")

    # a stale status write does not win: the owner writes its own again, everywhere
    d = deployment("web", 0)
    post(n1, DEPLOYS, d)
    wait_for(lambda: all((get(nd, DEPLOYS + "/web") or {}).get("status", {})
                         .get("observedGeneration") == 1 for nd in nodes), T,
             "deployment status everywhere")
    for nd in nodes:  # from every node: one of them is not the owner
        cur = get(nd, DEPLOYS + "/web")
        cur["status"]["replicas"] = 42
        cur["status"]["observedGeneration"] = 7
        cur["metadata"].pop("resourceVersion", None)  # unconditional, as a stale owner writes
        st, body = nd.api("PUT", DEPLOYS + "/web/status", cur)
        assert st == 200, body
    wait_for(lambda: all((get(nd, DEPLOYS + "/web") or {}).get("status", {})
                         .get("observedGeneration") == 1 and
                         get(nd, DEPLOYS + "/web")["status"].get("replicas", 0) == 0
                         for nd in nodes), T, "the owner's status back on every node")


def deployment(name, replicas):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "c",
                                                           "image": "busybox:latest",
                                                           "command": ["sleep", "3600"]}]}}}}


def web_pods(nd):
    r = get(nd, "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
    return [p for p in (r or {}).get("items", []) if not p["metadata"].get("deletionTimestamp")]


class MaxPods(threading.Thread):
    """The most live web pods any observer ever showed."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes, self.max, self.stop = nodes, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            for nd in self.nodes:
                try:
                    self.max = max(self.max, len(web_pods(nd)))
                except OSError:
                    pass
            time.sleep(0.1)


def test_owner_dies_new_owner_resumes(cluster_factory):
    c = cluster_factory(3)
    nodes = c.nodes()
    post(nodes[0], DEPLOYS, deployment("web", 3))
    wait_for(lambda: all(len(web_pods(nd)) == 3 for nd in nodes), T, "3 pods everywhere")

    # the node that reconciled the Deployment (its ReplicaSet's writer) dies
    dump = nodes[0].api("GET", "/apis/shoal.io/v1/registers/replicasets.apps")[1].decode()
    m = re.search(r"default/web-\S+ .* spec=\d+@(\S+)", dump)
    assert m, dump
    owner = next(nd for nd in nodes if nd.name == m.group(1))
    rest = [nd for nd in nodes if nd is not owner]
    mon = MaxPods(rest)
    mon.start()
    t0 = time.time()
    c.kill(owner.short)
    c.wait_converged(timeout=T, expect={owner.name: "dead"})
    t_dead = time.time()
    # scale through a survivor: the new owner acts once caught up (or after the settle window)
    d = get(rest[0], DEPLOYS + "/web")
    d["spec"]["replicas"] = 5
    st, body = rest[0].api("PUT", DEPLOYS + "/web", d)
    assert st == 200, body
    wait_for(lambda: all(len(web_pods(nd)) == 5 for nd in rest) and
             all((get(nd, DEPLOYS + "/web") or {}).get("status", {}).get("replicas") == 5
                 for nd in rest), T, "scaled to 5 by the new owner")
    print(f"owner killed -> dead everywhere {t_dead - t0:.1f} s -> scaled to 5 "
          f"{time.time() - t_dead:.1f} s later")
    mon.stop.set()
    mon.join()
    assert mon.max <= 5, f"{mon.max} pods at some point"
    # the new owner held the key back until the settle window (the old owner is dead: no
    # anti-entropy round with it can complete)
    waits = sum(nd.metrics().get("shoal_controller_handover_waits_total", 0) for nd in rest)
    assert waits > 0


def test_events_expire_by_their_writer(cluster_factory):
    c = cluster_factory(3, extra_args=["--event-ttl", "3"])
    n1, n2, n3 = nodes = c.nodes()
    ev = {"apiVersion": "v1", "kind": "Event",
          "metadata": {"name": "hello", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
          "reason": "Testing", "message": "hi", "type": "Normal", "count": 1}
    post(n2, "/api/v1/namespaces/default/events", ev)
    wait_for(lambda: exists_everywhere(nodes, "/api/v1/namespaces/default/events/hello"), T,
             "the event everywhere")
    wait_for(lambda: gone_everywhere(nodes, "/api/v1/namespaces/default/events/hello"), T,
             "the event expired everywhere")
    # the tombstone was written by n2, the node that made the event
    for nd in nodes:
        dump = nd.api("GET", "/apis/shoal.io/v1/registers/events")[1].decode()
        line = next(l for l in dump.splitlines() if " default/hello " in l)
        assert re.search(r"spec=\d+@" + re.escape(n2.name) + " deleted", line), line
