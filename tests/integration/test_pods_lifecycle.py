# SPDX-License-Identifier: Apache-2.0
"""Pod lifecycle: init containers, env and the downward API, restart policies with back-off,
probes, and a daemon killed with SIGKILL re-adopting its pods."""
import datetime
import os
import signal
import time

import pytest

from podtest import HTTPD, PodNode, cond, ctr, ctr_status, pod_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done & wait"]


def rfc3339(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


@pytest.fixture
def node():
    n = PodNode()
    try:
        n.start()
        yield n
    finally:
        n.close()


def test_init_containers_env_and_downward_api(node):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
          "data": {"greeting": "hello", "file.txt": "from a configmap"}}
    assert node.post("/api/v1/namespaces/default/configmaps", cm).status == 201
    sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
           "data": {"token": "czNjcjN0"}}  # s3cr3t
    assert node.post("/api/v1/namespaces/default/secrets", sec).status == 201
    env = [
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "MSG", "value": "$(GREETING) world"},
    ]
    init = [
        ctr("first", ["sh", "-c", "echo one >> /work/order; sleep 0.3"],
            volumeMounts=[{"name": "work", "mountPath": "/work"}]),
        ctr("second", ["sh", "-c", "echo two >> /work/order"],
            volumeMounts=[{"name": "work", "mountPath": "/work"}]),
    ]
    main = ctr("main", ["sh", "-c", "env > /work/env; cat /etc/cfg/file.txt > /work/cm; "
                        "hostname > /work/hostname; " + HTTPD[2]], env=env,
               volumeMounts=[{"name": "work", "mountPath": "/work"},
                             {"name": "cfg", "mountPath": "/etc/cfg"}])
    node.create_pod(pod_spec("init", [main], initContainers=init,
                             volumes=[{"name": "work", "emptyDir": {}},
                                      {"name": "cfg", "configMap": {"name": "cfg"}}]))
    p = node.wait_running("init")
    ip = p["status"]["podIP"]
    for name in ("first", "second"):
        s = ctr_status(p, name, init=True)
        assert s["state"]["terminated"]["reason"] == "Completed", s
        assert s["state"]["terminated"]["exitCode"] == 0
    first = ctr_status(p, "first", init=True)["state"]["terminated"]
    second = ctr_status(p, "second", init=True)["state"]["terminated"]
    assert first["finishedAt"] <= second["startedAt"]
    assert cond(p, "Initialized") == "True"

    out = node.exec("init", "cat", "/work/order").stdout
    assert out.split() == ["one", "two"], "init containers ran in order, each to completion"
    env_out = node.exec("init", "cat", "/work/env").stdout
    envs = dict(l.split("=", 1) for l in env_out.splitlines() if "=" in l)
    assert envs["GREETING"] == "hello" and envs["TOKEN"] == "s3cr3t"
    assert envs["POD_NAME"] == "init" and envs["POD_NS"] == "default"
    assert envs["POD_IP"] == ip and envs["NODE"] == node.node
    assert envs["MSG"] == "hello world"
    assert node.exec("init", "cat", "/work/cm").stdout == "from a configmap"
    assert node.exec("init", "cat", "/work/hostname").stdout.strip() == "init"
    resolv = node.exec("init", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.244.0.1" in resolv
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert f"{ip}\tinit" in node.exec("init", "cat", "/etc/hosts").stdout
    node.delete_pod("init", grace=5)
    node.assert_no_leftovers()


def test_restart_policies(node):
    node.create_pod(pod_spec("never-fails", [ctr("c", ["sh", "-c", "exit 3"])],
                             restartPolicy="Never"))
    node.create_pod(pod_spec("onfailure-ok", [ctr("c", ["sh", "-c", "echo done"])],
                             restartPolicy="OnFailure"))
    node.create_pod(pod_spec("crashloop", [ctr("c", ["sh", "-c", "echo crash; exit 1"])]))

    p = node.wait_pod("never-fails", lambda p: p["status"].get("phase") == "Failed",
                      what="Failed")
    t = ctr_status(p)["state"]["terminated"]
    assert t["exitCode"] == 3 and t["reason"] == "Error" and ctr_status(p)["restartCount"] == 0
    assert cond(p, "Ready") == "False"

    p = node.wait_pod("onfailure-ok", lambda p: p["status"].get("phase") == "Succeeded",
                      what="Succeeded")
    t = ctr_status(p)["state"]["terminated"]
    assert t["exitCode"] == 0 and t["reason"] == "Completed"

    # Always: restarted at once, then back-off (10 s) -> CrashLoopBackOff
    p = node.wait_pod("crashloop", lambda p: (ctr_status(p) or {}).get("state", {}).get(
        "waiting", {}).get("reason") == "CrashLoopBackOff" and ctr_status(p)["restartCount"] >= 1,
        what="CrashLoopBackOff", timeout=60)
    cs = ctr_status(p)
    assert "back-off" in cs["state"]["waiting"]["message"]
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert p["status"]["phase"] == "Running"
    node.wait_event("crashloop", "BackOff", "Back-off restarting failed container c")
    # the back-off holds the next restart for >= 10 s after the exit before it: wait for that
    # restart and compare the daemon's own timestamps (whole seconds: the difference of two
    # truncated times is still >= 10), instead of sleeping into a window of unknown start
    n = ctr_status(p)["restartCount"]
    ended = cs["lastState"]["terminated"]["finishedAt"]
    p = node.wait_pod("crashloop", lambda p: ctr_status(p)["restartCount"] == n + 1 and
                      ctr_status(p)["lastState"]["terminated"]["startedAt"] >= ended and
                      ctr_status(p)["lastState"]["terminated"]["finishedAt"] != ended,
                      timeout=60, what="the restart after the back-off")
    restarted = ctr_status(p)["lastState"]["terminated"]["startedAt"]
    assert rfc3339(restarted) - rfc3339(ended) >= 10, (ended, restarted)
    # the log of each instance is kept next to the pod
    uid = p["metadata"]["uid"]
    logs = os.listdir(os.path.join(node.state_dir, "pods", uid, "logs", "c"))
    assert set(logs) == {f"{i}.log" for i in range(n + 2)}, logs
    for name in logs:
        with open(os.path.join(node.state_dir, "pods", uid, "logs", "c", name)) as f:
            assert f.read().endswith(" stdout F crash\n"), name
    for name in ("never-fails", "onfailure-ok", "crashloop"):
        node.delete_pod(name, grace=0)
    node.assert_no_leftovers()


def test_liveness_probe_restarts_and_readiness_toggles_ready(node):
    live = {"exec": {"command": ["test", "-e", "/tmp/alive"]}, "periodSeconds": 1,
            "failureThreshold": 2}
    ready = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1,
             "failureThreshold": 1}
    cmd = ["sh", "-c", "touch /tmp/alive; mkdir -p /www; echo ok > /www/ready; "
           "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]
    node.create_pod(pod_spec("probed", [ctr("app", cmd, livenessProbe=live, readinessProbe=ready,
                                           ports=[{"name": "http", "containerPort": 8080}])],
                             terminationGracePeriodSeconds=2))
    p = node.wait_running("probed")
    first_id = ctr_status(p)["containerID"]

    # readiness: remove the file -> not Ready; put it back -> Ready
    node.exec("probed", "rm", "/www/ready")
    p = node.wait_pod("probed", lambda p: cond(p, "Ready") == "False", timeout=30,
                      what="not Ready")
    assert p["status"]["phase"] == "Running" and not ctr_status(p)["ready"]
    node.wait_event("probed", "Unhealthy", "Readiness probe failed: HTTP probe failed with "
                    "statuscode: 404")
    node.exec("probed", "sh", "-c", "echo ok > /www/ready")
    node.wait_pod("probed", lambda p: cond(p, "Ready") == "True", timeout=30, what="Ready again")

    # liveness: remove the file -> killed and restarted
    node.exec("probed", "rm", "/tmp/alive")
    p = node.wait_pod("probed", lambda p: ctr_status(p)["restartCount"] == 1 and
                      ctr_status(p)["state"].get("running"), timeout=60, what="restarted")
    assert ctr_status(p)["containerID"] != first_id
    node.wait_event("probed", "Unhealthy", "Liveness probe failed: command exited with 1")
    node.wait_event("probed", "Killing", "failed liveness probe, will be restarted")
    node.wait_running("probed")
    node.delete_pod("probed")
    node.assert_no_leftovers()


def test_startup_probe_gates_liveness(node):
    startup = {"exec": {"command": ["test", "-e", "/tmp/started"]}, "periodSeconds": 1,
               "failureThreshold": 30}
    # the liveness probe logs each run (a monotonic clock) and fails until the app started:
    # one run before the startup probe passed would restart the container
    live = {"exec": {"command": ["sh", "-c", "cut -d' ' -f1 /proc/uptime >> /tmp/live; "
                                 "test -e /tmp/started"]},
            "periodSeconds": 1, "failureThreshold": 1}
    cmd = ["sh", "-c", "trap 'exit 0' TERM; sleep 2; cut -d' ' -f1 /proc/uptime > /tmp/started; "
           "httpd -f -p 8080 & wait"]
    node.create_pod(pod_spec("slow", [ctr("app", cmd, startupProbe=startup, livenessProbe=live)]))
    p = node.wait_pod("slow", lambda p: (ctr_status(p) or {}).get("state", {}).get("running"),
                      what="running")
    assert ctr_status(p)["started"] is False and cond(p, "Ready") == "False"
    p = node.wait_running("slow", timeout=45)
    assert ctr_status(p)["started"] is True and ctr_status(p)["restartCount"] == 0
    first = ctr_status(p)["containerID"]

    def live_runs():
        r = node.exec("slow", "cat", "/tmp/live")
        return [float(x) for x in r.stdout.split()] if r.returncode == 0 else []
    deadline = time.time() + 60
    while len(live_runs()) < 3:
        assert time.time() < deadline, "liveness never ran three times"
        time.sleep(0.2)
    started = float(node.exec("slow", "cat", "/tmp/started").stdout)
    assert min(live_runs()) >= started, "liveness ran before the startup probe passed"
    s = ctr_status(node.pod("slow"))
    assert s["restartCount"] == 0 and s["containerID"] == first, "liveness passes once started"
    node.delete_pod("slow", grace=5)
    node.assert_no_leftovers()


def test_sigkill_daemon_readopts_pods(node):
    cmd = ["sh", "-c", "touch /tmp/ready; " + HTTPD[2]]
    node.create_pod(pod_spec("survivor", [ctr("httpd", cmd, readinessProbe={
        "exec": {"command": ["test", "-e", "/tmp/ready"]}, "periodSeconds": 1,
        "failureThreshold": 1})]))
    # the crasher's first run exits 1 when the test says so (a file in a hostPath); its
    # restarts keep running
    gate = os.path.join(node.tmp, "crasher")
    os.makedirs(gate)
    crash = ["sh", "-c", "trap 'exit 0' TERM; if [ -e /g/ran ]; then while sleep 1; do :; done & "
             "wait; exit 0; fi; touch /g/ran; while [ ! -e /g/go ]; do sleep 0.1; done; exit 1"]
    node.create_pod(pod_spec("crasher", [ctr("c", crash, volumeMounts=[
        {"name": "g", "mountPath": "/g"}])], volumes=[{"name": "g", "hostPath": {"path": gate}}]))
    p = node.wait_running("survivor")
    ip = p["status"]["podIP"]
    cs = ctr_status(p)
    uid = p["metadata"]["uid"]
    crashed = ctr_status(node.wait_running("crasher"))
    assert crashed["restartCount"] == 0 and os.path.exists(os.path.join(gate, "ran"))

    node.kill()
    # containers keep running and serving while the daemon is gone
    assert "hello from shoal busybox" in node.http(ip, path="/index.html")
    # the crasher exits while nobody watches
    open(os.path.join(gate, "go"), "w").close()
    deadline = time.time() + 20
    while any("/g/go" in line for line in node.processes()):
        assert time.time() < deadline, "the crasher did not exit"
        time.sleep(0.1)
    node.start()

    p = node.wait_running("survivor")
    cs2 = ctr_status(p)
    assert p["metadata"]["uid"] == uid and p["status"]["podIP"] == ip
    assert cs2["containerID"] == cs["containerID"], "same container, not a new one"
    assert cs2["restartCount"] == 0
    assert cs2["state"]["running"]["startedAt"] == cs["state"]["running"]["startedAt"]
    assert "hello from shoal busybox" in node.http(ip, path="/index.html")
    assert "network re-adopted" in node.logs()
    # the exit that happened while the daemon was down is noticed: that run is the last
    # state, with its exit code, and the container restarted once
    p = node.wait_pod("crasher", lambda p: ctr_status(p)["restartCount"] == 1 and
                      "running" in ctr_status(p)["state"], timeout=30,
                      what="restart after an exit seen on re-adoption")
    last = ctr_status(p)["lastState"]["terminated"]
    assert last["exitCode"] == 1, last
    assert last["startedAt"] == crashed["state"]["running"]["startedAt"], (last, crashed)
    assert last["containerID"] == crashed["containerID"], (last, crashed)
    # probes resumed: readiness still drives Ready
    node.exec("survivor", "rm", "/tmp/ready")
    node.wait_pod("survivor", lambda p: cond(p, "Ready") == "False", timeout=10,
                  what="not Ready after the restart")
    node.delete_pod("survivor", grace=1)
    node.delete_pod("crasher", grace=0)
    node.assert_no_leftovers()
