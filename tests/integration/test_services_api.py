# SPDX-License-Identifier: Apache-2.0
"""Service objects through the API: ClusterIP and nodePort allocation, Endpoints derivation."""
import ipaddress
import time

SVCS = "/api/v1/namespaces/default/services"


def svc(name, **spec):
    s = {"ports": [{"port": 80, "targetPort": 8080}]}
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": s}


def test_cluster_ip_allocated_from_service_cidr(shoald):
    ips = set()
    for i in range(20):
        r = shoald.post(SVCS, svc(f"s{i}"))
        assert r.status == 201, r
        spec = r.json()["spec"]
        ip = ipaddress.ip_address(spec["clusterIP"])
        assert ip in ipaddress.ip_network("10.96.0.0/12")
        assert ip != ipaddress.ip_address("10.96.0.1")  # reserved for the API service
        assert spec["clusterIPs"] == [spec["clusterIP"]]
        ips.add(ip)
    assert len(ips) == 20  # no duplicates


def test_explicit_and_conflicting_cluster_ip(shoald):
    r = shoald.post(SVCS, svc("a", clusterIP="10.96.7.7"))
    assert r.status == 201, r
    assert r.json()["spec"]["clusterIP"] == "10.96.7.7"
    r = shoald.post(SVCS, svc("b", clusterIP="10.96.7.7"))
    assert r.status == 422, r
    assert "already allocated" in r.json()["message"]
    r = shoald.post(SVCS, svc("c", clusterIP="192.168.1.1"))
    assert r.status == 422, r
    assert "not in the valid range" in r.json()["message"]
    # released on delete, reusable
    assert shoald.delete(SVCS + "/a").status == 200
    r = shoald.post(SVCS, svc("b", clusterIP="10.96.7.7"))
    assert r.status == 201, r


def test_headless_and_nodeport(shoald):
    r = shoald.post(SVCS, svc("headless", clusterIP="None"))
    assert r.status == 201, r
    assert r.json()["spec"]["clusterIP"] == "None"
    r = shoald.post(SVCS, svc("np", type="NodePort",
                              ports=[{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]))
    assert r.status == 201, r
    ports = [p["nodePort"] for p in r.json()["spec"]["ports"]]
    assert all(30000 <= p <= 32767 for p in ports) and len(set(ports)) == 2
    r = shoald.post(SVCS, svc("np2", type="NodePort",
                              ports=[{"port": 80, "nodePort": ports[0]}]))
    assert r.status == 422, r
    assert "already allocated" in r.json()["message"]


def test_allocation_survives_restart(shoald):
    r = shoald.post(SVCS, svc("keep"))
    ip = r.json()["spec"]["clusterIP"]
    shoald.restart()
    r = shoald.post(SVCS, svc("other", clusterIP=ip))
    assert r.status == 422, r


def _ready_pod(shoald, name, ip, ready=True, labels=None):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels or {"app": "web"}},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "ports": [{"name": "http", "containerPort": 8080}]}]}}
    r = shoald.post("/api/v1/namespaces/default/pods", pod)
    assert r.status == 201, r
    cur = r.json()
    cur["status"] = {"phase": "Running", "podIP": ip,
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    r = shoald.put(f"/api/v1/namespaces/default/pods/{name}/status", cur)
    assert r.status == 200, r


def _endpoints(shoald, name, want, timeout=5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        r = shoald.get(f"/api/v1/namespaces/default/endpoints/{name}")
        if r.status == 200:
            last = r.json()
            if want(last):
                return last
        time.sleep(0.05)
    raise AssertionError(f"endpoints {name} never matched: {last}")


def test_endpoints_follow_ready_pods(shoald):
    r = shoald.post(SVCS, svc("web", selector={"app": "web"},
                              ports=[{"port": 80, "targetPort": "http", "name": "web"}]))
    assert r.status == 201, r
    _ready_pod(shoald, "p1", "10.244.0.11")
    _ready_pod(shoald, "p2", "10.244.0.12", ready=False)
    _ready_pod(shoald, "other", "10.244.0.13", labels={"app": "db"})

    def addrs(ep, key):
        return sorted(a["ip"] for s in ep.get("subsets", []) for a in s.get(key, []))

    ep = _endpoints(shoald, "web", lambda e: addrs(e, "addresses") == ["10.244.0.11"] and
                    addrs(e, "notReadyAddresses") == ["10.244.0.12"])
    # the named targetPort resolved to the pod's container port
    assert ep["subsets"][0]["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]

    # the same, as discovery.k8s.io/v1 EndpointSlices found by their service label
    slices_path = ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
                   "?labelSelector=kubernetes.io%2Fservice-name%3Dweb")

    def slice_eps():
        items = shoald.get(slices_path).json()["items"]
        return {e["addresses"][0]: e["conditions"] for sl in items for e in sl["endpoints"]}
    wait_for = time.time() + 5
    while time.time() < wait_for and len(slice_eps()) < 2:
        time.sleep(0.05)
    sl = shoald.get(slices_path).json()["items"]
    assert len(sl) == 1 and sl[0]["addressType"] == "IPv4", sl
    assert sl[0]["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert sl[0]["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert slice_eps() == {"10.244.0.11": {"ready": True, "serving": True, "terminating": False},
                           "10.244.0.12": {"ready": False, "serving": False,
                                           "terminating": False}}
    # read-only for users, listed in discovery
    assert shoald.post("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                       {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"name": "x"}, "addressType": "IPv4",
                        "endpoints": []}).status in (403, 405)
    names = [r["name"] for r in shoald.get("/apis/discovery.k8s.io/v1").json()["resources"]]
    assert "endpointslices" in names
    r = shoald.delete("/api/v1/namespaces/default/pods/p1")
    assert r.status == 200
    _endpoints(shoald, "web", lambda e: addrs(e, "addresses") == [])
    # deleting the service removes its Endpoints
    assert shoald.delete(SVCS + "/web").status == 200
    deadline = time.time() + 5
    while time.time() < deadline:
        if shoald.get("/api/v1/namespaces/default/endpoints/web").status == 404:
            break
        time.sleep(0.05)
    assert shoald.get("/api/v1/namespaces/default/endpoints/web").status == 404
    deadline = time.time() + 5
    while time.time() < deadline and shoald.get(slices_path).json()["items"]:
        time.sleep(0.05)
    assert shoald.get(slices_path).json()["items"] == []


def test_metrics_expose_store_and_datapath_fill(shoald):
    r = shoald.get("/metrics")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.body.decode()
    assert "shoal_store_objects " in text
    # the datapath's map fill levels and conntrack pressure: what a user alerts on
    assert 'shoal_bpf_map_entries{map=' in text
    assert "shoal_conntrack_pressure" in text or "shoal_bpf_map_fill_ratio" in text
    assert shoald.post("/metrics", {}).status == 405


def test_endpoints_follow_pods_selected_by_dotted_label_keys(shoald):
    """Selector keys like app.kubernetes.io/name are map keys, not paths."""
    key = "app.kubernetes.io/name"
    r = shoald.post(SVCS, svc("dotted", selector={key: "shop"},
                              ports=[{"port": 80, "targetPort": 8080}]))
    assert r.status == 201, r
    _ready_pod(shoald, "shop-1", "10.244.0.21", labels={key: "shop"})

    def addrs(ep):
        return sorted(a["ip"] for s in ep.get("subsets", []) for a in s.get("addresses", []))
    _endpoints(shoald, "dotted", lambda e: addrs(e) == ["10.244.0.21"])
    # a later readiness change alone (same labels) must reach the Endpoints too
    cur = shoald.get("/api/v1/namespaces/default/pods/shop-1").json()
    cur["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert shoald.put("/api/v1/namespaces/default/pods/shop-1/status", cur).status == 200
    _endpoints(shoald, "dotted", lambda e: addrs(e) == [])


def test_endpoints_carry_generated_port_names(shoald):
    """kubectl create service names ports "A-B"; the Endpoints the controller derives carry
    the same names, so they must pass Endpoints validation (a DNS-1123 label) too."""
    r = shoald.post(SVCS, svc("gen", selector={"app": "gen"},
                              ports=[{"port": 80, "targetPort": 8080, "name": "80-8080"},
                                     {"port": 443, "targetPort": 8443, "name": "443-8443"}]))
    assert r.status == 201, r
    _ready_pod(shoald, "g1", "10.244.0.21", labels={"app": "gen"})
    ep = _endpoints(shoald, "gen", lambda e: any(s.get("addresses") for s in e.get("subsets", [])))
    assert sorted((p["name"], p["port"]) for s in ep["subsets"] for p in s["ports"]) == \
        [("443-8443", 8443), ("80-8080", 8080)], ep
