# SPDX-License-Identifier: Apache-2.0
"""Service objects through the API: ClusterIP and nodePort allocation, Endpoints derivation."""
import ipaddress
import json
import time

import pytest

from shoaltest import SHOALCTL, Shoald, sh

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
                        "endpoints": []}).status == 405
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
    # the controllers' work queue: failed reconciles retried with back-off
    assert "\nshoal_controller_retries_total " in text
    assert "\nshoal_controller_reconciles_total " in text
    # nothing replicates to a single node: the counters are there, at zero
    assert "shoal_store_merged_total 0\n" in text
    assert "shoal_store_clock_refused_total 0\n" in text
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


# --- type changes: allocation follows the type, and the datapath follows the object ---

NODE_IP = "192.0.2.10"


@pytest.fixture
def dp_shoald():
    """A daemon whose service proxy programs NodePort frontends on NODE_IP."""
    d = Shoald(extra_args=["--node-ip", NODE_IP])
    try:
        d.start()
        yield d
    finally:
        d.close()


def frontends(d):
    """The frontends the daemon's pinned maps hold, as "ip:port/proto"."""
    r = sh(SHOALCTL, "bpf", "services", d.node, "-o", "json", check=False)
    assert r.returncode == 0, r.stderr
    return sorted(f["frontend"] for f in json.loads(r.stdout or "[]"))


def wait_frontends(d, want, timeout=10):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = frontends(d)
        if got == sorted(want):
            return
        time.sleep(0.05)
    raise AssertionError(f"frontends {got}, want {sorted(want)}\n{d.logs()[-3000:]}")


def patch_svc(d, name, spec, status=200):
    r = d.patch(f"{SVCS}/{name}", {"spec": spec})
    assert r.status == status, r
    return r.json()["spec"] if status == 200 else r.json()


def get_svc(d, name):
    r = d.get(f"{SVCS}/{name}")
    assert r.status == 200, r
    return r.json()["spec"]


def node_ports(spec):
    return [p.get("nodePort") for p in spec["ports"]]


def test_type_change_allocates_and_releases(dp_shoald):
    d = dp_shoald
    r = d.post(SVCS, svc("web", ports=[{"name": "http", "port": 80, "targetPort": 8080},
                                       {"name": "dns", "port": 53, "protocol": "UDP"}]))
    assert r.status == 201, r
    spec = r.json()["spec"]
    vip = spec["clusterIP"]
    assert node_ports(spec) == [None, None]
    wait_frontends(d, [f"{vip}:80/tcp", f"{vip}:53/udp"])

    # ClusterIP -> NodePort: nodePorts allocated, the same clusterIP kept
    spec = patch_svc(d, "web", {"type": "NodePort"})
    assert spec["clusterIP"] == vip and spec["clusterIPs"] == [vip]
    np = node_ports(spec)
    assert all(30000 <= p <= 32767 for p in np) and len(set(np)) == 2, spec
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert get_svc(d, "web")["ports"] == spec["ports"]
    wait_frontends(d, [f"{vip}:80/tcp", f"{vip}:53/udp",
                       f"{NODE_IP}:{np[0]}/tcp", f"{NODE_IP}:{np[1]}/udp"])

    # other updates keep them: a label, a selector, a merge patch of one port, a PUT that
    # leaves nodePorts and clusterIP out
    spec = patch_svc(d, "web", {"selector": {"app": "web"}})
    assert node_ports(spec) == np and spec["clusterIP"] == vip
    cur = d.get(f"{SVCS}/web").json()
    for p in cur["spec"]["ports"]:
        del p["nodePort"]
    del cur["spec"]["clusterIP"]
    del cur["spec"]["clusterIPs"]
    r = d.put(f"{SVCS}/web", cur)
    assert r.status == 200, r
    assert node_ports(r.json()["spec"]) == np and r.json()["spec"]["clusterIP"] == vip

    # NodePort -> LoadBalancer -> NodePort: the same nodePorts throughout
    spec = patch_svc(d, "web", {"type": "LoadBalancer"})
    assert node_ports(spec) == np and spec["clusterIP"] == vip
    spec = patch_svc(d, "web", {"type": "NodePort"})
    assert node_ports(spec) == np

    # -> ClusterIP: nodePorts and externalTrafficPolicy cleared, the ports free again
    spec = patch_svc(d, "web", {"type": "ClusterIP"})
    assert node_ports(spec) == [None, None], spec
    assert "externalTrafficPolicy" not in spec, spec
    assert spec["clusterIP"] == vip
    wait_frontends(d, [f"{vip}:80/tcp", f"{vip}:53/udp"])
    r = d.post(SVCS, svc("other", type="NodePort",
                         ports=[{"port": 80, "nodePort": np[0]}]))
    assert r.status == 201, r
    assert d.delete(f"{SVCS}/other").status == 200

    # -> ExternalName: the clusterIP released (another service may take it), no frontends
    spec = patch_svc(d, "web", {"type": "ExternalName", "externalName": "db.example.com."})
    assert "clusterIP" not in spec and "clusterIPs" not in spec, spec
    wait_frontends(d, [])
    r = d.post(SVCS, svc("taker", clusterIP=vip))
    assert r.status == 201, r
    assert d.delete(f"{SVCS}/taker").status == 200

    # ExternalName -> ClusterIP: a clusterIP allocated again
    spec = patch_svc(d, "web", {"type": "ClusterIP"})
    vip2 = spec["clusterIP"]
    assert ipaddress.ip_address(vip2) in ipaddress.ip_network("10.96.0.0/12")
    assert spec["clusterIPs"] == [vip2] and node_ports(spec) == [None, None]
    wait_frontends(d, [f"{vip2}:80/tcp", f"{vip2}:53/udp"])

    # ClusterIP -> ExternalName -> NodePort with a chosen clusterIP: both allocated at once
    patch_svc(d, "web", {"type": "ExternalName"})
    wait_frontends(d, [])
    spec = patch_svc(d, "web", {"type": "NodePort", "clusterIP": "10.96.9.9"})
    assert spec["clusterIP"] == "10.96.9.9" and spec["clusterIPs"] == ["10.96.9.9"]
    np = node_ports(spec)
    assert all(30000 <= p <= 32767 for p in np), spec
    wait_frontends(d, ["10.96.9.9:80/tcp", "10.96.9.9:53/udp",
                       f"{NODE_IP}:{np[0]}/tcp", f"{NODE_IP}:{np[1]}/udp"])

    assert d.delete(f"{SVCS}/web").status == 200
    wait_frontends(d, [])


def test_type_change_conflicts(dp_shoald):
    d = dp_shoald
    r = d.post(SVCS, svc("holder", type="NodePort", ports=[{"port": 80, "nodePort": 30111}]))
    assert r.status == 201, r
    r = d.post(SVCS, svc("web"))
    assert r.status == 201, r
    vip = r.json()["spec"]["clusterIP"]
    # a nodePort another service holds is refused on a type change as on create
    r = d.patch(f"{SVCS}/web", {"spec": {"type": "NodePort",
                                         "ports": [{"port": 80, "nodePort": 30111}]}})
    assert r.status == 422, r
    assert "already allocated" in r.json()["message"], r.json()
    spec = get_svc(d, "web")
    assert spec["type"] == "ClusterIP" and node_ports(spec) == [None], spec
    # a nodePort on a ClusterIP service, and a changed clusterIP, are still refused
    r = d.patch(f"{SVCS}/web", {"spec": {"ports": [{"port": 80, "nodePort": 30112}]}})
    assert r.status == 422, r
    r = d.patch(f"{SVCS}/web", {"spec": {"clusterIP": "10.96.3.3"}})
    assert r.status == 422, r
    assert get_svc(d, "web")["clusterIP"] == vip
    # going back to ClusterIP while changing the nodePort is no silent drop
    patch_svc(d, "holder", {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30113}]},
              status=422)
    assert node_ports(get_svc(d, "holder")) == [30111]
    wait_frontends(d, [f"{get_svc(d, 'holder')['clusterIP']}:80/tcp", f"{vip}:80/tcp",
                       f"{NODE_IP}:30111/tcp"])
    for n in ("holder", "web"):
        assert d.delete(f"{SVCS}/{n}").status == 200
    wait_frontends(d, [])
