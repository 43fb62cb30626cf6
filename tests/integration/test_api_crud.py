# SPDX-License-Identifier: Apache-2.0
"""CRUD for every kind, metadata semantics, optimistic concurrency, patches, subresources."""
import json

import pytest

from apihelp import configmap, deployment, pod

KINDS = [
    ("/api/v1/namespaces/default/pods", pod("p1")),
    ("/api/v1/namespaces/default/services",
     {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s1"},
      "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}),
    ("/api/v1/namespaces/default/configmaps", configmap("c1", {"k": "v"})),
    ("/api/v1/namespaces/default/secrets",
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec1"},
      "data": {"k": "dg=="}}),
    ("/api/v1/namespaces/default/events",
     {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev1"},
      "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default"},
      "reason": "Test", "message": "hello", "type": "Normal"}),
    ("/api/v1/namespaces",
     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "crud-ns"}}),
    ("/api/v1/nodes",
     {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "extra-node"}}),
    ("/apis/apps/v1/namespaces/default/deployments", deployment("d1")),
    ("/apis/apps/v1/namespaces/default/replicasets",
     {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs1"},
      "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "rs1"}},
               "template": {"metadata": {"labels": {"app": "rs1"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    ("/apis/batch/v1/namespaces/default/jobs",
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j1"},
      "spec": {"template": {"spec": {"restartPolicy": "Never",
                                     "containers": [{"name": "c", "image": "busybox"}]}}}}),
]


@pytest.mark.parametrize("coll,obj", KINDS, ids=[k[1]["kind"] for k in KINDS])
def test_crud_every_kind(shoald_shared, coll, obj):
    d = shoald_shared
    name = obj["metadata"]["name"]
    r = d.post(coll, obj)
    assert r.status == 201, r
    created = r.json()
    md = created["metadata"]
    assert created["kind"] == obj["kind"] and created["apiVersion"] == obj["apiVersion"]
    assert len(md["uid"]) == 36 and md["creationTimestamp"].endswith("Z")
    assert int(md["resourceVersion"]) > 0
    if "/namespaces/" in coll:
        assert md["namespace"] == "default"
    else:
        assert "namespace" not in md

    got = d.get(f"{coll}/{name}").json()
    assert got["metadata"]["uid"] == md["uid"]

    lst = d.get(coll).json()
    assert lst["kind"] == obj["kind"] + "List"
    assert int(lst["metadata"]["resourceVersion"]) >= int(md["resourceVersion"])
    assert name in [i["metadata"]["name"] for i in lst["items"]]

    # update (PUT) with labels, then a merge patch (a kind's controller may write the object
    # meanwhile, e.g. the Deployment's revision annotation and status: retry on conflict)
    for _ in range(10):
        got = d.get(f"{coll}/{name}").json()
        got["metadata"]["labels"] = {"updated": "yes"}
        r = d.put(f"{coll}/{name}", got)
        if r.status != 409:
            break
    assert r.status == 200, r
    assert r.json()["metadata"]["labels"] == {"updated": "yes"}
    assert int(r.json()["metadata"]["resourceVersion"]) > int(md["resourceVersion"])
    r = d.patch(f"{coll}/{name}", {"metadata": {"annotations": {"a": "b"}}})
    assert r.status == 200, r
    assert r.json()["metadata"]["annotations"] == {"a": "b"}
    assert r.json()["metadata"]["uid"] == md["uid"]

    r = d.delete(f"{coll}/{name}")
    assert r.status == 200, r
    assert d.get(f"{coll}/{name}").status == 404


def test_endpoints_read_only(shoald_shared):
    d = shoald_shared
    r = d.post("/api/v1/namespaces/default/endpoints",
               {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"}})
    assert r.status == 405 and r.json()["reason"] == "MethodNotAllowed"
    assert d.get("/api/v1/namespaces/default/endpoints").status == 200


def test_cluster_wide_list_and_ns_scoping(shoald_shared):
    d = shoald_shared
    d.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "scope-a"}})
    assert d.post("/api/v1/namespaces/scope-a/configmaps", configmap("x")).status == 201
    assert d.post("/api/v1/namespaces/default/configmaps", configmap("scope-x")).status == 201
    everywhere = d.get("/api/v1/configmaps").json()["items"]
    assert {("scope-a", "x"), ("default", "scope-x")} <= {
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere}
    only = d.get("/api/v1/namespaces/scope-a/configmaps").json()["items"]
    assert [i["metadata"]["name"] for i in only] == ["x"]
    # deleting the namespace deletes its contents
    assert d.delete("/api/v1/namespaces/scope-a").status == 200
    assert d.get("/api/v1/namespaces/scope-a/configmaps/x").status == 404


def test_namespace_must_exist_and_protected(shoald_shared):
    d = shoald_shared
    r = d.post("/api/v1/namespaces/nope/configmaps", configmap("c"))
    assert r.status == 404 and r.json()["reason"] == "NotFound"
    for ns in ("default", "kube-system"):
        assert d.get(f"/api/v1/namespaces/{ns}").status == 200
    r = d.delete("/api/v1/namespaces/default")
    assert r.status == 403 and r.json()["reason"] == "Forbidden"


def test_generate_name(shoald_shared):
    d = shoald_shared
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    names = set()
    for _ in range(3):
        r = d.post("/api/v1/namespaces/default/configmaps", obj)
        assert r.status == 201, r
        n = r.json()["metadata"]["name"]
        assert n.startswith("gen-") and len(n) == len("gen-") + 5
        names.add(n)
    assert len(names) == 3


def test_generation_bumps_on_spec_only(shoald_shared):
    d = shoald_shared
    base = "/apis/apps/v1/namespaces/default/deployments"
    r = d.post(base, deployment("gen-d"))
    assert r.json()["metadata"]["generation"] == 1
    r = d.patch(f"{base}/gen-d", {"metadata": {"labels": {"l": "1"}}})
    assert r.json()["metadata"]["generation"] == 1
    r = d.patch(f"{base}/gen-d", {"spec": {"replicas": 3}})
    assert r.json()["metadata"]["generation"] == 2
    # status writes do not bump generation and PUT on the main resource ignores status
    r = d.patch(f"{base}/gen-d/status", {"status": {"replicas": 3}})
    assert r.status == 200 and r.json()["status"]["replicas"] == 3
    assert r.json()["metadata"]["generation"] == 2
    # (the deployment controller may write status meanwhile: retry on conflict)
    for _ in range(10):
        obj = d.get(f"{base}/gen-d").json()
        cur = obj["status"].get("replicas")
        obj["status"] = {"replicas": 99}
        r = d.put(f"{base}/gen-d", obj)
        if r.status != 409:
            break
    assert r.status == 200 and r.json()["status"].get("replicas") == cur != 99


def test_optimistic_concurrency(shoald_shared):
    d = shoald_shared
    base = "/api/v1/namespaces/default/configmaps"
    cm = d.post(base, configmap("occ", {"a": "1"})).json()
    stale = json.loads(json.dumps(cm))
    cm["data"] = {"a": "2"}
    assert d.put(f"{base}/occ", cm).status == 200
    stale["data"] = {"a": "3"}
    r = d.put(f"{base}/occ", stale)
    assert r.status == 409 and r.json()["reason"] == "Conflict"
    assert d.get(f"{base}/occ").json()["data"] == {"a": "2"}
    # create of an existing name
    r = d.post(base, configmap("occ"))
    assert r.status == 409 and r.json()["reason"] == "AlreadyExists"
    assert r.json()["details"] == {"name": "occ", "kind": "configmaps"}
    # delete preconditions
    r = d.delete(f"{base}/occ", body={"kind": "DeleteOptions", "apiVersion": "v1",
                                      "preconditions": {"uid": "not-the-uid"}})
    assert r.status == 409
    r = d.delete(f"{base}/occ", body={"kind": "DeleteOptions", "apiVersion": "v1",
                                      "propagationPolicy": "Background",
                                      "preconditions": {"uid": cm["metadata"]["uid"]}})
    assert r.status == 200
    r = d.get(f"{base}/occ")
    assert r.status == 404 and r.json()["reason"] == "NotFound"
    assert r.json()["message"] == 'configmaps "occ" not found'


def test_patch_types(shoald_shared):
    d = shoald_shared
    base = "/api/v1/namespaces/default/pods"
    d.post(base, pod("pt", labels={"a": "1", "b": "2"}))
    r = d.patch(f"{base}/pt", {"metadata": {"labels": {"b": None, "c": "3"}}})
    assert r.json()["metadata"]["labels"] == {"a": "1", "c": "3"}
    r = d.patch(f"{base}/pt", [{"op": "replace", "path": "/metadata/labels/a", "value": "9"}],
                ctype="application/json-patch+json")
    assert r.status == 200 and r.json()["metadata"]["labels"]["a"] == "9"
    r = d.patch(f"{base}/pt", {"spec": {"containers": [{"name": "c", "image": "alpine"}]}},
                ctype="application/strategic-merge-patch+json")
    assert r.status == 200, r  # a container's image is mutable, as in Kubernetes
    assert r.json()["spec"]["containers"][0]["image"] == "alpine"
    r = d.patch(f"{base}/pt", [{"op": "test", "path": "/metadata/labels/a", "value": "0"}],
                ctype="application/json-patch+json")
    assert r.status == 422 and r.json()["reason"] == "Invalid", r  # the test op failed
    r = d.patch(f"{base}/pt", {"x": 1}, ctype="text/plain")
    assert r.status == 415
    r = d.patch(f"{base}/missing", {"metadata": {}})
    assert r.status == 404


def test_status_subresource(shoald_shared):
    d = shoald_shared
    base = "/api/v1/namespaces/default/pods"
    p = d.post(base, pod("st")).json()
    assert p["status"]["phase"] == "Pending"
    r = d.get(f"{base}/st/status")
    assert r.status == 200 and r.json()["metadata"]["name"] == "st"
    p = r.json()
    p["status"] = {"phase": "Running", "podIP": "10.244.0.5"}
    p["metadata"]["labels"] = {"ignored": "yes"}
    r = d.put(f"{base}/st/status", p)
    assert r.status == 200, r
    got = d.get(f"{base}/st").json()
    assert got["status"]["phase"] == "Running" and "labels" not in got["metadata"]
    assert d.get("/api/v1/namespaces/default/configmaps/x/status").status == 404


def test_scale_subresource(shoald_shared):
    d = shoald_shared
    base = "/apis/apps/v1/namespaces/default/deployments"
    d.post(base, deployment("sc", replicas=2))
    s = d.get(f"{base}/sc/scale").json()
    assert s["kind"] == "Scale" and s["apiVersion"] == "autoscaling/v1"
    assert s["spec"]["replicas"] == 2 and s["status"]["selector"] == "app=sc"
    for _ in range(10):  # the deployment controller writes too: retry on conflict
        s = d.get(f"{base}/sc/scale").json()
        s["spec"]["replicas"] = 5
        r = d.put(f"{base}/sc/scale", s)
        if r.status != 409:
            break
    assert r.status == 200 and r.json()["spec"]["replicas"] == 5
    assert d.get(f"{base}/sc").json()["spec"]["replicas"] == 5
    r = d.patch(f"{base}/sc/scale", {"spec": {"replicas": 1}})
    assert r.status == 200 and r.json()["spec"]["replicas"] == 1
    r = d.patch(f"{base}/sc/scale", {"spec": {"replicas": -1}})
    assert r.status == 422
    s = d.get(f"{base}/sc/scale").json()
    s["metadata"]["resourceVersion"] = "1"
    assert d.put(f"{base}/sc/scale", s).status == 409


def test_deletecollection(shoald_shared):
    d = shoald_shared
    base = "/api/v1/namespaces/default/configmaps"
    for i in range(4):
        d.post(base, configmap(f"dc{i}", labels={"grp": "dc", "i": str(i % 2)}))
    r = d.delete(base + "?labelSelector=grp%3Ddc,i%3D0")
    assert r.status == 200
    assert sorted(i["metadata"]["name"] for i in r.json()["items"]) == ["dc0", "dc2"]
    left = d.get(base + "?labelSelector=grp%3Ddc").json()["items"]
    assert sorted(i["metadata"]["name"] for i in left) == ["dc1", "dc3"]


def test_yaml_body(shoald_shared):
    d = shoald_shared
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
    r = d.request("POST", "/api/v1/namespaces/default/configmaps", body=body,
                  headers={"Content-Type": "application/yaml"})
    assert r.status == 201, r
    assert r.json()["data"] == {"k": "v"}


def test_registers_dump(shoald_shared):
    """/apis/shoal.io/v1/registers: versions and tombstones in a stable order (issue 11)."""
    d = shoald_shared
    coll = "/api/v1/namespaces/default/configmaps"
    uids = {}
    for name in ("reg-b", "reg-a"):
        r = d.post(coll, configmap(name, {"k": name}))
        assert r.status == 201, r
        uids[name] = r.json()["metadata"]["uid"]
    assert d.delete(f"{coll}/reg-b").status == 200

    r = d.get("/apis/shoal.io/v1/registers/configmaps")
    assert r.status == 200, r
    text = r.body.decode() if isinstance(r.body, bytes) else r.body
    lines = {l.split()[1]: l for l in text.splitlines() if l.split()[1].startswith("default/reg-")}
    assert uids["reg-a"] in lines["default/reg-a"] and " deleted " not in lines["default/reg-a"]
    assert uids["reg-b"] in lines["default/reg-b"] and " deleted " in lines["default/reg-b"]
    keys = [l.split()[1] for l in text.splitlines()]
    assert keys == sorted(keys)
    # nothing changed: the same bytes; every resource includes this one
    again = d.get("/apis/shoal.io/v1/registers/configmaps")
    assert again.body == r.body
    everything = d.get("/apis/shoal.io/v1/registers").body
    assert (r.body in everything)
    assert d.post("/apis/shoal.io/v1/registers", {}).status == 405
    for name in ("reg-a",):
        d.delete(f"{coll}/{name}")
