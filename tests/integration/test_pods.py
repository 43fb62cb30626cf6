# SPDX-License-Identifier: Apache-2.0
"""The pod manager end to end: pods stored through the API run on the node with real crun, real
namespaces and real traffic; status, Events, deletion and leak checks."""
import ipaddress
import os
import time

import pytest

from podtest import HTTPD, PodNode, cond, ctr, ctr_status, pod_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")


@pytest.fixture
def node():
    n = PodNode()
    try:
        n.start()
        yield n
    finally:
        n.close()


def test_pod_runs_with_ip_status_and_events(node):
    node.create_pod(pod_spec("web", [ctr("httpd", HTTPD, ports=[{"containerPort": 8080}])]))
    p = node.wait_running("web")
    st = p["status"]
    assert p["spec"]["nodeName"] == node.node
    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network("10.244.0.0/24")
    assert st["podIPs"] == [{"ip": st["podIP"]}]
    assert st["hostIP"] == node.node_ip
    assert st["qosClass"] == "BestEffort"
    assert st["startTime"]
    for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert cond(p, c) == "True", c
        assert all(x["lastTransitionTime"] for x in st["conditions"])
    cs = ctr_status(p, "httpd")
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
    assert cs["state"]["running"]["startedAt"]
    assert cs["containerID"].startswith("crun://")
    assert cs["image"] == "busybox:latest"
    assert cs["imageID"].startswith("docker.io/library/busybox@sha256:")

    # node -> pod over the pod network
    assert "hello from shoal busybox" in node.http(st["podIP"], path="/index.html")

    reasons = [e["reason"] for e in node.events("web")]
    for r in ("Scheduled", "Created", "Started"):
        assert r in reasons, reasons
    ev = node.wait_event("web", "Started")
    assert ev["source"]["component"] == "kubelet" and ev["source"]["host"] == node.node
    assert ev["involvedObject"]["kind"] == "Pod" and ev["involvedObject"]["uid"]
    assert ev["involvedObject"]["fieldPath"] == "spec.containers{httpd}"
    assert ev["metadata"]["name"].startswith("web.")
    assert ev["count"] == 1 and ev["firstTimestamp"] and ev["lastTimestamp"]

    node.delete_pod("web", grace=5)
    assert node.wait_event("web", "Killing", "Stopping container httpd")
    node.assert_no_leftovers()


def test_two_pods_talk_over_their_ips(node):
    node.create_pod(pod_spec("server", [ctr("httpd", HTTPD)]))
    node.create_pod(pod_spec("client", [ctr("sh", ["sh", "-c", "trap 'exit 0' TERM; "
                                                   "while sleep 1; do :; done & wait"])]))
    server = node.wait_running("server")["status"]["podIP"]
    client = node.wait_running("client")["status"]["podIP"]
    assert server != client
    r = node.exec("client", "wget", "-qO-", f"http://{server}:8080/index.html")
    assert "hello from shoal busybox" in r.stdout, r.stderr
    # grace 0: the object goes at once, the node tears the pod down afterwards
    node.delete_pod("server", grace=0)
    node.delete_pod("client", grace=0)
    node.assert_no_leftovers()


def test_sigkill_after_grace_period(node):
    # PID 1 ignores SIGTERM (no handler): the container is killed after the grace period
    node.create_pod(pod_spec("stubborn", [ctr("s", ["sleep", "1000"])],
                             terminationGracePeriodSeconds=2))
    node.wait_running("stubborn")
    r = node.delete(f"/api/v1/namespaces/default/pods/stubborn")
    assert r.status == 202 and r.json()["metadata"]["deletionTimestamp"]
    assert r.json()["metadata"]["deletionGracePeriodSeconds"] == 2
    p = node.pod("stubborn")
    assert p is not None, "a bound pod stays until its containers are gone"
    t0 = time.time()
    while node.pod("stubborn") is not None and time.time() - t0 < 15:
        time.sleep(0.1)
    assert node.pod("stubborn") is None
    assert 1.5 < time.time() - t0 < 8, "removed after the 2 s grace period, not before"
    node.assert_no_leftovers()


def test_readme_example(node, tmp_path):
    """The README's first example, applied with shoalctl exactly as written there."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    yaml = readme.split("cat > web.yaml <<'YAML'\n", 1)[1].split("\nYAML\n", 1)[0]
    path = tmp_path / "web.yaml"
    path.write_text(yaml + "\n")
    out = node.ctl("apply", "-f", str(path)).stdout
    assert "pod/web created" in out
    p = node.wait_running("web")
    ip = p["status"]["podIP"]
    wide = node.ctl("get", "pods", "-o", "wide").stdout
    assert ip in wide and "Running" in wide and "1/1" in wide, wide
    assert "hello from shoal busybox" in node.http(ip)
    node.delete_pod("web", grace=1)
    node.assert_no_leftovers()


def test_binding_subresource():
    """POST pods/NAME/binding (what a scheduler sends), on a daemon without the pod manager so
    nothing else binds the pod first."""
    from shoaltest import Shoald
    d = Shoald()
    try:
        d.start()
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        assert d.post("/api/v1/namespaces/default/pods", pod).status == 201
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "n7"}}
        r = d.post("/api/v1/namespaces/default/pods/b/binding", binding)
        assert r.status == 201, r
        assert r.json()["status"] == "Success"
        p = d.get("/api/v1/namespaces/default/pods/b").json()
        assert p["spec"]["nodeName"] == "n7"
        assert [c["status"] for c in p["status"]["conditions"] if c["type"] == "PodScheduled"] \
            == ["True"]
        r = d.post("/api/v1/namespaces/default/pods/b/binding", binding)
        assert r.status == 409 and "already assigned to node" in r.json()["message"], r
        binding["metadata"]["name"] = "nope"
        r = d.post("/api/v1/namespaces/default/pods/nope/binding", binding)
        assert r.status == 404, r
    finally:
        d.close()
