# SPDX-License-Identifier: Apache-2.0
"""Small helpers for the API tests: object builders and a watch stream reader."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from shoaltest import UnixHTTPConnection  # noqa: E402

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def pod(name, labels=None, ns=None, image="busybox"):
    md = {"name": name}
    if labels:
        md["labels"] = labels
    if ns:
        md["namespace"] = ns
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": "c", "image": image}]}}


def configmap(name, data=None, labels=None):
    md = {"name": name}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data or {}}


def deployment(name, replicas=1):
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


class Watch:
    """A watch stream over the daemon's unix socket; events() yields decoded events."""

    def __init__(self, d, path, timeout=10, headers=None):
        self.conn = UnixHTTPConnection(d.socket, timeout=timeout)
        hdrs = {"Accept": "application/json"}
        hdrs.update(headers or {})
        self.conn.request("GET", path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def next(self):
        line = self.resp.readline()
        if not line:
            return None
        return json.loads(line)

    def take(self, n):
        out = []
        for _ in range(n):
            ev = self.next()
            if ev is None:
                break
            out.append(ev)
        return out

    def close(self):
        self.conn.close()
