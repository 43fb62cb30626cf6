# SPDX-License-Identifier: Apache-2.0
"""Controllers across nodes (issue 11 item 8) on a devcluster:

- the garbage collector never deletes a dependent because its owner has not arrived: only the
  owner's tombstone with the referenced uid deletes it;
- a stale status write (from a node that is not the owner) does not win: the owner writes the
  status again;
- a Deployment whose owner node dies is taken over by a new owner, which resumes (a scale) once
  it has caught up, without ever making more pods than the spec asks for;
- a ReplicaSet scaled down while a node is dead deletes that node's pods, though their last
  status says Ready and they were ready longest;
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


def ready(p):
    return not p["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in p.get("status", {}).get("conditions", []))


def rs_pods(nd, name):
    """{pod name: pod} of the ReplicaSet in nd's replica (None: no answer)."""
    try:
        r = get(nd, f"/api/v1/namespaces/default/pods?labelSelector=rs%3D{name}")
    except OSError:
        return None
    return None if r is None else {p["metadata"]["name"]: p for p in r["items"]}


def rs_scale(nd, name, replicas):
    rs = get(nd, RSS + "/" + name)
    rs["spec"]["replicas"] = replicas
    rs["metadata"].pop("resourceVersion", None)  # its status moves meanwhile
    st, body = nd.api("PUT", RSS + "/" + name, rs)
    assert st == 200, body


def test_scale_down_deletes_dead_nodes_pods(cluster_factory):
    # the healer would delete the dead node's pods after its grace period: hold it off, so the
    # scale-down is what picks
    c = cluster_factory(3, extra_args=["--dead-node-grace-ms", "600000"])
    nodes = c.nodes()
    n1 = nodes[0]
    rs = replicaset("down")
    tmpl = rs["spec"]["template"]["spec"]
    tmpl["terminationGracePeriodSeconds"] = 1
    # requests spread the replicas over the nodes (least-allocated)
    tmpl["containers"][0].update({"command": ["sleep", "3600"], "resources": {
        "requests": {"cpu": "50m", "memory": "8Mi"}}})
    rs["spec"]["replicas"] = 1
    post(n1, RSS, rs)
    first = wait_for(lambda: (lambda ps: ps and len(ps) == 1 and all(map(ready, ps.values()))
                              and ps)(rs_pods(n1, "down")), T, "the first pod ready")
    (first_name, first_pod), = first.items()
    victim = next(nd for nd in nodes if nd.name == first_pod["spec"]["nodeName"])
    rest = [nd for nd in nodes if nd is not victim]
    # the others come later, so the victim's first pod is the one ready longest: the pod
    # Kubernetes' order keeps longest if its Ready=True were believed
    rs_scale(n1, "down", 5)
    pods = wait_for(lambda: all((lambda ps: ps and len(ps) == 5 and
                                 all(map(ready, ps.values())) and ps)(rs_pods(nd, "down"))
                                for nd in nodes) and rs_pods(n1, "down"), T,
                    "5 pods ready everywhere")
    lost = {n for n, p in pods.items() if p["spec"]["nodeName"] == victim.name}
    kept = set(pods) - lost
    print(f"placement: {sorted((p['spec']['nodeName'], n) for n, p in pods.items())}; "
          f"victim {victim.name}")
    assert first_name in lost and 0 < len(lost) < 5, (lost, kept)

    c.kill(victim.short)
    c.wait_converged(timeout=T, expect={victim.name: "dead"})
    # through a survivor; the ReplicaSet's owner may be the victim (then the new owner acts
    # after the handover's settle window)
    rs_scale(rest[0], "down", len(kept))

    def settled(nd):
        ps = rs_pods(nd, "down")
        r = get(nd, RSS + "/down")
        if not ps or not r or r.get("status", {}).get("observedGeneration") != \
                r["metadata"].get("generation") or r["status"].get("replicas") != len(kept):
            return None
        # the status may arrive before the pods' deletions: wait for both
        active = {n for n, p in ps.items() if not p["metadata"].get("deletionTimestamp")}
        return active if len(active) == len(kept) else None

    for nd in rest:
        active = wait_for(lambda nd=nd: settled(nd), T, f"scaled down on {nd.name}")
        assert active == kept, f"{nd.name}: active {sorted(active)}, the dead " \
            f"{victim.name}'s {sorted(lost)}, expected {sorted(kept)}"
