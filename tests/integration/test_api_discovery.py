# SPDX-License-Identifier: Apache-2.0
"""Discovery, version, health and OpenAPI documents."""


def test_health_and_version(shoald_shared):
    d = shoald_shared
    for p in ("/healthz", "/readyz", "/livez"):
        r = d.get(p)
        assert r.status == 200 and r.body == b"ok"
    v = d.get("/version").json()
    assert v["major"] == "1" and v["gitVersion"].startswith("v1.")


def test_core_and_groups(shoald_shared):
    d = shoald_shared
    assert d.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in d.get("/apis").json()["groups"]}
    assert set(groups) >= {"apps", "batch"}
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    g = d.get("/apis/apps").json()
    assert g["kind"] == "APIGroup" and g["name"] == "apps"
    assert d.get("/apis/nope").status == 404
    assert d.get("/apis/apps/v2").status == 404


def test_resource_lists(shoald_shared):
    d = shoald_shared
    core = {r["name"]: r for r in d.get("/api/v1").json()["resources"]}
    for name, kind, ns in [("namespaces", "Namespace", False), ("pods", "Pod", True),
                           ("services", "Service", True), ("configmaps", "ConfigMap", True),
                           ("secrets", "Secret", True), ("nodes", "Node", False),
                           ("events", "Event", True), ("endpoints", "Endpoints", True)]:
        assert core[name]["kind"] == kind and core[name]["namespaced"] is ns
    assert "po" in core["pods"]["shortNames"] and "all" in core["pods"]["categories"]
    assert set(core["pods"]["verbs"]) == {"create", "delete", "deletecollection", "get",
                                          "list", "patch", "update", "watch"}
    assert core["endpoints"]["verbs"] == ["get", "list", "watch"]
    assert core["pods/status"]["verbs"] == ["get", "patch", "update"]
    apps = {r["name"]: r for r in d.get("/apis/apps/v1").json()["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"]
    assert apps["deployments/scale"]["kind"] == "Scale"
    assert apps["deployments/scale"]["group"] == "autoscaling"
    assert "replicasets/scale" in apps
    batch = d.get("/apis/batch/v1").json()
    assert batch["groupVersion"] == "batch/v1"
    assert [r["kind"] for r in batch["resources"] if r["name"] == "jobs"] == ["Job"]


def test_openapi_v3(shoald_shared):
    d = shoald_shared
    root = d.get("/openapi/v3").json()
    assert set(root["paths"]) >= {"api/v1", "apis/apps/v1", "apis/batch/v1"}
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    doc = d.get(url).json()
    assert doc["openapi"].startswith("3.")
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1",
                                                        "kind": "Deployment"}
    assert any(p["name"] == "fieldValidation" and p["in"] == "query"
               for p in patch["parameters"])
    core = d.get(root["paths"]["api/v1"]["serverRelativeURL"]).json()
    assert "/api/v1/namespaces/{namespace}/pods/{name}" in core["paths"]
    assert "/api/v1/nodes/{name}" in core["paths"]
    assert d.get("/openapi/v3/apis/nope/v1").status == 404
