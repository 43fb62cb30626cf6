# SPDX-License-Identifier: Apache-2.0
"""Garbage collection through the API: background, foreground and orphan propagation, and
finalizers (no pod manager: pods are plain objects, deleted at once when unbound)."""
import json
import time

from apihelp import deployment

DEPS = "/apis/apps/v1/namespaces/default/deployments"
RSS = "/apis/apps/v1/namespaces/default/replicasets"
PODS = "/api/v1/namespaces/default/pods"


def wait(what, pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what}: not reached in {timeout}s")


def items(d, path):
    return d.get(path).json()["items"]


def make(d, name, replicas=2):
    assert d.post(DEPS, deployment(name, replicas)).status == 201
    wait("replicaset and pods", lambda: len(items(d, RSS)) == 1 and
         len(items(d, PODS)) == replicas)


def delete(d, path, policy):
    body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": policy}
    r = d.request("DELETE", path, body=body)
    # 202 while the object stays for its finalizers (Foreground, Orphan), 200 once gone
    assert r.status == (200 if policy == "Background" else 202), r
    return r


def test_background_deletes_dependents(shoald):
    make(shoald, "bg")
    delete(shoald, DEPS + "/bg", "Background")
    assert shoald.get(DEPS + "/bg").status == 404  # the owner goes at once
    wait("dependents gone", lambda: not items(shoald, RSS) and not items(shoald, PODS))


def test_foreground_waits_for_dependents(shoald):
    make(shoald, "fg")
    r = delete(shoald, DEPS + "/fg", "Foreground")
    md = r.json()["metadata"]
    assert "foregroundDeletion" in md["finalizers"] and md.get("deletionTimestamp")
    # the owner is removed only after its dependents
    wait("owner gone", lambda: shoald.get(DEPS + "/fg").status == 404)
    assert not items(shoald, RSS) and not items(shoald, PODS)


def test_orphan_keeps_dependents(shoald):
    make(shoald, "orph")
    rs_uid = items(shoald, RSS)[0]["metadata"]["uid"]
    delete(shoald, DEPS + "/orph", "Orphan")
    wait("owner gone", lambda: shoald.get(DEPS + "/orph").status == 404)
    time.sleep(0.3)  # give the collector a chance to do something wrong
    rss = items(shoald, RSS)
    assert len(rss) == 1 and rss[0]["metadata"]["uid"] == rs_uid
    assert not rss[0]["metadata"].get("ownerReferences")
    # the orphaned ReplicaSet still owns (and keeps) its pods
    assert len(items(shoald, PODS)) == 2


def test_finalizer_holds_deletion(shoald):
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    path = "/api/v1/namespaces/default/configmaps/held"
    assert shoald.post("/api/v1/namespaces/default/configmaps", cm).status == 201
    r = shoald.delete(path)
    assert r.status == 202, r  # still there, held by its finalizer
    cur = shoald.get(path)
    assert cur.status == 200 and cur.json()["metadata"].get("deletionTimestamp")
    r = shoald.patch(path, {"metadata": {"finalizers": None}})
    assert r.status == 200, r
    wait("gone once the finalizer is removed", lambda: shoald.get(path).status == 404)
