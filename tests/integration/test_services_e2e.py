# SPDX-License-Identifier: Apache-2.0
"""Services end to end: real pods run by a real shoald, objects created through its API, real
traffic from pods (and from an outside network namespace) through the datapath shoald programs.

    netns outside   192.168.77.2/24 (uplink0)   an outside client + the upstream DNS server
        |  veth
    netns node      192.168.77.1/24 (eth0: default route, tc NodePort programs)   shoald
        |  routed veths
    pod netns       10.244.0.x                  busybox + shoal-probe pods

shoald runs with no datapath flags. The pods are in the node's cgroup2 subtree (inherited from
shoald on this hybrid host), where the socket load balancer learns their namespaces; test commands run in them with `shoalctl exec`, which goes
through the daemon as a user's would. Server pods run `shoal-probe serve` (TCP and UDP, answers
with the pod name and the client address it saw) next to busybox httpd.

What is proved, with no fake backend or test driver: ClusterIP TCP and UDP to every backend with
the VIP as the peer; sessionAffinity ClientIP; a service without ready endpoints refusing connect()
and sendmsg() at once; a connected UDP socket leaving a backend removed from the service (still
running, so a stale socket would still get answers); NodePort TCP and UDP from the outside
namespace with the client address kept; cluster DNS from a pod (A, headless, SRV, pod name, a name
forwarded upstream, the search path); an established connection and new ClusterIP connections
across a SIGKILL of shoald and its restart; the pinned maps dumped by bpftool with named fields.
Each test deletes what it created and checks the datapath and the machine are clean again; the
module's end checks that no pin, cgroup, netns or mount of the node is left.
"""
import errno
import json
import os
import re
import signal
import subprocess
import time

import pytest

from podtest import PodNode, busybox_image, cond
from shoaltest import BUILD, ROOT, Netns, sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")

PROBE_IMAGE = os.path.join(BUILD, "images", "shoal-probe")
PROBE = os.path.join(BUILD, "shoal-probe")
UPSTREAM = os.path.join(os.path.dirname(__file__), "dns_upstream.py")
PY = "/usr/bin/python3"
OUTSIDE_IP = "192.168.77.2"
NODE_IP = "192.168.77.1"
NS = "default"


def probe_image():
    if not os.path.exists(os.path.join(PROBE_IMAGE, "index.json")) or \
            not os.path.exists(PROBE):
        subprocess.run(["make", "-s", "-C", ROOT, "build/images/shoal-probe"], check=True,
                       stdout=subprocess.DEVNULL)
    return PROBE_IMAGE


class Cluster:
    """One shoald node (its own netns, no datapath flags: eth0 carries its default route) and
    an outside netns on the other end of
    the uplink, with a fake upstream DNS server."""

    def __init__(self):
        busybox_image()
        self.outside = Netns()
        self.upstream = None
        self.node = None
        try:
            self._setup()
        except Exception:
            self.close()
            raise

    def _setup(self):
        # no datapath flags: NodePort is served on the default route's interface by itself
        self.node = PodNode(images=[probe_image()])
        n = self.node
        # the uplink's other end goes to the outside namespace
        sh("ip", "-n", n.netns.name, "link", "set", "uplink0", "netns", self.outside.name)
        sh("ip", "-n", self.outside.name, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "uplink0")
        sh("ip", "-n", self.outside.name, "link", "set", "uplink0", "up")
        sh("ip", "-n", n.netns.name, "route", "add", "default", "via", OUTSIDE_IP)
        # beyond the outside namespace there is nothing: say so at once (image pulls of
        # :latest tags try a registry first and would wait for a timeout)
        sh("ip", "netns", "exec", self.outside.name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", self.outside.name, "route", "add", "unreachable", "default")
        # upstream resolver for names outside the cluster, in the outside namespace
        self.upstream_log = os.path.join(n.tmp, "upstream.log")
        self.upstream = self.outside.popen([PY, UPSTREAM, OUTSIDE_IP, "53", self.upstream_log],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not (os.path.exists(self.upstream_log) and open(self.upstream_log).read()):
            assert time.time() < deadline, "upstream DNS server did not start"
            time.sleep(0.05)
        resolv = os.path.join(n.tmp, "upstream-resolv.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver {OUTSIDE_IP}\n")
        n.extra_args += ["--dns-resolv-conf", resolv]
        n.start()

    def close(self):
        """Stop the node and remove its kept state (`shoald --teardown`); returns what the
        teardown left in the node's namespace (tc programs, nft table)."""
        left = []
        try:
            if self.node:
                n = self.node
                try:
                    if n.proc and n.proc.poll() is None:
                        n.delete(f"/apis/apps/v1/namespaces/{NS}/deployments")
                        n.delete_all_pods()
                    n.stop()
                    n.teardown()
                    tc = n.in_node("tc", "filter", "show", "dev", "eth0", "ingress").stdout + \
                        n.in_node("tc", "filter", "show", "dev", "eth0", "egress").stdout
                    if "shoal_np" in tc:
                        left.append(f"tc {tc}")
                    nft = n.in_node("nft", "list", "tables").stdout
                    if f"shoal-{n.node}" in nft:
                        left.append(f"nft {nft}")
                finally:
                    n.close()  # force-cleans whatever the daemon did not
        finally:
            if self.upstream:
                self.upstream.kill()
                self.upstream.wait()
            self.outside.close()
        return left


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    node = c.node
    pins = f"/sys/fs/bpf/shoal/{node.node}"
    try:
        yield c
    finally:
        left = c.close()
    # nothing of the node is left on the machine: tc programs and nft table (checked before the
    # node's netns went), pins, cgroups, namespaces, mounts
    if os.path.exists(pins):
        left.append(f"pins {os.listdir(pins)}")
    for ctrl in os.listdir("/sys/fs/cgroup"):
        if os.path.isdir(f"/sys/fs/cgroup/{ctrl}/{node.cgroup}"):
            left.append(f"cgroup {ctrl}/{node.cgroup}")
    netns = sh("ip", "netns", "list").stdout
    for name in (node.netns.name, c.outside.name, f"shoal-{node.node}-"):
        if name in netns:
            left.append(f"netns {name}")
    with open("/proc/self/mountinfo") as f:
        left += [f"mount {l.split()[4]}" for l in f if node.tmp in l]
    assert not left, f"left behind: {left}"


class Objects:
    """What one test creates through the API; removed (and checked gone) at its end."""

    def __init__(self, cluster):
        self.c = cluster
        self.n = cluster.node
        self.made = []  # (api path, name)

    def create(self, path, obj):
        obj.setdefault("metadata", {})
        r = self.n.post(path, obj)
        assert r.status == 201, r
        self.made.append((path, obj["metadata"]["name"]))
        return r.json()

    def service(self, name, ports, selector=None, **spec):
        s = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
             "spec": dict(ports=ports, **spec)}
        if selector is not None:
            s["spec"]["selector"] = selector
        return self.create(f"/api/v1/namespaces/{NS}/services", s)

    def pod(self, name, command, labels=None, image="shoal-probe:latest", **spec):
        p = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": name, "labels": labels or {"role": "client"}},
             "spec": dict(terminationGracePeriodSeconds=0,
                          containers=[{"name": "c", "image": image, "command": command}],
                          **spec)}
        return self.create(f"/api/v1/namespaces/{NS}/pods", p)

    def client(self, name="client"):
        self.pod(name, ["sleep", "100000"])
        return self.n.wait_running(name)

    def echo_deployment(self, name, replicas=3):
        """Pods that answer TCP+UDP on 8080 (shoal-probe) and HTTP on 8081 (busybox httpd)."""
        d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
             "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                      "template": {"metadata": {"labels": {"app": name}}, "spec": {
                          "terminationGracePeriodSeconds": 0,
                          "containers": [
                              {"name": "echo", "image": "shoal-probe:latest",
                               "command": ["shoal-probe", "serve", "8080"],
                               "ports": [{"name": "echo", "containerPort": 8080},
                                         {"name": "echo-udp", "containerPort": 8080,
                                          "protocol": "UDP"}],
                               "readinessProbe": {"tcpSocket": {"port": 8080},
                                                  "periodSeconds": 1}},
                              {"name": "httpd", "image": "busybox:latest",
                               "command": ["sh", "-c", "trap 'exit 0' TERM; "
                                           "httpd -f -p 8081 -h /var/www & wait"],
                               "ports": [{"name": "http", "containerPort": 8081}]}]}}}}
        self.create(f"/apis/apps/v1/namespaces/{NS}/deployments", d)
        wait(f"{replicas} ready {name} pods",
             lambda: len([p for p in pods(self.n, f"app={name}") if ready(p)]) == replicas,
             node=self.n)
        return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods(self.n, f"app={name}")}

    def cleanup(self):
        n = self.n
        for path, name in reversed(self.made):
            q = "?gracePeriodSeconds=0" if "/pods" in path else ""
            n.delete(f"{path}/{name}{q}")
        wait("test pods gone", lambda: not n.get("/api/v1/pods").json()["items"], 60, node=n)
        # the datapath holds nothing of the deleted services ...
        wait("no frontends in the datapath", lambda: not bpf_services(n), 10, node=n)
        for m in ("shoal_svc", "shoal_backend", "shoal_revnat"):
            assert bpftool_dump(n, m) == [], m
        # ... and no pod left anything on the machine
        try:
            n.assert_no_leftovers()
        except AssertionError as e:
            # the lines of the daemon's whole log about the pods left behind
            ips = {f"IP {int(x) >> 24}.{int(x) >> 16 & 255}.{int(x) >> 8 & 255}.{int(x) & 255}"
                   for x in re.findall(r"lease (\d+)\|", str(e))}
            with open(n.log_path, errors="replace") as f:
                log = f.readlines()
            ids = {x[:12] for x in re.findall(r"crun ([0-9a-f]{12})-", str(e))}
            names = {l.split("msg=\"pod ")[1].split(":")[0] for l in log if "msg=\"pod " in l and
                     (any(l.rstrip().endswith(ip + '"') for ip in ips) or
                      any(f"({i}-" in l for i in ids))}
            lines = [l for l in log if any(x + ":" in l or x + " " in l for x in names)]
            raise AssertionError(f"{str(e)[:1500]}\n--- about {names}:\n{''.join(lines)}")


@pytest.fixture
def objs(cluster):
    o = Objects(cluster)
    try:
        yield o
    finally:
        if cluster.node.proc and cluster.node.proc.poll() is None:
            o.cleanup()


# --- helpers ---

def wait(what, pred, timeout=60, node=None, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached in {timeout}s" +
                         (f"\n{node.logs()[-4000:]}" if node else ""))


def pods(node, selector):
    items = node.get(f"/api/v1/namespaces/{NS}/pods?labelSelector={selector}").json()["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(p):
    return p.get("status", {}).get("phase") == "Running" and cond(p, "Ready") == "True"


def endpoint_ips(node, svc):
    r = node.get(f"/api/v1/namespaces/{NS}/endpoints/{svc}")
    if r.status != 200:
        return set()
    return {a["ip"] for s in r.json().get("subsets") or [] for a in s.get("addresses", [])}


def wait_endpoints(node, svc, ips):
    wait(f"endpoints of {svc} = {sorted(ips)}", lambda: endpoint_ips(node, svc) == set(ips),
         node=node)


def exec_(node, pod, *cmd, timeout=60):
    return node.ctl("exec", pod, "--", *cmd, check=False, timeout=timeout)


def probe(node, pod, proto, ip, port, count=1):
    """Run shoal-probe in a pod; one dict per attempt: {ok, name, from, peer|src, ms, err}."""
    r = exec_(node, pod, "shoal-probe", proto, ip, str(port), str(count))
    out = []
    for line in r.stdout.splitlines():
        w = line.split()
        d = {"ok": w[0] == "ok"}
        if w[0] == "ok":
            d["name"] = w[1]
        else:
            d["err"] = int(w[1])
        for kv in w[2:]:
            k, _, v = kv.partition("=")
            d[k] = float(v) if k == "ms" else v
        out.append(d)
    assert len(out) == count, f"shoal-probe in {pod}: {r.stdout!r} {r.stderr!r}"
    return out


def outside(cluster, *cmd, timeout=30):
    return cluster.outside.run(list(cmd), check=False, timeout=timeout)


def container_log(node, pod, container="c"):
    """The container's log file, read from disk (works while shoald is down)."""
    p = node.pod(pod) if node.proc.poll() is None else None
    uid = p["metadata"]["uid"] if p else container_log.uids[pod]
    container_log.uids[pod] = uid
    path = os.path.join(node.state_dir, "pods", uid, "logs", container, "0.log")
    try:
        with open(path) as f:
            # CRI format: "<time> stdout F <line>"
            return [l.rstrip("\n").split(" ", 3)[3] for l in f if l.count(" ") >= 3]
    except FileNotFoundError:
        return []


container_log.uids = {}


def bpf_services(node):
    r = sh(os.path.join(BUILD, "shoalctl"), "bpf", "services", node.node, "-o", "json",
           check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout or "[]")


def bpftool_dump(node, m):
    """The pinned map as bpftool prints it from BTF: [{"key": {field: ...}, "value": ...}]."""
    r = sh("bpftool", "-j", "map", "dump", "pinned", f"/sys/fs/bpf/shoal/{node.node}/{m}")
    out = json.loads(r.stdout)
    assert all("formatted" in e for e in out), f"{m}: no BTF-formatted entries: {out[:2]}"
    return [e["formatted"] for e in out]


def be32(ip):
    """An IPv4 address as bpftool prints a __be32 field (a little-endian host integer)."""
    a = [int(x) for x in ip.split(".")]
    return a[0] | a[1] << 8 | a[2] << 16 | a[3] << 24


def be16(port):
    return ((port & 0xff) << 8) | (port >> 8)


def nslookup(node, pod, name, qtype=None):
    cmd = ["nslookup"] + ([f"-type={qtype}"] if qtype else []) + [name]
    r = exec_(node, pod, *cmd)
    return r.returncode, r.stdout + r.stderr


def srv_ports(out):
    # busybox: "<name>\tservice = <priority> <weight> <port> <target>"
    return [int(p) for p in re.findall(r"service = \d+ \d+ (\d+) ", out)]


# --- tests ---

def test_pods_are_in_the_nodes_cgroup2_subtree(cluster, objs):
    """The socket LB serves the node's cgroup2 subtree: shoald and every container must be in
    it (on this hybrid host crun cannot see cgroup2, so membership is inherited from shoald)."""
    n = cluster.node
    objs.client()
    root = sh("sh", "-c", "grep ' - cgroup2 ' /proc/self/mountinfo | head -1").stdout.split()[4]
    subtree = os.path.join(root, n.cgroup)
    procs = set()
    for d, _, files in os.walk(subtree):
        if "cgroup.procs" in files:
            procs |= set(open(os.path.join(d, "cgroup.procs")).read().split())
    assert str(n.proc.pid) in procs
    # the client container's init (sleep) is in the subtree
    cid = n.pod("client")["status"]["containerStatuses"][0]["containerID"].split("://")[1]
    st = json.loads(sh("crun", "--root", os.path.join(n.run_dir, "crun"), "state", cid).stdout)
    assert st["pid"] > 0 and str(st["pid"]) in procs, (st, procs)
    # host-reachable scope (the default): the sock_addr programs are on the cgroup2 root, the
    # sock_create program that learns the pods' network namespaces on the node's subtree
    pins = f"/sys/fs/bpf/shoal/{n.node}/links"
    prog = {name: json.loads(sh("bpftool", "-j", "link", "show", "pinned",
                                os.path.join(pins, name)).stdout)["prog_id"]
            for name in os.listdir(pins)}
    at = {d: {p["id"] for p in json.loads(sh("bpftool", "-j", "cgroup", "show", d).stdout or "[]")}
          for d in (root, subtree)}
    for name in ("connect4", "sendmsg4", "recvmsg4", "getpeername4"):
        assert prog[name] in at[root] and prog[name] not in at[subtree], (name, prog, at)
    assert prog["sock_create"] in at[subtree] and prog["sock_create"] not in at[root]


def node_probe(node, *args):
    """shoal-probe run by a plain process of the node (its netns, not its cgroup subtree)."""
    r = sh("nsenter", f"--net=/run/netns/{node.netns.name}", PROBE, *args, check=False,
           timeout=30)
    return r.stdout.split()


def test_clusterip_tcp_and_udp(cluster, objs):
    n = cluster.node
    backends = objs.echo_deployment("echo")
    svc = objs.service("echo", [
        {"name": "echo", "port": 7, "targetPort": "echo"},
        {"name": "echo-udp", "port": 7, "protocol": "UDP", "targetPort": "echo-udp"},
        {"name": "http", "port": 80, "targetPort": "http"}], selector={"app": "echo"})
    vip = svc["spec"]["clusterIP"]
    assert vip.startswith("10.") and vip != "None"
    client = objs.client()["status"]["podIP"]
    wait_endpoints(n, "echo", backends.values())

    # TCP: every backend, the peer is the VIP, the backend sees the client pod's own address
    res = probe(n, "client", "tcp", vip, 7, 30)
    assert all(r["ok"] for r in res), res
    assert {r["name"] for r in res} == set(backends), res
    assert {r["peer"] for r in res} == {f"{vip}:7"}
    assert {r["from"] for r in res} == {client}
    # UDP (unconnected: one pick per datagram), replies come from the VIP
    res = probe(n, "client", "udp", vip, 7, 30)
    assert all(r["ok"] for r in res), res
    assert {r["name"] for r in res} == set(backends), res
    assert {r["src"] for r in res} == {f"{vip}:7"}
    # a process of the node itself, outside its cgroup subtree (host-reachable scope)
    seen = set()
    for _ in range(20):
        w = node_probe(n, "tcp", vip, "7")
        assert w and w[0] == "ok" and f"peer={vip}:7" in w, w
        seen.add(w[1])
    assert seen == set(backends), seen
    w = node_probe(n, "udp", vip, "7")
    assert w and w[0] == "ok" and f"src={vip}:7" in w, w
    # a real HTTP client to the http port
    r = exec_(n, "client", "wget", "-qO-", f"http://{vip}/index.html")
    assert "hello from shoal busybox" in r.stdout, (r.stdout, r.stderr)

    # scaling changes the backends used
    n.patch(f"/apis/apps/v1/namespaces/{NS}/deployments/echo", {"spec": {"replicas": 1}})
    wait("1 echo endpoint", lambda: len(endpoint_ips(n, "echo")) == 1, node=n)
    left = {p["metadata"]["name"] for p in pods(n, "app=echo")
            if p["status"].get("podIP") in endpoint_ips(n, "echo")}
    res = probe(n, "client", "tcp", vip, 7, 10)
    assert {r["name"] for r in res} == left, res


def test_session_affinity_client_ip(cluster, objs):
    n = cluster.node
    backends = objs.echo_deployment("aff")
    svc = objs.service("aff", [{"name": "echo", "port": 7, "targetPort": 8080}],
                       selector={"app": "aff"}, sessionAffinity="ClientIP",
                       sessionAffinityConfig={"clientIP": {"timeoutSeconds": 300}})
    vip = svc["spec"]["clusterIP"]
    objs.client()
    wait_endpoints(n, "aff", backends.values())
    res = probe(n, "client", "tcp", vip, 7, 20)
    assert all(r["ok"] for r in res) and len({r["name"] for r in res}) == 1, res
    pinned = res[0]["name"]
    # the affinity entry: client kind 1 (this pod's network namespace), 300 s in slot 0
    aff = bpftool_dump(n, "shoal_affinity")
    assert any(e["key"]["kind"] == 1 for e in aff), aff
    slot0 = [e for e in bpftool_dump(n, "shoal_svc")
             if e["key"]["vip"] == be32(vip) and e["key"]["slot"] == 0]
    assert slot0 and slot0[0]["value"]["flags"] & 1 and \
        slot0[0]["value"]["affinity_timeout"] == 300, slot0
    # the pinned backend's pod goes: the client moves to another one and stays there
    r = n.delete(f"/api/v1/namespaces/{NS}/pods/{pinned}?gracePeriodSeconds=0")
    assert r.status in (200, 202)
    wait("pinned backend out of the endpoints",
         lambda: backends[pinned] not in endpoint_ips(n, "aff"), node=n)
    res = probe(n, "client", "tcp", vip, 7, 10)
    assert all(r["ok"] for r in res), res
    names = {r["name"] for r in res}
    assert len(names) == 1 and pinned not in names, res
    # affinity off again: connections spread
    # (the API, like Kubernetes, refuses a sessionAffinityConfig without ClientIP: drop both)
    r = n.patch(f"/api/v1/namespaces/{NS}/services/aff",
                {"spec": {"sessionAffinity": "None", "sessionAffinityConfig": None}})
    assert r.status == 200, r
    wait("spread without affinity",
         lambda: len({r["name"] for r in probe(n, "client", "tcp", vip, 7, 20)}) >= 2, 20,
         node=n)


def test_service_without_endpoints_refuses_at_once(cluster, objs):
    n = cluster.node
    svc = objs.service("empty", [{"name": "t", "port": 7, "targetPort": 8080},
                                 {"name": "u", "port": 7, "protocol": "UDP", "targetPort": 8080}],
                       selector={"app": "empty"})
    vip = svc["spec"]["clusterIP"]
    objs.client()
    wait("frontends programmed", lambda: any(f["frontend"].startswith(vip)
                                             for f in bpf_services(n)), node=n)
    for r in probe(n, "client", "tcp", vip, 7, 5):
        # EHOSTUNREACH from connect() itself, not a 3 s connect timeout
        assert not r["ok"] and r["err"] == errno.EHOSTUNREACH and r["ms"] < 100, r
    for r in probe(n, "client", "udp", vip, 7, 3):
        assert not r["ok"] and r["err"] == errno.EHOSTUNREACH, r
    # a pod that matches makes the service work
    objs.pod("late", ["shoal-probe", "serve", "8080"], labels={"app": "empty"})
    ip = n.wait_running("late")["status"]["podIP"]
    wait_endpoints(n, "empty", [ip])
    res = probe(n, "client", "tcp", vip, 7)[0]
    assert res["ok"] and res["name"] == "late", res


def test_connected_udp_leaves_a_removed_backend(cluster, objs):
    n = cluster.node
    ips = {}
    for name in ("u1", "u2"):
        objs.pod(name, ["shoal-probe", "serve", "5353"], labels={"app": "udp"})
    for name in ("u1", "u2"):
        ips[name] = n.wait_running(name)["status"]["podIP"]
    svc = objs.service("udp", [{"name": "dns", "port": 53, "protocol": "UDP",
                                "targetPort": 5353}], selector={"app": "udp"})
    vip = svc["spec"]["clusterIP"]
    wait_endpoints(n, "udp", ips.values())
    # one connected UDP socket, a datagram every 100 ms, reconnecting only after an error
    objs.pod("looper", ["shoal-probe", "udp-loop", vip, "53", "100"])
    n.wait_running("looper")

    def replies():
        return [l.split()[1] for l in container_log(n, "looper") if l.startswith("reply ")]
    wait("udp replies", lambda: len(replies()) >= 5, node=n)
    first = replies()[0]
    assert set(replies()) == {first}, "a connected socket keeps its backend"
    other = "u2" if first == "u1" else "u1"
    mark = len(container_log(n, "looper"))

    # take the backend out of the service; the pod keeps running and answering
    r = n.patch(f"/api/v1/namespaces/{NS}/pods/{first}", {"metadata": {"labels": {"app": "x"}}})
    assert r.status == 200, r
    wait_endpoints(n, "udp", [ips[other]])

    def after():
        return container_log(n, "looper")[mark:]
    wait(f"replies from {other}", lambda: sum(1 for l in after()
                                              if l.startswith(f"reply {other} ")) >= 5, 20,
         node=n)
    lines = after()
    errs = [l for l in lines if l.startswith("error ")]
    # the socket was destroyed under the application: bpf_sock_destroy() aborts and disconnects
    # it, so its next send() fails (EDESTADDRREQ; a blocked recv() gets ECONNABORTED); the
    # application reconnects once ...
    assert errs and int(errs[0].split()[1]) in (errno.EDESTADDRREQ, errno.ECONNABORTED), lines
    i = lines.index(errs[0])
    assert lines[i + 1] == "reconnect", lines
    # ... and from then on only the remaining backend answers
    assert all(l.split()[1] == other for l in lines[i + 1:] if l.startswith("reply ")), lines
    # the removed backend still answers anyone who asks it directly
    res = probe(n, "looper", "udp", ips[first], 5353)[0]
    assert res["ok"] and res["name"] == first, res


def test_nodeport_from_outside(cluster, objs):
    n = cluster.node
    backends = objs.echo_deployment("np", replicas=2)
    svc = objs.service("np", [
        {"name": "echo", "port": 7, "targetPort": 8080},
        {"name": "echo-udp", "port": 7, "protocol": "UDP", "targetPort": 8080},
        {"name": "http", "port": 80, "targetPort": 8081}], selector={"app": "np"},
        type="NodePort")
    ports = {p["name"]: p["nodePort"] for p in svc["spec"]["ports"]}
    assert all(30000 <= p <= 32767 for p in ports.values()), ports
    wait_endpoints(n, "np", backends.values())
    wait("nodeport frontends", lambda: sum(1 for f in bpf_services(n)
                                           if f["frontend"].startswith(NODE_IP)) == 3, node=n)

    # the outside namespace is not in the node's cgroup: only the tc programs translate
    seen = set()
    for _ in range(20):
        r = outside(cluster, PROBE, "tcp", NODE_IP, str(ports["echo"]))
        w = r.stdout.split()
        assert r.returncode == 0 and w[0] == "ok", (r.stdout, r.stderr, n.logs()[-2000:])
        seen.add(w[1])
        assert f"from={OUTSIDE_IP}" in w, w  # local backends see the real client
        assert f"peer={NODE_IP}:{ports['echo']}" in w, w
    assert seen == set(backends), seen
    seen = set()
    for _ in range(20):
        r = outside(cluster, PROBE, "udp", NODE_IP, str(ports["echo-udp"]))
        w = r.stdout.split()
        assert r.returncode == 0 and w[0] == "ok", (r.stdout, r.stderr)
        assert f"src={NODE_IP}:{ports['echo-udp']}" in w, w
        seen.add(w[1])
    assert seen == set(backends), seen
    r = outside(cluster, "curl", "-sf", "-m", "5", f"http://{NODE_IP}:{ports['http']}/")
    assert "hello from shoal busybox" in r.stdout, (r.stdout, r.stderr)
    # the node's own processes reach node address : nodePort (socket LB, host-reachable)
    r = sh("nsenter", f"--net=/run/netns/{n.netns.name}", "curl", "-sf", "-m", "5",
           f"http://{NODE_IP}:{ports['http']}/", check=False, timeout=30)
    assert "hello from shoal busybox" in r.stdout, (r.stdout, r.stderr)
    # conntrack entries for those flows, in the pinned map
    ct = bpftool_dump(n, "shoal_ct")
    assert any(e["key"]["saddr"] == be32(OUTSIDE_IP) and e["key"]["daddr"] == be32(NODE_IP)
               for e in ct), ct[:3]


def test_dns_from_a_pod(cluster, objs):
    n = cluster.node
    backends = objs.echo_deployment("web", replicas=2)
    svc = objs.service("web", [{"name": "http", "port": 80, "targetPort": 8081}],
                       selector={"app": "web"})
    vip = svc["spec"]["clusterIP"]
    objs.service("web-hl", [{"name": "echo", "port": 8080, "targetPort": 8080}],
                 selector={"app": "web"}, clusterIP="None")
    client = objs.client()["status"]["podIP"]
    wait_endpoints(n, "web-hl", backends.values())
    r = exec_(n, "client", "cat", "/etc/resolv.conf")
    assert "nameserver 10.244.0.1" in r.stdout and \
        "search default.svc.cluster.local svc.cluster.local cluster.local" in r.stdout, r.stdout

    def addrs(out):
        # busybox nslookup prints the server first ("Server: 10.244.0.1", "Address: ...:53")
        return set(re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)$", out, re.M)) - {"10.244.0.1"}

    rc, out = nslookup(n, "client", "web.default.svc.cluster.local")
    assert rc == 0 and addrs(out) == {vip}, out
    rc, out = nslookup(n, "client", "web-hl.default.svc.cluster.local")
    assert rc == 0 and addrs(out) == set(backends.values()), out
    rc, out = nslookup(n, "client", "_echo._tcp.web-hl.default.svc.cluster.local", "srv")
    assert rc == 0 and srv_ports(out).count(8080) == 2, out
    rc, out = nslookup(n, "client", "_http._tcp.web.default.svc.cluster.local", "srv")
    assert rc == 0 and srv_ports(out) == [80] and "web.default.svc.cluster.local" in out, out
    dashed = client.replace(".", "-")
    rc, out = nslookup(n, "client", f"{dashed}.default.pod.cluster.local")
    assert rc == 0 and addrs(out) == {client}, out
    rc, out = nslookup(n, "client", "nope.default.svc.cluster.local")
    assert rc != 0 and "NXDOMAIN" in out, out
    # a name outside the cluster goes to the node's upstream (in the outside namespace)
    rc, out = nslookup(n, "client", "up.example.test")
    assert rc == 0 and addrs(out) == {"192.0.2.1"}, out
    assert any(json.loads(l).get("name", "").lower() == "up.example.test"
               for l in open(cluster.upstream_log)), "the upstream saw the question"
    # the search path, then the ClusterIP: a short name used by a real client
    r = exec_(n, "client", "wget", "-qO-", "http://web/index.html")
    assert "hello from shoal busybox" in r.stdout, (r.stdout, r.stderr)


def test_traffic_survives_sigkill_of_shoald(cluster, objs):
    n = cluster.node
    backends = objs.echo_deployment("keep", replicas=2)
    svc = objs.service("keep", [{"name": "echo", "port": 7, "targetPort": 8080}],
                       selector={"app": "keep"})
    vip = svc["spec"]["clusterIP"]
    wait_endpoints(n, "keep", backends.values())
    # one long-lived connection, and a client making a new connection every 100 ms
    objs.pod("hold", ["shoal-probe", "tcp-hold", vip, "7", "100"])
    objs.pod("dial", ["sh", "-c", f"while :; do shoal-probe tcp {vip} 7; sleep 0.1; done"])
    for p in ("hold", "dial"):
        n.wait_running(p)
    uids = {p: n.pod(p)["metadata"]["uid"] for p in ("hold", "dial")}
    cids = {p["metadata"]["name"]: p["status"]["containerStatuses"][0]["containerID"]
            for p in pods(n, "app=keep")}

    def hold():
        return container_log(n, "hold")

    def dial():
        return container_log(n, "dial")
    wait("hold connected", lambda: sum(1 for l in hold() if l.startswith("reply ")) >= 3,
         node=n)
    wait("dial connecting", lambda: sum(1 for l in dial() if l.startswith("ok ")) >= 3,
         node=n)
    conn_to = hold()[0].split()[1]
    assert conn_to in backends

    h0, d0 = len(hold()), len(dial())
    n.stop(signal.SIGKILL)
    assert n.proc.poll() is not None
    # while the daemon is down: the pinned programs and maps keep serving (wait for the
    # traffic, not for a time in which it may or may not have flowed)
    wait("traffic while the daemon is down", lambda: len(hold()) - h0 >= 10 and
         len(dial()) - d0 >= 10 and {l.split()[1] for l in dial()[d0:]
                                     if l.startswith("ok ")} == set(backends), node=n)
    assert n.proc.poll() is not None
    h1, d1 = hold(), dial()
    assert len(h1) - h0 >= 10 and all(l.startswith(f"reply {conn_to} ") for l in h1[h0:]), h1
    new = d1[d0:]
    assert len(new) >= 10 and all(l.startswith("ok ") for l in new), new
    assert {l.split()[1] for l in new} == set(backends), new

    n.start()
    h2, d2 = len(hold()), len(dial())
    wait("traffic after the restart", lambda: len(hold()) >= h2 + 10 and len(dial()) >= d2 + 10,
         node=n)
    assert all(l.startswith(f"reply {conn_to} ") for l in hold()[h0:]), hold()
    assert all(l.startswith("ok ") for l in dial()[d0:]), dial()
    # the same containers (re-adopted, not restarted) and pods
    for p in ("hold", "dial"):
        assert n.pod(p)["metadata"]["uid"] == uids[p]
    for name, cid in cids.items():
        st = n.pod(name)["status"]["containerStatuses"][0]
        assert st["containerID"] == cid and st["restartCount"] == 0
    # the restarted daemon programs changes again: scale up, the new backend is used
    n.patch(f"/apis/apps/v1/namespaces/{NS}/deployments/keep", {"spec": {"replicas": 3}})
    wait("3 keep endpoints", lambda: len(endpoint_ips(n, "keep")) == 3, node=n)
    names = {p["metadata"]["name"] for p in pods(n, "app=keep")}
    wait("the new backend used", lambda: {l.split()[1] for l in dial()[d0:]
                                          if l.startswith("ok ")} == names, 20, node=n)


def test_pinned_maps_readable_by_bpftool(cluster, objs):
    n = cluster.node
    backends = objs.echo_deployment("maps", replicas=1)
    (name, ip), = backends.items()
    svc = objs.service("maps", [{"name": "echo", "port": 7, "targetPort": 8080},
                                {"name": "echo-udp", "port": 7, "protocol": "UDP",
                                 "targetPort": 8080}],
                       selector={"app": "maps"}, sessionAffinity="ClientIP")
    vip = svc["spec"]["clusterIP"]
    objs.client()
    wait_endpoints(n, "maps", [ip])
    assert probe(n, "client", "tcp", vip, 7)[0]["ok"]
    assert probe(n, "client", "udp", vip, 7)[0]["ok"]

    pins = f"/sys/fs/bpf/shoal/{n.node}"
    names = set(os.listdir(pins))
    assert {"shoal_svc", "shoal_backend", "shoal_revnat", "shoal_sk_nat", "shoal_affinity",
            "shoal_destroy", "shoal_ct", "shoal_maglev", "links"} <= names, names
    svc_map = bpftool_dump(n, "shoal_svc")
    mine = [e for e in svc_map if e["key"]["vip"] == be32(vip)]
    # two frontends (TCP, UDP), each slot 0 + one backend slot
    assert len(mine) == 4, mine
    assert set(mine[0]["key"]) == {"vip", "port", "proto", "pad0", "slot", "pad1"}
    assert set(mine[0]["value"]) == {"backend_id", "count", "term_count", "rev_nat", "flags",
                                     "pad0", "affinity_timeout", "be"}
    assert set(mine[0]["value"]["be"][0]) == {"ip", "port", "flags", "pad0"}
    assert {(e["key"]["port"], e["key"]["proto"]) for e in mine} == {(be16(7), 6),
                                                                     (be16(7), 17)}
    ids = {e["value"]["backend_id"] for e in mine if e["key"]["slot"] == 1}
    be = {e["key"]: e["value"] for e in bpftool_dump(n, "shoal_backend")}
    assert all(be[i]["ip"] == be32(ip) and be[i]["port"] == be16(8080) for i in ids), be
    # a slot carries its backend's address (connect() needs no backend lookup), and slot 0 of
    # a service of at most 4 backends a copy of them (connect() needs no slot lookup either)
    assert all(e["value"]["be"][0]["ip"] == be32(ip) and e["value"]["be"][0]["port"] == be16(8080)
               for e in mine if e["key"]["slot"] in (0, 1)), mine
    assert set(next(iter(be.values()))) == {"ip", "port", "proto", "flags"}
    rev = bpftool_dump(n, "shoal_revnat")
    assert {(e["value"]["vip"], e["value"]["proto"]) for e in rev} >= {(be32(vip), 6),
                                                                       (be32(vip), 17)}
    nat = bpftool_dump(n, "shoal_sk_nat")
    assert any(e["key"]["ip"] == be32(ip) and e["value"]["vip"] == be32(vip) for e in nat), nat
    aff = bpftool_dump(n, "shoal_affinity")
    assert any(set(e["key"]) == {"client", "rev_nat", "kind", "pad0"} and
               e["value"]["backend_id"] in ids for e in aff), aff
    # the human-readable view of the same pins
    out = sh(os.path.join(BUILD, "shoalctl"), "bpf", "services", n.node).stdout
    assert f"{vip}:7/tcp" in out and f"{ip}:8080(local)" in out, out
