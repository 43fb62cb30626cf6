# SPDX-License-Identifier: Apache-2.0
"""DaemonSets on one node with real pods, driven by unmodified kubectl 1.33: the daemon pod
bound to the node, `kubectl get ds` columns, a rolling update followed by `kubectl rollout
status`, history and undo through ControllerRevisions, a nodeSelector that starts matching when
the node is labelled, a NoExecute taint that evicts the pod, and deletion taking the pods and
revisions along. (Several nodes: test_cluster_daemonset.py.)"""
import json

import pytest

from kubeclients import KUBECTL, missing_reason
from podtest import PodNode, cond
from test_workloads import Kube, wait

pytestmark = pytest.mark.skipif(missing_reason("kubectl-1.33", KUBECTL["1.33"]) is not None,
                                reason=str(missing_reason("kubectl-1.33", KUBECTL["1.33"])))

DS = """apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      terminationGracePeriodSeconds: 1
{node_selector}
      containers:
      - name: httpd
        image: busybox:latest
        command: ["httpd", "-f", "-p", "8080", "-h", "/etc"]
        env:
        - name: VERSION
          value: "{version}"
        readinessProbe:
          tcpSocket:
            port: 8080
          periodSeconds: 1
"""


@pytest.fixture
def node():
    n = PodNode()
    try:
        n.start()
        yield n
    finally:
        try:
            n.delete("/apis/apps/v1/namespaces/default/daemonsets")
        except Exception:
            pass
        n.close()


def agent_pods(node, live=True):
    items = node.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dagent").json()["items"]
    return [p for p in items if not (live and p["metadata"].get("deletionTimestamp"))]


def ready_version(node, version):
    ps = agent_pods(node, live=False)
    return (len(ps) == 1 and ps[0]["status"].get("phase") == "Running"
            and cond(ps[0], "Ready") == "True"
            and ps[0]["spec"]["containers"][0]["env"][0]["value"] == version)


def revisions(node):
    return node.get("/apis/apps/v1/namespaces/default/controllerrevisions").json()["items"]


def test_daemonset_with_kubectl(node, tmp_path):
    k = Kube(node, str(tmp_path))
    out = k.apply(DS.format(version="v1", node_selector=""))
    assert "daemonset.apps/agent created" in out
    wait("agent pod ready at v1", lambda: ready_version(node, "v1"), node=node)
    pod = agent_pods(node)[0]
    # bound to this node at creation, with Kubernetes' node affinity and tolerations
    assert pod["spec"]["nodeName"] == node.node
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                       "values": [node.node]}]}]
    assert {"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
            "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    # the HTTP server answers on the pod's address
    assert node.http(pod["status"]["podIP"], path="/hostname") == pod["metadata"]["name"] + "\n"
    # the controller says what it did, as Kubernetes' daemonset-controller does
    ev = node.wait_event("agent", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
    assert ev["type"] == "Normal" and ev["source"]["component"] == "daemonset-controller", ev
    assert ev["involvedObject"]["kind"] == "DaemonSet", ev

    st = k.run("rollout", "status", "ds/agent", "--timeout=60s", timeout=90).stdout
    assert 'daemon set "agent" successfully rolled out' in st
    lines = k.run("get", "ds", "agent").stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE",
                                "AVAILABLE", "NODE", "SELECTOR", "AGE"]
    assert lines[1].split()[:7] == ["agent", "1", "1", "1", "1", "1", "<none>"]
    desc = k.run("describe", "ds", "agent").stdout
    assert "Desired Number of Nodes Scheduled: 1" in desc, desc
    assert "Number of Nodes Scheduled with Available Pods: 1" in desc, desc
    assert "1 Running / 0 Waiting / 0 Succeeded / 0 Failed" in desc, desc
    assert "daemonset.apps/agent" in k.run("get", "all").stdout
    wide = k.run("get", "ds", "agent", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["httpd", "busybox:latest", "app=agent"]

    # a rolling update, watched by kubectl rollout status
    k.apply(DS.format(version="v2", node_selector=""))
    st = k.run("rollout", "status", "ds/agent", "--timeout=90s", timeout=120).stdout
    assert 'daemon set "agent" successfully rolled out' in st
    wait("agent pod ready at v2", lambda: ready_version(node, "v2"), node=node)
    assert len(revisions(node)) == 2
    node.wait_event("agent", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
    assert "SuccessfulCreate" in k.run("describe", "ds", "agent").stdout
    crs = k.run("get", "controllerrevisions").stdout.splitlines()
    assert crs[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert sorted(l.split()[2] for l in crs[1:]) == ["1", "2"]
    assert all(l.split()[1] == "daemonset.apps/agent" for l in crs[1:])

    hist = k.run("rollout", "history", "ds/agent").stdout.splitlines()
    head = next(i for i, l in enumerate(hist) if l.split()[:1] == ["REVISION"])
    assert [l.split()[0] for l in hist[head + 1:] if l.strip()] == ["1", "2"], hist

    # undo: back to v1, whose revision becomes number 3
    assert "rolled back" in k.run("rollout", "undo", "ds/agent").stdout
    st = k.run("rollout", "status", "ds/agent", "--timeout=90s", timeout=120).stdout
    assert 'daemon set "agent" successfully rolled out' in st
    wait("agent pod ready at v1 again", lambda: ready_version(node, "v1"), node=node)
    assert sorted(cr["revision"] for cr in revisions(node)) == [2, 3]

    # a NoExecute taint evicts the daemon pod; removing it brings one back
    k.run("taint", "node", node.node, "maint=now:NoExecute")
    wait("pod evicted", lambda: not agent_pods(node, live=False), node=node)
    ds = json.loads(k.run("get", "ds", "agent", "-o", "json").stdout)
    wait("desired 0", lambda: node.get("/apis/apps/v1/namespaces/default/daemonsets/agent")
         .json()["status"]["desiredNumberScheduled"] == 0, node=node)
    k.run("taint", "node", node.node, "maint:NoExecute-")
    wait("pod back after untaint", lambda: ready_version(node, "v1"), node=node)

    # a nodeSelector the node does not match takes the pod away; labelling the node brings it
    k.apply(DS.format(version="v1", node_selector="      nodeSelector:\n        role: edge"))
    wait("pod gone off a non-matching node", lambda: not agent_pods(node, live=False),
         node=node)
    lines = k.run("get", "ds", "agent").stdout.splitlines()
    assert lines[1].split()[1:7] == ["0", "0", "0", "0", "0", "role=edge"]
    k.run("label", "node", node.node, "role=edge")
    wait("pod on the labelled node", lambda: ready_version(node, "v1"), node=node)
    ds = json.loads(k.run("get", "ds", "agent", "-o", "json").stdout)
    assert ds["status"]["desiredNumberScheduled"] == 1

    # deletion takes pods and revisions along
    k.run("delete", "ds", "agent")
    wait("no agent pods or revisions",
         lambda: not agent_pods(node, live=False) and not revisions(node), node=node)
