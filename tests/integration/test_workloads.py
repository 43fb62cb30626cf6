# SPDX-License-Identifier: Apache-2.0
"""Workload controllers with real pods: the seed's three-replica Deployment (busybox httpd
instead of nginx) through shoalctl and through kubectl — a killed pod is replaced, scaling to 5
and 1, a rolling update with no ready-replica gap, undo, Jobs to completion and to their back-off
limit, and deleting a Deployment leaving no pods or ReplicaSets."""
import json
import os
import threading
import time

import pytest

from kubeclients import KUBECTL, Kubectl, missing_reason
from podtest import PodNode, cond
from shoaltest import SHOALCTL, sh

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {image}
        command: ["httpd", "-f", "-p", "8080", "-h", "/etc"]
        env:
        - name: VERSION
          value: "{version}"
        ports:
        - containerPort: 8080
        readinessProbe:
          tcpSocket:
            port: 8080
          periodSeconds: 1
"""

JOB = """apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  completions: {completions}
  parallelism: 2
  backoffLimit: {backoff}
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: work
        image: busybox:latest
        command: ["sh", "-c", "{script}"]
"""


@pytest.fixture
def node():
    n = PodNode()
    try:
        n.start()
        yield n
    finally:
        # controllers would recreate pods the fixture deletes: remove the owners first
        for path in ("/apis/apps/v1/namespaces/default/deployments",
                     "/apis/batch/v1/namespaces/default/jobs"):
            try:
                n.delete(path)
            except Exception:
                pass
        n.close()


class Ctl:
    """shoalctl against the node's unix socket."""

    def __init__(self, node, tmp):
        self.node = node
        self.tmp = tmp

    def run(self, *args, check=True, timeout=120):
        r = sh(SHOALCTL, "--server", "unix:" + self.node.socket, *args, check=False,
               timeout=timeout)
        if check and r.returncode:
            raise AssertionError(f"shoalctl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n"
                                 f"{r.stderr}\n{self.node.logs()[-3000:]}")
        return r

    def apply(self, text):
        path = os.path.join(self.tmp, "m.yaml")
        with open(path, "w") as f:
            f.write(text)
        return self.run("apply", "-f", path).stdout


class Kube:
    """kubectl 1.33 inside the node's netns."""

    def __init__(self, node, tmp):
        self.k = Kubectl("1.33", node, tmp)
        self.tmp = tmp

    def run(self, *args, check=True, timeout=120):
        return self.k.run(*args, check=check, timeout=timeout)

    def apply(self, text):
        path = os.path.join(self.tmp, "m.yaml")
        with open(path, "w") as f:
            f.write(text)
        return self.run("apply", "-f", path).stdout


def web_pods(node):
    items = node.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").json()["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(p):
    return p.get("status", {}).get("phase") == "Running" and cond(p, "Ready") == "True"


def wait(what, pred, timeout=90, node=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s" +
                         (f"\n{node.logs()[-4000:]}" if node else ""))


def wait_ready(node, n, version=None, timeout=90):
    def ok():
        ps = web_pods(node)
        good = [p for p in ps if ready(p) and (version is None or any(
            e.get("value") == version for e in p["spec"]["containers"][0].get("env", [])))]
        return len(ps) == n and len(good) == n
    wait(f"{n} ready web pods" + (f" at {version}" if version else ""), ok, timeout, node)


def replicasets(node):
    return node.get("/apis/apps/v1/namespaces/default/replicasets").json()["items"]


class ReadyMonitor(threading.Thread):
    """Counts the moments (samples every 20 ms) when fewer than `want` web pods were Ready."""

    def __init__(self, node, want):
        super().__init__(daemon=True)
        self.node, self.want = node, want
        self.dips, self.samples = 0, 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            n = sum(1 for p in web_pods(self.node) if ready(p))
            self.samples += 1
            if n < self.want:
                self.dips += 1
            time.sleep(0.02)


def scenario(node, tool):
    out = tool.apply(DEPLOY.format(image="busybox:latest", version="v1"))
    assert "deployment.apps/web created" in out
    wait_ready(node, 3)
    # every pod serves HTTP on its own IP (its /etc/hostname: its name)
    for p in web_pods(node):
        assert node.http(p["status"]["podIP"], path="/hostname") == p["metadata"]["name"] + "\n"

    # a killed pod is replaced
    victim = web_pods(node)[0]["metadata"]["name"]
    tool.run("delete", "pod", victim)
    wait("replacement", lambda: victim not in [p["metadata"]["name"] for p in web_pods(node)]
         and len(web_pods(node)) == 3 and all(ready(p) for p in web_pods(node)), node=node)

    # scale to 5 and to 1
    assert "scaled" in tool.run("scale", "deployment/web", "--replicas=5").stdout
    wait_ready(node, 5)
    tool.run("scale", "deployment/web", "--replicas=1")
    wait_ready(node, 1)
    tool.run("scale", "deployment/web", "--replicas=3")
    wait_ready(node, 3)

    # roll to a new template with no ready-replica gap
    mon = ReadyMonitor(node, 3)
    mon.start()
    tool.apply(DEPLOY.format(image="busybox:latest", version="v2"))
    st = tool.run("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    assert 'deployment "web" successfully rolled out' in st.stdout
    wait_ready(node, 3, version="v2")
    mon.stop.set()
    mon.join()
    assert mon.samples >= 3 and mon.dips == 0, f"{mon.dips} of {mon.samples} samples below 3"
    assert len(replicasets(node)) == 2

    hist = tool.run("rollout", "history", "deployment/web").stdout.splitlines()
    head = next(i for i, l in enumerate(hist) if l.split()[:1] == ["REVISION"])
    assert [l.split()[0] for l in hist[head + 1:] if l.strip()] == ["1", "2"], hist

    # undo goes back to v1 (as revision 3)
    assert "rolled back" in tool.run("rollout", "undo", "deployment/web").stdout
    tool.run("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    wait_ready(node, 3, version="v1")

    # jobs: one to completion, one to its back-off limit
    tool.apply(JOB.format(name="ok", completions=3, backoff=6, script="echo done"))
    tool.apply(JOB.format(name="bad", completions=1, backoff=1, script="exit 3"))

    def job_cond(name, t):
        j = node.get(f"/apis/batch/v1/namespaces/default/jobs/{name}").json()
        return any(c["type"] == t and c["status"] == "True"
                   for c in j.get("status", {}).get("conditions", []))
    wait("job ok Complete", lambda: job_cond("ok", "Complete"), 120, node)
    j = node.get("/apis/batch/v1/namespaces/default/jobs/ok").json()
    assert j["status"]["succeeded"] == 3
    wait("job bad Failed", lambda: job_cond("bad", "Failed"), 120, node)
    j = node.get("/apis/batch/v1/namespaces/default/jobs/bad").json()
    assert j["status"]["failed"] == 2
    assert any(c["reason"] == "BackoffLimitExceeded" for c in j["status"]["conditions"])

    # deleting the Deployment leaves no pods or ReplicaSets
    tool.run("delete", "deployment", "web")
    wait("no web pods or replicasets",
         lambda: not node.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
         .json()["items"] and not replicasets(node), 90, node)


def test_workloads_with_shoalctl(node, tmp_path):
    scenario(node, Ctl(node, str(tmp_path)))


@pytest.mark.skipif(missing_reason("kubectl-1.33", KUBECTL["1.33"]) is not None,
                    reason=str(missing_reason("kubectl-1.33", KUBECTL["1.33"])))
def test_workloads_with_kubectl(node, tmp_path):
    scenario(node, Kube(node, str(tmp_path)))
