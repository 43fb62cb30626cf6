#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Pod benchmark (issues 3 and 5): a real shoald running real pods (crun, netns, IPAM), driven
over its unix socket; times come from a pod watch stream, so they are "the API first showed the
pod Running with an IP", not polling intervals.

Measures, in one run:
  - floor: bare `crun run` of the busybox image (`true`), same bundle the runtime builds
  - 1 pod: API create -> Running with podIP, repeated (p50/p99)
  - 50 pods created at once: each create -> Running (p50/p99) and until all are Running
  - daemon RSS and CPU with 100 idle pods
  - Deployment of 100 replicas: apply -> all Ready; rolling update to another image with
    maxUnavailable 0: how often and how far Ready replicas dipped below 100

usage: bench_pods.py [--single 10] [--burst 50] [--idle 100] [--replicas 100] [--skip-deploy]
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from podtest import BUSYBOX, RTCTL, PodNode, busybox_image  # noqa: E402
from shoaltest import SHOALCTL, UnixHTTPConnection, sh  # noqa: E402

PODS = "/api/v1/namespaces/default/pods"
CMD = ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(x):
    return f"{x * 1000:.0f} ms"


def pod(name, labels=None, image="busybox:latest"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"bench": "pods"}},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": image, "command": CMD}]}}


def ready(p):
    st = p.get("status", {})
    if p["metadata"].get("deletionTimestamp"):
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))


class Watcher(threading.Thread):
    """Reads a pods watch; records when each pod was first seen Running with an IP and keeps
    the set of Ready pods per label selector value (for the rolling update)."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node = node
        self.running_at = {}
        self.lock = threading.Lock()
        self.ready = set()
        self.on_change = None
        self.stop = False

    def run(self):
        conn = UnixHTTPConnection(self.node.socket, timeout=3600)
        conn.request("GET", "/api/v1/pods?watch=true&allowWatchBookmarks=false",
                     headers={"Accept": "application/json"})
        r = conn.getresponse()
        while not self.stop:
            line = r.readline()
            if not line:
                break
            ev = json.loads(line)
            p = ev["object"]
            name = p["metadata"]["name"]
            now = time.monotonic()
            with self.lock:
                st = p.get("status", {})
                if (ev["type"] != "DELETED" and st.get("phase") == "Running"
                        and st.get("podIP") and name not in self.running_at):
                    self.running_at[name] = now
                if ev["type"] != "DELETED" and ready(p):
                    self.ready.add(name)
                else:
                    self.ready.discard(name)
                if self.on_change:
                    self.on_change(now, len(self.ready))


def create(node, body):
    r = node.post(PODS, body)
    assert r.status == 201, r


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timeout waiting for {what}")


def delete_all(node, w, names):
    for n in names:
        node.delete(f"{PODS}/{n}?gracePeriodSeconds=0")
    wait_for(lambda: not any(node.pod(n) for n in names), 180, "pods deleted")
    with w.lock:
        for n in names:
            w.running_at.pop(n, None)


def floor_crun(node, runs):
    """Bare `crun run` of `true` in the bundle the runtime builds for busybox."""
    d = os.path.join(node.tmp, "floor")
    os.makedirs(d)
    podj = {"metadata": {"name": "floor", "namespace": "default", "uid": "floor0000001"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}
    with open(os.path.join(d, "pod.json"), "w") as f:
        json.dump(podj, f)
    rt = [RTCTL, "--state", node.state_dir, "--run", node.run_dir]
    ctr_dir = os.path.join(d, "ctr")
    sh(*rt, "podns-create", os.path.join(d, "ns"), "floor")
    sh(*rt, "prepare", "--pod", os.path.join(d, "pod.json"), "--image", "busybox", "--ctr-dir",
       ctr_dir, "--pod-dir", d, "--podns", os.path.join(d, "ns"), "--cgroup-parent",
       "shoal-podio-floor", "--node", node.node)
    hybrid = os.path.ismount("/sys/fs/cgroup/unified")
    root = os.path.join(d, "crun-root")
    times = []
    try:
        for i in range(runs):
            script = ("umount -l /sys/fs/cgroup/unified 2>/dev/null; " if hybrid else "") + \
                f"exec crun --cgroup-manager=cgroupfs --root {root} run -b {ctr_dir} floor{i}"
            t0 = time.monotonic()
            p = subprocess.run(["unshare", "-m", "--propagation", "slave", "sh", "-c", script],
                               capture_output=True, text=True)
            times.append(time.monotonic() - t0)
            if p.returncode != 0:
                raise RuntimeError(f"crun run: {p.stderr}")
            subprocess.run(["crun", "--root", root, "delete", "-f", f"floor{i}"],
                           capture_output=True)
    finally:
        sh(*rt, "unprepare", "--ctr-dir", ctr_dir, check=False)
        sh(*rt, "podns-destroy", os.path.join(d, "ns"), check=False)
        # crun removes only the leaf cgroup: remove the rest bottom-up in every hierarchy
        for ctrl in os.listdir("/sys/fs/cgroup"):
            top = f"/sys/fs/cgroup/{ctrl}/shoal-podio-floor"
            for dirpath, _, _ in sorted(os.walk(top), key=lambda x: -len(x[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
    return times


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) / 1024
    return 0


def deployment(name, replicas, image):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "c", "image": image,
                                                           "command": CMD,
                                                           "readinessProbe": {
                                                               "exec": {"command": ["true"]},
                                                               "periodSeconds": 2}}]}}}}


def bench_deploy(node, w, replicas, out):
    name = "bench-deploy"
    dips = []
    state = {"armed": False, "min": replicas}

    def on_change(now, n_ready):
        if state["armed"] and n_ready < replicas:
            dips.append((now, n_ready))
            state["min"] = min(state["min"], n_ready)
    w.on_change = on_change
    t0 = time.monotonic()
    r = node.post("/apis/apps/v1/namespaces/default/deployments",
                  deployment(name, replicas, "busybox:latest"))
    assert r.status == 201, r
    wait_for(lambda: len(w.ready) >= replicas, 600, f"{replicas} replicas Ready")
    t_ready = time.monotonic() - t0
    out.append(("Deployment apply -> all Ready", f"{replicas} replicas", ms(t_ready)))
    with w.lock:
        state["armed"] = True
        old = set(w.ready)
    t0 = time.monotonic()
    r = node.patch(f"/apis/apps/v1/namespaces/default/deployments/{name}",
                   {"spec": {"template": {"spec": {"containers": [
                       {"name": "c", "image": "shoal-bench/busybox:v2", "command": CMD}]}}}},
                   ctype="application/strategic-merge-patch+json")
    assert r.status == 200, r

    def rolled():
        with w.lock:
            return len(w.ready) >= replicas and not (w.ready & old)
    wait_for(rolled, 900, "rolling update")
    t_roll = time.monotonic() - t0
    with w.lock:
        state["armed"] = False
    out.append(("rolling update (maxUnavailable 0) -> all new Ready", f"{replicas} replicas",
                ms(t_roll)))
    out.append(("  moments with < replicas Ready during the update", f"{len(dips)}",
                f"min Ready {state['min']}"))
    node.delete(f"/apis/apps/v1/namespaces/default/deployments/{name}")
    wait_for(lambda: not node.get(PODS + "?labelSelector=app%3D" + name).json()["items"], 300,
             "deployment pods deleted")
    w.on_change = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--single", type=int, default=10)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=100)
    ap.add_argument("--floor-runs", type=int, default=10)
    ap.add_argument("--idle-seconds", type=int, default=30)
    ap.add_argument("--skip-deploy", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_pods: needs root (crun, namespaces)")
    busybox_image()
    node = PodNode(node="shoal-podio-bench", extra_args=["--max-pods", "400"])
    out = []
    try:
        node.start()
        # a second name for the same image, for the rolling update
        sh(SHOALCTL, "--server", "unix:" + node.socket, "image", "import", BUSYBOX,
           "--name", "shoal-bench/busybox:v2")
        w = Watcher(node)
        w.start()
        time.sleep(0.5)

        floor = floor_crun(node, a.floor_runs)
        out.append(("floor: bare `crun run` (true)", f"{a.floor_runs} runs",
                    f"p50 {ms(pct(floor, 50))} p99 {ms(pct(floor, 99))}"))

        single = []
        for i in range(a.single):
            n = f"bench-one-{i}"
            t0 = time.monotonic()
            create(node, pod(n))
            wait_for(lambda: n in w.running_at, 60, f"{n} Running")
            single.append(w.running_at[n] - t0)
            delete_all(node, w, [n])
        out.append(("1 pod: create -> Running+IP", f"{a.single} runs",
                    f"p50 {ms(pct(single, 50))} p99 {ms(pct(single, 99))}"))

        names = [f"bench-burst-{i}" for i in range(a.burst)]
        starts = {}
        t0 = time.monotonic()
        for n in names:
            starts[n] = time.monotonic()
            create(node, pod(n))
        wait_for(lambda: all(n in w.running_at for n in names), 300, "burst Running")
        lat = [w.running_at[n] - starts[n] for n in names]
        all_t = max(w.running_at[n] for n in names) - t0
        out.append((f"{a.burst} pods at once: create -> Running+IP", f"{a.burst} pods",
                    f"p50 {ms(pct(lat, 50))} p99 {ms(pct(lat, 99))}, all Running after "
                    f"{ms(all_t)}"))
        delete_all(node, w, names)

        names = [f"bench-idle-{i}" for i in range(a.idle)]
        for n in names:
            create(node, pod(n))
        wait_for(lambda: all(n in w.running_at for n in names), 600, "idle pods Running")
        time.sleep(5)
        pid = node.proc.pid
        c0, t0 = proc_cpu_s(pid), time.monotonic()
        time.sleep(a.idle_seconds)
        cpu = (proc_cpu_s(pid) - c0) / (time.monotonic() - t0) * 100
        out.append((f"daemon with {a.idle} idle pods", f"{a.idle_seconds} s window",
                    f"RSS {proc_rss_mb(pid):.1f} MB, CPU {cpu:.2f} % of one core"))
        delete_all(node, w, names)

        if not a.skip_deploy:
            bench_deploy(node, w, a.replicas, out)
        w.stop = True
    finally:
        print()
        print(f"{'measure':58} {'n':14} result")
        for m, n, r in out:
            print(f"{m:58} {n:14} {r}")
        node.close()


if __name__ == "__main__":
    main()
