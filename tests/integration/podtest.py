# SPDX-License-Identifier: Apache-2.0
"""Helpers for pod lifecycle tests: a shoald that runs real pods (crun, netns, nftables) and the
leak checks that follow every test.

The daemon runs in a network namespace the test created but in the host's mount namespace
(`nsenter --net`, not `ip netns exec`): pod netns files, overlay root file systems and the pod
IPC/UTS namespace bind mounts must be visible to the next daemon after a restart, and to the
test's leak checks. The node netns gets an address on a veth (its "uplink") so node -> pod
traffic has a source address, as on a real machine.
"""
import json
import os
import subprocess
import time

from shoaltest import BUILD, ROOT, Netns, Shoald, sh

BUSYBOX = os.path.join(BUILD, "images", "busybox")
RTCTL = os.path.join(BUILD, "shoal-rtctl")


def busybox_image():
    if not os.path.exists(os.path.join(BUSYBOX, "index.json")):
        subprocess.run(["make", "-s", "-C", ROOT, "build/images/busybox"], check=True,
                       stdout=subprocess.DEVNULL)
    return BUSYBOX


class PodNode(Shoald):
    def __init__(self, extra_args=(), images=(), node_ip="192.168.77.1", **kw):
        args = ["--image-preload", ",".join([busybox_image()] + list(images))] + list(extra_args)
        super().__init__(extra_args=args, pods=True, **kw)
        self.node_ip = node_ip
        self.cgroup = f"shoal-{self.node}"
        try:
            sh("ip", "-n", self.netns.name, "link", "add", "eth0", "type", "veth", "peer",
               "name", "uplink0")
            sh("ip", "-n", self.netns.name, "addr", "add", f"{node_ip}/24", "dev", "eth0")
            sh("ip", "-n", self.netns.name, "link", "set", "eth0", "up")
            sh("ip", "-n", self.netns.name, "link", "set", "uplink0", "up")
        except Exception:
            self.netns.close()
            raise

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns.name}"]
                                     + self.args(), stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    # --- pods through the API ---
    def create_pod(self, pod, ns="default"):
        pod = dict(pod)
        pod.setdefault("apiVersion", "v1")
        pod.setdefault("kind", "Pod")
        r = self.post(f"/api/v1/namespaces/{ns}/pods", pod)
        assert r.status == 201, r
        return r.json()

    def pod(self, name, ns="default"):
        r = self.get(f"/api/v1/namespaces/{ns}/pods/{name}")
        return r.json() if r.status == 200 else None

    def wait_pod(self, name, pred, timeout=30, ns="default", what="condition"):
        deadline = time.time() + timeout
        p = None
        while time.time() < deadline:
            p = self.pod(name, ns)
            if p is not None and pred(p):
                return p
            time.sleep(0.1)
        raise AssertionError(f"pod {ns}/{name}: {what} not reached in {timeout}s; last: "
                             f"{json.dumps((p or {}).get('status'), indent=1)}\n"
                             f"daemon log:\n{self.logs()}")

    def wait_running(self, name, timeout=30, ns="default", ready=True):
        def ok(p):
            st = p.get("status", {})
            if st.get("phase") != "Running" or not st.get("podIP"):
                return False
            return not ready or cond(p, "Ready") == "True"
        return self.wait_pod(name, ok, timeout, ns, "Running" + (" and Ready" if ready else ""))

    def delete_pod(self, name, ns="default", grace=None, wait=True, timeout=60):
        q = f"?gracePeriodSeconds={grace}" if grace is not None else ""
        r = self.delete(f"/api/v1/namespaces/{ns}/pods/{name}{q}")
        assert r.status in (200, 202), r
        if wait:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.pod(name, ns) is None:
                    return
                time.sleep(0.1)
            raise AssertionError(f"pod {ns}/{name} not removed in {timeout}s:\n{self.logs()}")

    def events(self, name, ns="default"):
        items = self.get(f"/api/v1/namespaces/{ns}/events").json()["items"]
        return [e for e in items if e["involvedObject"].get("name") == name]

    def wait_event(self, name, reason, contains="", timeout=30, ns="default"):
        deadline = time.time() + timeout
        evs = []
        while time.time() < deadline:
            evs = self.events(name, ns)
            for e in evs:
                if e["reason"] == reason and contains in e["message"]:
                    return e
            time.sleep(0.1)
        raise AssertionError(f"no {reason} event containing {contains!r} for {name}: "
                             f"{[(e['reason'], e['message']) for e in evs]}")

    def in_node(self, *cmd, check=True, timeout=30):
        """Run a command in the node's network namespace."""
        return self.netns.run(list(cmd), check=check, timeout=timeout)

    def exec(self, pod, *cmd, container=None, ns="default", timeout=30):
        """Run a command in a pod's container through the runtime (crun exec), the way the
        pod manager's exec probes do."""
        p = self.pod(pod, ns)
        cid = ctr_status(p, container)["containerID"].split("://")[1]
        return sh(RTCTL, "--state", self.state_dir, "--run", self.run_dir, "exec", cid, *cmd,
                  check=False, timeout=timeout)

    def http(self, ip, port=8080, path="/", timeout=5):
        # -f: an HTTP error is no page (a 404 body must not pass for the content)
        r = self.in_node("curl", "-sf", "-m", str(timeout), f"http://{ip}:{port}{path}",
                         check=False, timeout=timeout + 5)
        return r.stdout if r.returncode == 0 else None

    # --- what a pod leaves on the machine ---
    def processes(self):
        """This node's shims (by their crun root) and the processes in its pod cgroups. Other
        nodes run on this machine at the same time: nothing else counts."""
        crun_root = os.path.join(self.run_dir, "crun")
        own = f"/{self.cgroup}/"
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
                with open(f"/proc/{pid}/cgroup") as f:
                    cgs = [l.rstrip("\n").split(":", 2)[2] for l in f if l.count(":") >= 2]
                with open(f"/proc/{pid}/stat") as f:
                    zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                continue  # gone meanwhile
            if zombie:
                continue  # exited; only its (new) parent has yet to reap it
            if argv and os.path.basename(argv[0]) == "shoal-shim" and crun_root in argv:
                out.append(f"shim {pid} {' '.join(argv)}")
            # the daemon's own cgroup2 leaf holds the daemon and its shims, not pods
            elif any(c.startswith(own) and not (c + "/").startswith(own + "shoald/")
                     for c in cgs):
                out.append(f"container process {pid} {' '.join(argv)}")
        return out

    def leftovers(self):
        out = self.processes()
        netns = [n.split()[0] for n in sh("ip", "netns", "list").stdout.splitlines()]
        out += [f"netns {n}" for n in netns if n.startswith(f"shoal-{self.node}-")]
        links = sh("ip", "-n", self.netns.name, "-o", "link", "show", "type", "veth").stdout
        for l in links.splitlines():
            name = l.split(":")[1].strip().split("@")[0]
            if name not in ("eth0", "uplink0"):
                out.append(f"veth {name}")
        routes = sh("ip", "-n", self.netns.name, "route", "show", "proto", "209").stdout.strip()
        if routes:
            out.append(f"routes {routes}")
        nft = self.in_node("nft", "list", "chain", "ip", f"shoal-{self.node}", "hostports",
                           check=False).stdout
        out += [f"nft {l.strip()}" for l in nft.splitlines() if "dnat" in l]
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{ctrl}/{self.cgroup}"
            if os.path.isdir(d):
                # `shoald` is the daemon's own leaf (cgroup2), not a pod's
                out += [f"cgroup {d}/{x}" for x in os.listdir(d)
                        if os.path.isdir(os.path.join(d, x)) and x != "shoald"]
        with open("/proc/self/mountinfo") as f:
            out += [f"mount {l.split()[4]}" for l in f if self.tmp in l.split()[4]]
        db = os.path.join(self.state_dir, "ipam.db")
        if os.path.exists(db):
            q = subprocess.run(["sqlite3", db, "select ip, owner from leases"],
                               capture_output=True, text=True)
            out += [f"lease {l}" for l in q.stdout.splitlines() if l.strip()]
        pods_dir = os.path.join(self.state_dir, "pods")
        if os.path.isdir(pods_dir):
            out += [f"pod dir {x}" for x in os.listdir(pods_dir)]
        cdir = os.path.join(self.run_dir, "containers")
        if os.path.isdir(cdir):
            out += [f"container state {x}" for x in os.listdir(cdir)]
        crun_root = os.path.join(self.run_dir, "crun")
        if os.path.isdir(crun_root):
            l = subprocess.run(["crun", "--root", crun_root, "list", "-q"], capture_output=True,
                               text=True).stdout.split()
            out += [f"crun {x}" for x in l]
        return out

    def assert_no_leftovers(self, timeout=10):
        deadline = time.time() + timeout
        left = self.leftovers()
        while left and time.time() < deadline:
            time.sleep(0.2)
            left = self.leftovers()
        assert not left, f"left behind: {left}\n{self.logs()}"

    def delete_all_pods(self):
        """Delete every pod through the daemon (grace 0) and wait for the node to tear them
        down; best effort."""
        try:
            if self.proc and self.proc.poll() is None:
                r = self.get("/api/v1/pods")
                for p in r.json().get("items", []) if r.status == 200 else []:
                    md = p["metadata"]
                    self.delete(f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}"
                                "?gracePeriodSeconds=0")
                deadline = time.time() + 30
                while time.time() < deadline and self.get("/api/v1/pods").json()["items"]:
                    time.sleep(0.2)
                deadline = time.time() + 10
                while time.time() < deadline and self.leftovers():
                    time.sleep(0.2)
        except Exception:
            pass

    def close(self):
        """Delete every pod through the daemon, then remove by force whatever is left (a failed
        test must not leak containers, mounts or namespaces onto the machine)."""
        self.delete_all_pods()
        self.stop()
        self.force_clean()
        try:
            self.teardown()  # pinned datapath, nft table, cgroup subtree
        finally:
            self.netns.close()
        sh("rm", "-rf", self.tmp, check=False)

    def force_clean(self):
        crun_root = os.path.join(self.run_dir, "crun")
        if os.path.isdir(crun_root):
            ids = subprocess.run(["crun", "--root", crun_root, "list", "-q"],
                                 capture_output=True, text=True).stdout.split()
            for i in ids:
                subprocess.run(["crun", "--root", crun_root, "delete", "--force", i],
                               capture_output=True)
        with open("/proc/self/mountinfo") as f:
            mounts = [l.split()[4] for l in f if self.tmp in l.split()[4]]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        for n in sh("ip", "netns", "list").stdout.splitlines():
            n = n.split()[0]
            if n.startswith(f"shoal-{self.node}-"):
                sh("ip", "netns", "del", n, check=False)
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{ctrl}/{self.cgroup}"
            if os.path.isdir(d):
                for root, dirs, _ in os.walk(d, topdown=False):
                    for x in dirs:
                        try:
                            os.rmdir(os.path.join(root, x))
                        except OSError:
                            pass
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def cond(pod, type_):
    for c in pod.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c["status"]
    return None


def ctr_status(pod, name=None, init=False):
    key = "initContainerStatuses" if init else "containerStatuses"
    for s in pod.get("status", {}).get(key, []):
        if name is None or s["name"] == name:
            return s
    return None


def pod_spec(name, containers, **spec):
    return {"metadata": {"name": name, "labels": {"app": name}},
            "spec": dict(containers=containers, **spec)}


def ctr(name, command, image="busybox:latest", **kw):
    c = {"name": name, "image": image, "command": command}
    c.update(kw)
    return c


# a container that serves HTTP on 8080 and exits promptly on SIGTERM
HTTPD = ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /var/www & wait"]
