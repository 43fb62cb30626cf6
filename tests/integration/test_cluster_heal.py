# SPDX-License-Identifier: Apache-2.0
"""Self-healing on tools/devcluster (sched/heal.c, daemon/healer.c, docs/consistency.md).

A node's pods are deleted (tombstoned) by the owner of each pod's key once membership has held
the node dead for the grace period (--dead-node-grace-ms, default 5 s); a node that was only
suspect, or back within the grace period, keeps its pods; with many nodes down at once (the
minority side of a partition) nothing is deleted.

The tests below bind pods to other nodes through one node's API (spec.nodeName set at create):
the pod sits in that node's replica, bound elsewhere, which is exactly what a replicated pod of
another node looks like to the healer.
"""
import calendar
import json
import re
import time

from devcluster import cluster_factory, wait_for  # noqa: F401 (fixture)

DEATH = 60


def bound_pod(nd, name, node, **spec):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": dict({"nodeName": node.name, "containers": [
               {"name": "c", "image": "busybox:latest", "command": ["sleep", "3600"]}]}, **spec)}
    st, body = nd.api("POST", "/api/v1/namespaces/default/pods", pod)
    assert st == 201, body


def exists(nd, name):
    st, _ = nd.api("GET", f"/api/v1/namespaces/default/pods/{name}")
    assert st in (200, 404), st
    return st == 200


def state_of(observer, member):
    return (observer.members_api() or {}).get(member.name, {}).get("state")


def metric(nd, name):
    return nd.metrics().get(name, 0)


def log_time(line):
    m = re.match(r"ts=(\S+)Z", line)
    return calendar.timegm(time.strptime(m.group(1).split(".")[0], "%Y-%m-%dT%H:%M:%S")) + \
        float("0." + m.group(1).split(".")[1])


def first_log(nd, pattern):
    for line in nd.logs(tail=1 << 22).splitlines():
        if re.search(pattern, line):
            return line
    return None


def events_for(nd, pod):
    st, body = nd.api("GET", "/api/v1/namespaces/default/events")
    assert st == 200, body
    return [(e["reason"], e["message"]) for e in json.loads(body)["items"]
            if e["involvedObject"]["name"] == pod]


def test_dead_node_pods_deleted_suspect_kept(cluster_factory):  # noqa: F811
    c = cluster_factory(3)
    n1, n2, n3 = c.nodes()
    bound_pod(n1, "on-n2", n2)
    bound_pod(n1, "on-n3", n3)
    tolerant = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute"}]
    bound_pod(n1, "on-n2-tolerant", n2, tolerations=tolerant)
    # a real pod on n3, to see that a stall does not restart it
    bound_pod(n3, "real", n3)
    wait_for(lambda: (lambda st, b: st == 200 and json.loads(b)["status"].get("phase") ==
                      "Running")(*n3.api("GET", "/api/v1/namespaces/default/pods/real")),
             60, "n3's pod running")
    _, body = n3.api("GET", "/api/v1/namespaces/default/pods/real")
    before = json.loads(body)["status"]["containerStatuses"][0]

    # n3 stalls until n1 suspects it, then resumes: nothing is deleted, nothing restarted
    c.stop("n3")
    try:
        wait_for(lambda: state_of(n1, n3) in ("suspect", "dead"), DEATH, "n1 suspects n3",
                 interval=0.02)
    finally:
        c.cont("n3")
    c.wait_converged(timeout=DEATH)
    assert exists(n1, "on-n3")
    assert metric(n1, "shoal_heal_pods_deleted_total") == 0
    _, body = n3.api("GET", "/api/v1/namespaces/default/pods/real")
    after = json.loads(body)["status"]["containerStatuses"][0]
    assert (after["containerID"], after["restartCount"]) == \
        (before["containerID"], before["restartCount"]), (before, after)

    # n2 dies: its pods go after the grace period, not the tolerant one, not n3's
    c.kill("n2")
    wait_for(lambda: state_of(n1, n2) == "dead", DEATH, "n2 dead on n1")
    wait_for(lambda: not exists(n1, "on-n2"), 30, "n2's pod deleted on n1")
    assert exists(n1, "on-n2-tolerant")
    assert exists(n1, "on-n3")
    dead = first_log(n1, rf"member {re.escape(n2.name)} .*dead")
    healed = first_log(n1, rf"self-healing: node {re.escape(n2.name)} is dead")
    assert dead and healed, n1.logs()
    assert log_time(healed) - log_time(dead) >= 5.0, (dead, healed)
    assert metric(n1, "shoal_heal_pods_deleted_total") == 1
    assert ("NodeDead", f"Deleting pod: its node {n2.name} is dead") in events_for(n1, "on-n2")

    # back: nothing more is deleted
    c.start("n2")
    c.wait_converged(timeout=DEATH)
    bound_pod(n1, "on-n2-again", n2)
    assert exists(n1, "on-n2-again") and exists(n1, "on-n2-tolerant")


def test_partition_minority_holds_majority_heals(cluster_factory):  # noqa: F811
    c = cluster_factory(5, extra_args=["--dead-node-grace-ms", "2000"])
    nodes = c.nodes()
    n1, n2, n3, n4, n5 = nodes
    # the minority's replica holds pods of majority nodes, and the reverse
    bound_pod(n1, "min-on-n3", n3)
    bound_pod(n1, "min-on-n4", n4)
    bound_pod(n3, "maj-on-n1", n1)
    bound_pod(n3, "maj-on-n2", n2)
    c.partition(["n1,n2", "n3,n4,n5"])
    for m in (n3, n4, n5):
        wait_for(lambda m=m: state_of(n1, m) == "dead", DEATH, f"{m.name} dead on n1")
    for m in (n1, n2):
        wait_for(lambda m=m: state_of(n3, m) == "dead", DEATH, f"{m.name} dead on n3")
    # the majority side deletes the minority's pods
    wait_for(lambda: not exists(n3, "maj-on-n1") and not exists(n3, "maj-on-n2"), 30,
             "n3 deletes n1's and n2's pods")
    # the minority side sees most of the cluster down: rate-limited, deletes nothing
    wait_for(lambda: metric(n1, "shoal_heal_rate_limited") == 1, 30, "n1 rate-limited")
    dead_at = log_time(first_log(n1, rf"member {re.escape(n5.name)} .*dead") or
                       first_log(n1, rf"member {re.escape(n3.name)} .*dead"))
    # hold the partition past the minority's grace period (2 s), then look again
    wait_for(lambda: time.time() - dead_at > 4, 30, "grace period over on n1")
    assert exists(n1, "min-on-n3") and exists(n1, "min-on-n4")
    assert metric(n1, "shoal_heal_pods_deleted_total") == 0
    assert first_log(n1, "pod deletion rate-limited")
    c.heal()
    c.wait_converged(timeout=DEATH)
    wait_for(lambda: metric(n1, "shoal_heal_rate_limited") == 0, 30, "n1 back to normal")
    assert exists(n1, "min-on-n3") and exists(n1, "min-on-n4")
