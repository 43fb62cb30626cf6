# SPDX-License-Identifier: Apache-2.0
"""Placement on one node (its own Node object is the whole cluster): a pending pod is placed and
bound by the scheduler; one that fits nowhere stays Pending with PodScheduled=False, reason
Unschedulable, Kubernetes' message and a FailedScheduling Event, and is placed once the node
changes (labels, cordon, taints, resources freed)."""
import os

import pytest

from podtest import PodNode, cond, ctr, pod_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")

SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done & wait"]


@pytest.fixture(scope="module")
def node():
    n = PodNode()
    try:
        n.start()
        yield n
    finally:
        n.close()


def scheduled(p):
    for c in p.get("status", {}).get("conditions", []):
        if c["type"] == "PodScheduled":
            return c
    return {}


def wait_unschedulable(node, name, message):
    p = node.wait_pod(name, lambda p: scheduled(p).get("reason") == "Unschedulable" and
                      scheduled(p).get("message") == message, what=f"Unschedulable: {message}")
    assert p["status"]["phase"] == "Pending"
    assert scheduled(p)["status"] == "False"
    assert not p["spec"].get("nodeName")
    ev = node.wait_event(name, "FailedScheduling", message)
    assert ev["type"] == "Warning" and ev["source"]["component"] == "default-scheduler"
    return p


def patch_node(node, body, ctype="application/merge-patch+json"):
    r = node.patch(f"/api/v1/nodes/{node.node}", body, ctype=ctype)
    assert r.status == 200, r


def metric(node, name):
    for line in node.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_pending_pod_is_placed_and_bound(node):
    binds = metric(node, "shoal_sched_binds_total")
    node.create_pod(pod_spec("placed", [ctr("c", SLEEP)]))
    p = node.wait_running("placed")
    assert p["spec"]["nodeName"] == node.node
    assert cond(p, "PodScheduled") == "True"
    ev = node.wait_event("placed", "Scheduled", f"Successfully assigned default/placed to "
                         f"{node.node}")
    assert ev["source"]["component"] == "default-scheduler"
    assert metric(node, "shoal_sched_binds_total") == binds + 1
    assert metric(node, "shoal_sched_placement_seconds_count") >= 1
    node.delete_pod("placed", grace=0)


def test_node_selector_unschedulable_until_labelled(node):
    node.create_pod(pod_spec("ssd", [ctr("c", SLEEP)], nodeSelector={"disktype": "ssd"}))
    wait_unschedulable(node, "ssd", "0/1 nodes are available: 1 node(s) didn't match Pod's "
                       "node affinity/selector.")
    # the cluster changed: the pod is placed again
    patch_node(node, {"metadata": {"labels": {"disktype": "ssd"}}})
    p = node.wait_running("ssd")
    assert p["spec"]["nodeName"] == node.node and cond(p, "PodScheduled") == "True"
    node.delete_pod("ssd", grace=0)
    patch_node(node, {"metadata": {"labels": {"disktype": None}}})


def test_insufficient_resources_until_freed(node):
    cpu = int(node.get(f"/api/v1/nodes/{node.node}").json()["status"]["allocatable"]["cpu"])
    half = f"{cpu * 1000 // 2 + 100}m"  # two of these do not fit
    node.create_pod(pod_spec("big1", [ctr("c", SLEEP, resources={"requests": {"cpu": half}})]))
    node.wait_running("big1")
    node.create_pod(pod_spec("big2", [ctr("c", SLEEP, resources={"requests": {"cpu": half}})]))
    wait_unschedulable(node, "big2", "0/1 nodes are available: 1 Insufficient cpu.")
    node.create_pod(pod_spec("huge", [ctr("c", SLEEP, resources={
        "requests": {"cpu": "1000", "memory": "100Ti"}})]))
    wait_unschedulable(node, "huge", "0/1 nodes are available: 1 Insufficient cpu, "
                       "1 Insufficient memory.")
    # big1 ends: big2 fits now
    node.delete_pod("big1", grace=0)
    p = node.wait_running("big2")
    assert p["spec"]["nodeName"] == node.node
    assert node.pod("huge")["status"]["phase"] == "Pending"
    node.delete_pod("big2", grace=0)
    node.delete_pod("huge", grace=0)


def test_pod_anti_affinity_and_spread(node):
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname",
         "labelSelector": {"matchLabels": {"app": "solo"}}}]}}
    one = pod_spec("solo1", [ctr("c", SLEEP)], affinity=anti)
    one["metadata"]["labels"] = {"app": "solo"}
    node.create_pod(one)
    node.wait_running("solo1")
    two = pod_spec("solo2", [ctr("c", SLEEP)], affinity=anti)
    two["metadata"]["labels"] = {"app": "solo"}
    node.create_pod(two)
    wait_unschedulable(node, "solo2", "0/1 nodes are available: 1 node(s) didn't match pod "
                       "anti-affinity rules.")
    # a zone spread constraint on a node without the zone label
    sp = pod_spec("spread", [ctr("c", SLEEP)], topologySpreadConstraints=[
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
         "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}])
    node.create_pod(sp)
    wait_unschedulable(node, "spread", "0/1 nodes are available: 1 node(s) didn't match pod "
                       "topology spread constraints (missing required label).")
    patch_node(node, {"metadata": {"labels": {"topology.kubernetes.io/zone": "z1"}}})
    node.wait_running("spread")
    # solo1 gone: solo2 may run
    node.delete_pod("solo1", grace=0)
    node.wait_running("solo2")
    node.delete_pod("solo2", grace=0)
    node.delete_pod("spread", grace=0)
    patch_node(node, {"metadata": {"labels": {"topology.kubernetes.io/zone": None}}})


def test_cordon_and_taints(node):
    patch_node(node, {"spec": {"unschedulable": True}})
    node.create_pod(pod_spec("cordoned", [ctr("c", SLEEP)]))
    wait_unschedulable(node, "cordoned", "0/1 nodes are available: 1 node(s) were "
                       "unschedulable.")
    patch_node(node, {"spec": {"unschedulable": None}})
    node.wait_running("cordoned")

    patch_node(node, {"spec": {"taints": [{"key": "dedicated", "value": "db",
                                           "effect": "NoSchedule"}]}})
    node.create_pod(pod_spec("tainted", [ctr("c", SLEEP)]))
    wait_unschedulable(node, "tainted", "0/1 nodes are available: 1 node(s) had untolerated "
                       "taint {dedicated: db}.")
    node.create_pod(pod_spec("tolerant", [ctr("c", SLEEP)], tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]))
    node.wait_running("tolerant")
    patch_node(node, {"spec": {"taints": None}})
    node.wait_running("tainted")
    for n in ("cordoned", "tainted", "tolerant"):
        node.delete_pod(n, grace=0)
    node.assert_no_leftovers()


DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:latest
        command: ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done & wait"]
"""

PDB = """apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: @MIN@
  selector:
    matchLabels: {app: web}
"""


def web_pods(node):
    items = node.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").json()["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def evict(node, name):
    return node.post(f"/api/v1/namespaces/default/pods/{name}/eviction",
                     {"apiVersion": "policy/v1", "kind": "Eviction",
                      "metadata": {"name": name, "namespace": "default"}})


def test_eviction_pdb_cordon_drain(node):
    from kubeclients import KUBECTL, Kubectl, make_tmp, missing_reason, rm_tmp
    from devcluster import wait_for
    why = missing_reason("kubectl-1.33", KUBECTL["1.33"])
    if why:
        pytest.skip(why)
    tmp = make_tmp()
    k = Kubectl("1.33", node, tmp)
    try:
        k.run("apply", "-f", k.write("web.yaml", DEPLOY))
        wait_for(lambda: len([p for p in web_pods(node) if cond(p, "Ready") == "True"]) == 2,
                 60, "web Ready")
        k.run("apply", "-f", k.write("pdb.yaml", PDB.replace("@MIN@", "2")))
        pdb = wait_for(lambda: (lambda s: s if s.get("expectedPods") == 2 else None)(
            node.get("/apis/policy/v1/namespaces/default/poddisruptionbudgets/web").json()
            .get("status", {})), 30, "PDB status")
        assert pdb["currentHealthy"] == 2 and pdb["desiredHealthy"] == 2
        assert pdb["disruptionsAllowed"] == 0
        out = k.run("get", "pdb", "web").stdout
        assert out.split("\n")[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE",
                                              "ALLOWED", "DISRUPTIONS", "AGE"], out
        assert out.split("\n")[1].split()[:4] == ["web", "2", "N/A", "0"], out
        # the budget forbids it: 429 with Kubernetes' cause
        victim = web_pods(node)[0]["metadata"]["name"]
        r = evict(node, victim)
        assert r.status == 429, r
        st = r.json()
        assert st["reason"] == "TooManyRequests"
        assert st["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
        assert st["details"]["causes"] == [{"reason": "DisruptionBudget", "message":
                                            "The disruption budget web needs 2 healthy pods "
                                            "and has 2 currently"}]
        assert node.pod(victim) and not node.pod(victim)["metadata"].get("deletionTimestamp")

        # one disruption allowed: drain cordons, evicts one pod and then waits on the budget
        k.run("apply", "-f", k.write("pdb.yaml", PDB.replace("@MIN@", "1")))
        wait_for(lambda: node.get("/apis/policy/v1/namespaces/default/poddisruptionbudgets/"
                                  "web").json().get("status", {}).get("disruptionsAllowed") == 1,
                 30, "one disruption allowed")
        r = k.run("drain", node.node, "--ignore-daemonsets", "--timeout", "15s", check=False)
        assert r.returncode != 0
        assert f"node/{node.node} cordoned" in r.stdout
        assert "disruption budget" in r.stderr, r.stderr
        assert node.get(f"/api/v1/nodes/{node.node}").json()["spec"]["unschedulable"] is True
        # the evicted pod's replacement cannot go anywhere: the only node is cordoned
        pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 and any(
            scheduled(p).get("reason") == "Unschedulable" for p in ps) else None)(
                web_pods(node)), 30, "a replacement, unschedulable")
        running = [p for p in pods if p["spec"].get("nodeName")]
        pending = [p for p in pods if not p["spec"].get("nodeName")]
        assert len(running) == 1 and len(pending) == 1
        assert scheduled(pending[0])["message"] == \
            "0/1 nodes are available: 1 node(s) were unschedulable."

        # without the budget drain finishes
        k.run("delete", "pdb", "web")
        r = k.run("drain", node.node, "--ignore-daemonsets", "--timeout", "60s")
        assert f"node/{node.node} drained" in r.stdout
        wait_for(lambda: len(web_pods(node)) == 2 and
                 all(not p["spec"].get("nodeName") for p in web_pods(node)), 60,
                 "every web pod pending")
        k.run("uncordon", node.node)
        assert not node.get(f"/api/v1/nodes/{node.node}").json()["spec"].get("unschedulable")
        wait_for(lambda: len([p for p in web_pods(node) if cond(p, "Ready") == "True"]) == 2,
                 60, "web Ready again after uncordon")
        k.run("delete", "deployment", "web")
        wait_for(lambda: not web_pods(node), 60, "web pods gone")
    finally:
        rm_tmp(tmp)
