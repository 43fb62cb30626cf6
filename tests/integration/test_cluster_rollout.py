# SPDX-License-Identifier: Apache-2.0
"""A Deployment rolled while a node dies (kill -9), on tools/devcluster (docs/workloads.md,
"Rolling through a node's death").

9 busybox httpd replicas with a readiness probe, maxSurge and maxUnavailable at their defaults
(25 %: 3 and 2); the template changes and a node is killed mid-rollout: the one that owns the
old ReplicaSet (its status writer, so nobody scales it down until the handover) as soon as the
new ReplicaSet has an available pod, or the one running the most new pods once 6 are
available. One surviving node is sampled throughout (the Deployment, then its
ReplicaSets and pods, then the Deployment again, so a judgement is made only on a Deployment
that did not change meanwhile) and checked for:

- status.replicas (the ReplicaSets' active pods) never above spec.replicas + maxSurge = 12,
  nor the pods not terminating in the observer's replica (the dead node's count until the
  healer deletes them, as they do in status.replicas);
- `kubectl rollout status` semantics (observedGeneration >= generation, updatedReplicas ==
  spec.replicas, replicas == updatedReplicas, availableReplicas == updatedReplicas) never
  reporting complete before every pod of the new template is ready, none of the old one is
  left, and none of the counted ones sits on the killed node once the survivors have held it
  dead for a few seconds (its pods look ready in the store until the healer deletes them);
- the rollout completes: 9 ready pods of the new template, off the dead node.

Numbers are printed, the bounds asserted.
"""
import json
import re
import threading
import time

import pytest

from devcluster import cluster_factory, tool, wait_for  # noqa: F401 (fixture)

REPLICATED = "--tombstone-horizon-ms" in tool.shoald_help()
pytestmark = pytest.mark.skipif(not REPLICATED, reason="shoald does not replicate yet")

T = 300  # s: the shared machine starts pods slowly
REPLICAS = 9
MAX_SURGE = 3  # 25 % of 9, rounded up
DEAD_SLACK = 3.0  # s: from the observer holding the victim dead to every survivor acting on it
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
RSS = "/apis/apps/v1/namespaces/default/replicasets"
PODS = "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb"


def get(nd, path):
    try:
        st, body = nd.api("GET", path, timeout=10)
    except OSError:
        return None
    return json.loads(body) if st == 200 else None


def deployment(version):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
                     "template": {
                         "metadata": {"labels": {"app": "web"}},
                         "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                             "name": "httpd", "image": "busybox:latest",
                             "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"],
                             "env": [{"name": "VERSION", "value": version}],
                             "resources": {"requests": {"cpu": "50m", "memory": "8Mi"}},
                             "readinessProbe": {"httpGet": {"path": "/passwd", "port": 8080},
                                                "periodSeconds": 1}}]}}}}


def pod_ready(p):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in p.get("status", {}).get("conditions", []))


def terminating(p):
    return bool(p["metadata"].get("deletionTimestamp")) or \
        p.get("status", {}).get("phase") in ("Succeeded", "Failed")


def rollout_complete(d):
    """kubectl rollout status's verdict for a Deployment (polymorphichelpers/rollout_status.go)."""
    st, spec = d.get("status", {}), d["spec"]
    if d["metadata"].get("generation", 0) > st.get("observedGeneration", 0):
        return False
    cond = next((c for c in st.get("conditions", []) if c.get("type") == "Progressing"), {})
    assert cond.get("reason") != "ProgressDeadlineExceeded", d
    up = st.get("updatedReplicas", 0)
    return up >= spec["replicas"] and st.get("replicas", 0) <= up and \
        st.get("availableReplicas", 0) >= up


class Sampler(threading.Thread):
    def __init__(self, nd, victim):
        super().__init__(daemon=True)
        self.nd, self.victim = nd, victim
        self.stop = threading.Event()
        self.max_status = self.max_pods = self.samples = self.complete_seen = 0
        self.dead_since = None  # when the observer first held the victim dead
        self.violations = []
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                self.sample()
                time.sleep(0.1)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def sample(self):
        if self.dead_since is None and \
                (self.nd.members_api() or {}).get(self.victim, {}).get("state") == "dead":
            self.dead_since = time.time()
        t = time.time()
        d = get(self.nd, DEPLOYS + "/web")
        rss = get(self.nd, RSS)
        pods = get(self.nd, PODS)
        d2 = get(self.nd, DEPLOYS + "/web")
        if not d or rss is None or pods is None or not d2:
            return
        self.samples += 1
        st = d["status"]
        self.max_status = max(self.max_status, st.get("replicas", 0))
        if st.get("replicas", 0) > REPLICAS + MAX_SURGE:
            self.violations.append(f"{t:.1f}: status.replicas {st.get('replicas')}: {st}")
        live = [p for p in pods["items"] if not terminating(p)]
        self.max_pods = max(self.max_pods, len(live))
        if len(live) > REPLICAS + MAX_SURGE:
            self.violations.append(f"{t:.1f}: {len(live)} pods not terminating")
        if d["metadata"]["resourceVersion"] != d2["metadata"]["resourceVersion"] or \
                not rollout_complete(d):
            return
        self.complete_seen += 1
        gen = d["metadata"]["generation"]
        # the new ReplicaSet: the newest revision
        newest = max(rss["items"], default=None, key=lambda rs: int(
            rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", 0)))
        new_hash = newest and newest["metadata"]["labels"].get("pod-template-hash")
        victim_dead = self.dead_since is not None and t - self.dead_since > DEAD_SLACK
        new = [p for p in live if p["metadata"]["labels"].get("pod-template-hash") == new_hash]
        old = [p for p in live if p not in new]
        ready = [p for p in new if pod_ready(p) and
                 not (victim_dead and p["spec"].get("nodeName") == self.victim)]
        if len(ready) < REPLICAS or old:
            self.violations.append(
                f"{t:.1f}: rollout status complete at generation {gen} with {len(ready)} of "
                f"{REPLICAS} new pods ready (victim dead: {victim_dead}), {len(old)} old left, "
                f"pods {[(p['metadata']['name'], p['spec'].get('nodeName'), pod_ready(p)) for p in live]}, "
                f"status {st}")


def new_rs(nd, old_rs):
    return next((rs for rs in (get(nd, RSS) or {"items": []})["items"]
                 if rs["metadata"]["name"] != old_rs), None)


@pytest.mark.parametrize("when", ["early", "late"])
def test_rollout_through_node_kill(cluster_factory, when):
    """early: the old ReplicaSet's owner dies as the new one has its first available pod (it
    was 14 pods before the fix); late: the node running the most ready pods of the new
    ReplicaSet dies once it has 6 available, so the rollout would end on the dead node's pods
    (it could be reported complete with them until the healer deleted them)."""
    c = cluster_factory(3)
    nodes = c.nodes()
    n1 = nodes[0]
    st, body = n1.api("POST", DEPLOYS, deployment("1"))
    assert st == 201, body

    def settled(nd):
        d = get(nd, DEPLOYS + "/web")
        pods = get(nd, PODS)
        if not d or not pods or not rollout_complete(d):
            return None
        live = [p for p in pods["items"] if not terminating(p)]
        return d if len(live) == REPLICAS and all(map(pod_ready, live)) else None

    wait_for(lambda: settled(n1), T, "9 ready replicas of version 1")
    rs = get(n1, RSS)["items"]
    assert len(rs) == 1, rs
    old_rs = rs[0]["metadata"]["name"]
    # the old ReplicaSet's owner: the writer of its status
    dump = n1.api("GET", "/apis/shoal.io/v1/registers/replicasets.apps")[1].decode()
    m = re.search(r"default/" + re.escape(old_rs) + r" .* status=(?:t\d+:)?\d+@(\S+)", dump)
    assert m, dump
    if when == "early":
        victim = next(nd for nd in nodes if nd.name == m.group(1))
        observer = next(nd for nd in nodes if nd is not victim)
    else:
        victim = None  # chosen once the new pods are placed
        observer = n1

    sampler = Sampler(observer, victim.name if victim else None)
    sampler.start()
    try:
        d = get(observer, DEPLOYS + "/web")
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "2"
        st, body = observer.api("PUT", DEPLOYS + "/web", d)
        assert st == 200, body
        t0 = time.time()
        want = 1 if when == "early" else 6
        wait_for(lambda: (new_rs(observer, old_rs) or {}).get("status", {})
                 .get("availableReplicas", 0) >= want, T,
                 f"{want} available pods of the new ReplicaSet")
        if victim is None:
            new_hash = new_rs(observer, old_rs)["metadata"]["labels"]["pod-template-hash"]
            on = {}
            for p in get(observer, PODS)["items"]:
                if p["metadata"]["labels"].get("pod-template-hash") == new_hash and \
                        pod_ready(p) and not terminating(p):
                    on[p["spec"].get("nodeName")] = on.get(p["spec"].get("nodeName"), 0) + 1
            name = max((nd.name for nd in nodes if nd is not observer),
                       key=lambda n: on.get(n, 0))
            victim = next(nd for nd in nodes if nd.name == name)
            sampler.victim = victim.name
            print(f"ready new pods by node: {on}")
        c.kill(victim.short)
        t_kill = time.time()
        print(f"{when}: old ReplicaSet {old_rs} owned by {m.group(1)}; killed {victim.name}; "
              f"observer {observer.name}")
        final = wait_for(lambda: (lambda d: d and d["metadata"]["generation"] == 2 and
                                  all(p["spec"].get("nodeName") != victim.name
                                      for p in get(observer, PODS)["items"]
                                      if not terminating(p)) and d)(settled(observer)),
                         T, "rollout complete off the dead node")
        t_done = time.time()
        # the verdict is checked on complete samples too (the loop above may see it first)
        wait_for(lambda: sampler.complete_seen >= 3 or sampler.error, T,
                 "the sampler seeing the rollout complete")
    finally:
        sampler.stop.set()
        sampler.join()
    print(f"rollout: kill +{t_kill - t0:.1f} s after the template change, victim dead in the "
          f"observer's view +{(sampler.dead_since or 0) - t_kill:.1f} s after the kill, "
          f"complete +{t_done - t_kill:.1f} s; {sampler.samples} samples, "
          f"{sampler.complete_seen} complete; max status.replicas {sampler.max_status}, max "
          f"non-terminating pods {sampler.max_pods} (bound {REPLICAS + MAX_SURGE})")
    print("final status:", final["status"])
    assert sampler.error is None, sampler.error
    assert not sampler.violations, "\n".join(sampler.violations[:10])
