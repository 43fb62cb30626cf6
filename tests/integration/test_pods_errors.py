# SPDX-License-Identifier: Apache-2.0
"""Bad input: each case gets its precise status reason and an Event, the daemon keeps serving,
and deleting the pods leaves nothing behind. Also admission (resources, host ports) and a
Deployment from the controllers turning into running pods."""
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from podtest import HTTPD, PodNode, busybox_image, cond, ctr, ctr_status, pod_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")


def nocmd_image(dst):
    """The busybox layout re-tagged as nocmd:latest with no Entrypoint/Cmd in its config."""
    src = busybox_image()
    shutil.copytree(src, dst)
    blobs = os.path.join(dst, "blobs", "sha256")

    def put(obj):
        data = json.dumps(obj).encode()
        dig = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, dig), "wb") as f:
            f.write(data)
        return "sha256:" + dig, len(data)

    index = json.load(open(os.path.join(dst, "index.json")))
    desc = index["manifests"][0]
    manifest = json.load(open(os.path.join(blobs, desc["digest"][7:])))
    config = json.load(open(os.path.join(blobs, manifest["config"]["digest"][7:])))
    config["config"].pop("Cmd", None)
    config["config"].pop("Entrypoint", None)
    manifest["config"]["digest"], manifest["config"]["size"] = put(config)
    desc["digest"], desc["size"] = put(manifest)
    desc["annotations"] = {"org.opencontainers.image.ref.name": "latest",
                           "io.containerd.image.name": "docker.io/library/nocmd:latest"}
    json.dump(index, open(os.path.join(dst, "index.json"), "w"))
    return dst


@pytest.fixture
def node(tmp_path):
    n = PodNode(images=[nocmd_image(str(tmp_path / "nocmd"))], extra_args=["--max-pods", "20"])
    try:
        n.start()
        yield n
    finally:
        n.close()


def waiting(pod, name=None):
    return (ctr_status(pod, name) or {}).get("state", {}).get("waiting", {})


def test_bad_inputs_get_reasons_and_events(node):
    node.create_pod(pod_spec("noimage", [ctr("c", ["true"], image="nonexistent.invalid/x:1",
                                            imagePullPolicy="IfNotPresent")]))
    node.create_pod(pod_spec("neverpull", [ctr("c", ["true"], image="missing:1",
                                              imagePullPolicy="Never")]))
    node.create_pod(pod_spec("nocmd", [{"name": "c", "image": "nocmd:latest",
                                        "imagePullPolicy": "Never"}]))
    node.create_pod(pod_spec("badvol", [ctr("c", ["sleep", "100"])],
                             volumes=[{"name": "v", "configMap": {"name": "does-not-exist"}}]))
    node.create_pod(pod_spec("notfound", [ctr("c", ["/no/such/binary"])]))
    node.create_pod(pod_spec("badref", [ctr("c", ["true"], env=[{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "missing-cm", "key": "k"}}}])]))
    # bound directly (spec.nodeName): the kubelet's admission answers, not the scheduler
    # (test_sched.py: the scheduler keeps such pods Pending as Unschedulable)
    node.create_pod(pod_spec("bigmem", [ctr("c", ["true"], resources={
        "limits": {"memory": "100Ti"}})], nodeName=node.node))
    node.create_pod(pod_spec("bigcpu", [ctr("c", ["true"], resources={
        "requests": {"cpu": "1000"}})], nodeName=node.node))

    p = node.wait_pod("noimage", lambda p: waiting(p).get("reason") in
                      ("ErrImagePull", "ImagePullBackOff"), what="ErrImagePull")
    assert "nonexistent.invalid" in waiting(p)["message"]
    assert p["status"]["phase"] == "Pending"
    node.wait_event("noimage", "Failed", 'Failed to pull image "nonexistent.invalid/x:1"')
    node.wait_event("noimage", "BackOff", 'Back-off pulling image "nonexistent.invalid/x:1"')
    # the registry could not be reached: other images from it are not tried until its back-off
    # runs out (an offline node does not pay the resolver's timeouts pod after pod)
    node.create_pod(pod_spec("noimage2", [ctr("c", ["true"], image="nonexistent.invalid/y:1",
                                             imagePullPolicy="IfNotPresent")]))
    p = node.wait_pod("noimage2", lambda p: "unreachable; next try in" in
                      waiting(p).get("message", ""), what="registry back-off")
    assert waiting(p)["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert "registry nonexistent.invalid unreachable" in waiting(p)["message"]

    p = node.wait_pod("neverpull", lambda p: waiting(p).get("reason") == "ErrImageNeverPull",
                      what="ErrImageNeverPull")
    assert "is not present with pull policy of Never" in waiting(p)["message"]
    node.wait_event("neverpull", "Failed", "pull policy of Never")

    p = node.wait_pod("nocmd", lambda p: waiting(p).get("reason") ==
                      "CreateContainerConfigError", what="CreateContainerConfigError")
    assert "no command specified" in waiting(p)["message"]
    node.wait_event("nocmd", "Failed", "no command specified")

    p = node.wait_pod("badvol", lambda p: waiting(p).get("reason") == "ContainerCreating",
                      what="ContainerCreating")
    ev = node.wait_event("badvol", "FailedMount", "does-not-exist")
    assert ev["type"] == "Warning"
    assert p["status"]["phase"] == "Pending"

    p = node.wait_pod("notfound", lambda p: waiting(p).get("reason") == "RunContainerError",
                      what="RunContainerError")
    assert "/no/such/binary" in waiting(p)["message"]
    node.wait_event("notfound", "Failed", "/no/such/binary")

    p = node.wait_pod("badref", lambda p: waiting(p).get("reason") ==
                      "CreateContainerConfigError", what="CreateContainerConfigError")
    assert 'configmap "missing-cm" not found' in waiting(p)["message"]

    p = node.wait_pod("bigmem", lambda p: p["status"].get("phase") == "Failed", what="Failed")
    assert p["status"]["reason"] == "OutOfmemory"
    assert "Node didn't have enough resource: memory" in p["status"]["message"]
    node.wait_event("bigmem", "OutOfmemory", "requested: 109951162777600")
    p = node.wait_pod("bigcpu", lambda p: p["status"].get("phase") == "Failed", what="Failed")
    assert p["status"]["reason"] == "OutOfcpu"
    node.wait_event("bigcpu", "OutOfcpu", "cpu, requested: 1000000")

    # the node still runs good pods next to the bad ones
    node.create_pod(pod_spec("good", [ctr("httpd", HTTPD)]))
    ip = node.wait_running("good")["status"]["podIP"]
    assert "hello" in node.http(ip, path="/index.html")
    for n in ("noimage", "noimage2", "neverpull", "nocmd", "badvol", "notfound", "badref", "bigmem",
              "bigcpu", "good"):
        node.delete_pod(n, grace=0)
    node.assert_no_leftovers()


def test_crashing_container_reports_its_exit(node):
    node.create_pod(pod_spec("crash", [ctr("c", ["sh", "-c", "echo bye > /dev/termination-log;"
                                                 " exit 42"])], restartPolicy="Never"))
    p = node.wait_pod("crash", lambda p: p["status"].get("phase") == "Failed", what="Failed")
    t = ctr_status(p)["state"]["terminated"]
    assert t["exitCode"] == 42 and t["reason"] == "Error" and t["message"] == "bye\n"
    assert t["startedAt"] <= t["finishedAt"]
    node.delete_pod("crash", grace=0)
    node.assert_no_leftovers()


def test_host_ports_dnat_and_conflicts(node):
    port = [{"containerPort": 8080, "hostPort": 18080}]
    node.create_pod(pod_spec("hp1", [ctr("httpd", HTTPD, ports=port)]))
    node.wait_running("hp1")
    # the node's own address, DNAT'ed to the pod
    assert "hello" in node.http(node.node_ip, port=18080, path="/index.html")
    # bound directly: the kubelet rejects it (the scheduler would keep it Pending)
    node.create_pod(pod_spec("hp2", [ctr("httpd", HTTPD, ports=port)], nodeName=node.node))
    p = node.wait_pod("hp2", lambda p: p["status"].get("phase") == "Failed", what="Failed")
    assert p["status"]["reason"] == "NodePorts"
    node.wait_event("hp2", "NodePorts", "didn't have free ports")
    node.delete_pod("hp1", grace=0)
    node.delete_pod("hp2", grace=0)
    node.assert_no_leftovers()


def test_limits_are_applied_and_qos(node):
    res = {"limits": {"cpu": "250m", "memory": "64Mi"}}
    node.create_pod(pod_spec("limited", [ctr("c", ["sh", "-c", "trap 'exit 0' TERM; "
                                                   "while sleep 1; do :; done & wait"],
                                             resources=res)]))
    p = node.wait_running("limited")
    assert p["status"]["qosClass"] == "Guaranteed"
    cg = f"/sys/fs/cgroup/memory/{node.cgroup}/pod{p['metadata']['uid']}/c/memory.limit_in_bytes"
    if os.path.exists(cg):
        assert int(open(cg).read()) == 64 << 20
    node.delete_pod("limited", grace=1)
    node.assert_no_leftovers()


def oom_floor(pid):
    """The lowest oom_score_adj crun, started from daemon pid, can set (the daemon's
    bundle_oom_score_adj_floor): -1000 with CAP_SYS_RESOURCE in its bounding set and the
    initial user namespace, else the daemon's own value (the kernel refuses lower: EACCES)."""
    with open(f"/proc/{pid}/status") as f:
        bnd = int(next(l for l in f if l.startswith("CapBnd:")).split()[1], 16)
    with open(f"/proc/{pid}/uid_map") as f:
        init_userns = f.read().split() == ["0", "0", "4294967295"]
    if bnd & (1 << 24) and init_userns:  # CAP_SYS_RESOURCE
        return -1000
    with open(f"/proc/{pid}/oom_score_adj") as f:
        return int(f.read())


def test_oom_score_adj_by_qos(node):
    """crun applies process.oomScoreAdj in the container's init: kubelet's values per QoS class,
    never below what this runtime may set."""
    loop = ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done & wait"]
    mem = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal:")).split()[1]) << 10
    pods = {
        "oom-guaranteed": ({"limits": {"cpu": "100m", "memory": "64Mi"}},
                           max(-997, oom_floor(node.proc.pid))),
        "oom-besteffort": ({}, 1000),
        # kubelet: 1000 - 1000 * memory request / node memory, within [3, 999]
        "oom-burstable": ({"requests": {"memory": "64Mi"}},
                          min(max(3, 1000 - (1000 * (64 << 20)) // mem), 999)),
    }
    for name, (res, _) in pods.items():
        node.create_pod(pod_spec(name, [ctr("c", loop, resources=res)]))
    crun_root = os.path.join(node.run_dir, "crun")
    for name, (_, want) in pods.items():
        p = node.wait_running(name)
        cid = ctr_status(p)["containerID"].split("://")[1]
        st = json.loads(subprocess.run(["crun", "--root", crun_root, "state", cid],
                                       capture_output=True, text=True, check=True).stdout)
        with open(f"/proc/{st['pid']}/oom_score_adj") as f:
            assert int(f.read()) == want, (name, p["status"]["qosClass"])
    for name in pods:
        node.delete_pod(name, grace=1)
    node.assert_no_leftovers()


def test_deployment_pods_run(node):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"terminationGracePeriodSeconds": 2, "containers": [
                                     ctr("httpd", HTTPD, readinessProbe={
                                         "httpGet": {"path": "/index.html", "port": 8080},
                                         "periodSeconds": 1})]}}}}
    assert node.post("/apis/apps/v1/namespaces/default/deployments", dep).status == 201

    def ready_pods():
        items = node.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").json()["items"]
        return [p for p in items if cond(p, "Ready") == "True"
                and not p["metadata"].get("deletionTimestamp")]

    import time
    deadline = time.time() + 60
    while time.time() < deadline and len(ready_pods()) < 3:
        time.sleep(0.2)
    pods = ready_pods()
    assert len(pods) == 3, node.logs()
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 3
    for ip in ips:
        assert "hello" in node.http(ip, path="/index.html")
    deadline = time.time() + 30
    while time.time() < deadline:
        d = node.get("/apis/apps/v1/namespaces/default/deployments/web").json()
        if d.get("status", {}).get("readyReplicas") == 3:
            break
        time.sleep(0.2)
    assert d["status"].get("readyReplicas") == 3, d.get("status")
    r = node.delete("/apis/apps/v1/namespaces/default/deployments/web")
    assert r.status in (200, 202)
    deadline = time.time() + 60
    while time.time() < deadline and node.get("/api/v1/pods").json()["items"]:
        time.sleep(0.2)
    assert not node.get("/api/v1/pods").json()["items"]
    node.assert_no_leftovers()


def test_oom_killed(node):
    res = {"limits": {"memory": "24Mi"}}
    hog = ["sh", "-c", "a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo ${#a}"]
    node.create_pod(pod_spec("hog", [ctr("c", hog, resources=res)], restartPolicy="Never"))
    p = node.wait_pod("hog", lambda p: p["status"].get("phase") in ("Failed", "Succeeded"),
                      what="finished")
    t = ctr_status(p)["state"]["terminated"]
    assert t["exitCode"] == 137 and t["reason"] == "OOMKilled", t
    node.delete_pod("hog", grace=0)
    node.assert_no_leftovers()
