# SPDX-License-Identifier: Apache-2.0
"""Container lifecycle hooks (postStart/preStop with exec, httpGet and sleep) and
spec.activeDeadlineSeconds, on a real node."""
import os
import time

import pytest

from podtest import PodNode, ctr, ctr_status, pod_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")

# writes "term" to /hooks/log when SIGTERM arrives, then exits 0
TERM_LOGGER = ["sh", "-c", "trap 'echo term >> /hooks/log; exit 0' TERM; "
               "while sleep 1; do :; done & wait"]


@pytest.fixture
def node():
    n = PodNode()
    try:
        n.start()
        yield n
    finally:
        n.close()


def test_poststart_and_prestop_exec(node):
    hooks = os.path.join(node.tmp, "hooks")
    os.makedirs(hooks)
    lifecycle = {
        "postStart": {"exec": {"command": ["sh", "-c", "touch /tmp/began; sleep 3; "
                                           "echo started > /tmp/poststart"]}},
        "preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /hooks/log; sleep 1"]}},
    }
    c = ctr("main", TERM_LOGGER, lifecycle=lifecycle,
            volumeMounts=[{"name": "hooks", "mountPath": "/hooks"}])
    node.create_pod(pod_spec("hooked", [c], volumes=[
        {"name": "hooks", "hostPath": {"path": hooks}}]))
    # while postStart runs the container is neither running nor ready and the pod is Pending
    node.wait_pod("hooked", lambda p: (ctr_status(p) or {}).get("containerID"),
                  what="container created")
    deadline = time.time() + 10
    while node.exec("hooked", "test", "-e", "/tmp/began").returncode != 0:
        assert time.time() < deadline, "postStart never ran"
        time.sleep(0.1)
    p = node.pod("hooked")
    s = ctr_status(p)
    assert s["state"] == {"waiting": {"reason": "ContainerCreating"}}, s
    assert not s["ready"] and not s["started"] and p["status"]["phase"] == "Pending", p
    node.wait_running("hooked")
    assert node.exec("hooked", "cat", "/tmp/poststart").stdout.strip() == "started"

    node.delete_pod("hooked", grace=10)
    with open(os.path.join(hooks, "log")) as f:
        assert f.read().split() == ["prestop", "term"], "preStop ran before SIGTERM"
    node.assert_no_leftovers()


def test_failing_poststart_kills_the_container(node):
    c = ctr("main", ["sleep", "1000"],
            lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "exit 3"]}}})
    node.create_pod(pod_spec("badhook", [c], restartPolicy="Never",
                             terminationGracePeriodSeconds=1))
    e = node.wait_event("badhook", "FailedPostStartHook", "exited with 3")
    assert e["type"] == "Warning"
    node.wait_event("badhook", "Killing", "FailedPostStartHook")
    p = node.wait_pod("badhook", lambda p: p["status"].get("phase") == "Failed",
                      what="Failed")
    s = ctr_status(p)
    assert s["state"]["terminated"]["exitCode"] == 137, s
    assert not s["ready"]
    node.delete_pod("badhook")
    node.assert_no_leftovers()


def test_prestop_httpget_failure_and_sleep(node):
    # httpGet to a port nobody listens on: FailedPreStopHook, the container still stops
    c = ctr("web", TERM_LOGGER, volumeMounts=[{"name": "hooks", "mountPath": "/hooks"}],
            lifecycle={"preStop": {"httpGet": {"port": 9999, "path": "/quit"}}})
    node.create_pod(pod_spec("httphook", [c], volumes=[{"name": "hooks", "emptyDir": {}}]))
    node.wait_running("httphook")
    node.delete_pod("httphook", grace=10)
    evs = [e for e in node.events("httphook") if e["reason"] == "FailedPreStopHook"]
    assert evs and "HTTP lifecycle hook" in evs[0]["message"], evs

    # sleep action: SIGTERM comes once it is over (>= 2 s after the deletion, by the node's
    # clock: the container writes its uptime when TERM arrives, the test reads the uptime at
    # deletion from the same kernel), and within the grace period (TERM, not KILL, ended it)
    hooks = os.path.join(node.tmp, "sleeper")
    os.makedirs(hooks)
    logger = ["sh", "-c", "trap 'cut -d\" \" -f1 /proc/uptime > /hooks/term; exit 0' TERM; "
              "while sleep 1; do :; done & wait"]
    c = ctr("main", logger, volumeMounts=[{"name": "hooks", "mountPath": "/hooks"}],
            lifecycle={"preStop": {"sleep": {"seconds": 2}}})
    node.create_pod(pod_spec("sleeper", [c], volumes=[{"name": "hooks", "hostPath":
                                                        {"path": hooks}}]))
    node.wait_running("sleeper")
    with open("/proc/uptime") as f:
        deleted = float(f.read().split()[0])
    node.delete_pod("sleeper", grace=10)
    with open(os.path.join(hooks, "term")) as f:
        termed = float(f.read())
    assert termed - deleted >= 2, (deleted, termed)
    evs = [e for e in node.events("sleeper") if e["reason"] in ("FailedPreStopHook", "Killing")]
    assert not [e for e in evs if e["reason"] == "FailedPreStopHook"], evs
    node.assert_no_leftovers()


def test_active_deadline_seconds(node):
    c = ctr("main", ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done & wait"])
    node.create_pod(pod_spec("deadline", [c], activeDeadlineSeconds=2))
    node.wait_running("deadline")
    p = node.wait_pod("deadline", lambda p: p["status"].get("phase") == "Failed",
                      timeout=15, what="Failed")
    st = p["status"]
    assert st["reason"] == "DeadlineExceeded", st
    assert st["message"] == "Pod was active on the node longer than the specified deadline"
    node.wait_event("deadline", "DeadlineExceeded")
    p = node.wait_pod("deadline", lambda p: "terminated" in ctr_status(p)["state"],
                      what="container killed")
    killed = ctr_status(p)["state"]["terminated"]
    # a failed pod's containers are not restarted: a restart would be decided when the exit
    # is handled, before the terminated state is written, and would show as a new container
    # process in the pod's cgroup
    assert p["status"]["phase"] == "Failed"
    assert ctr_status(p)["restartCount"] == 0, "a failed pod's containers are not restarted"
    assert not [l for l in node.processes() if l.startswith("container process")], \
        node.processes()
    # a daemon restart keeps it failed: re-adoption reads the exit and decides about a
    # restart before the new pod manager logs "pods: managing"
    managing = node.logs().count("pods: managing")
    node.kill()
    node.start()
    deadline = time.time() + 20
    while node.logs().count("pods: managing") == managing:
        assert time.time() < deadline, "the daemon never re-adopted its pods"
        time.sleep(0.1)
    p = node.pod("deadline")
    assert p["status"]["phase"] == "Failed" and p["status"]["reason"] == "DeadlineExceeded"
    assert ctr_status(p)["restartCount"] == 0 and ctr_status(p)["state"]["terminated"] == killed
    assert not [l for l in node.processes() if l.startswith("container process")], \
        node.processes()
    node.delete_pod("deadline")
    node.assert_no_leftovers()
