# SPDX-License-Identifier: Apache-2.0
"""Port-forward into real pods through the API: unmodified kubectl 1.33 (SPDY tunneled in a
WebSocket) to pod/, svc/ and deploy/ targets, two ports, concurrent connections, bulk data, a
refused port, the pod deleted under a running forward; @kubernetes/client-node's PortForward
(v4.channel.k8s.io); SPDY-only clients get a message.

Pods run `shoal-probe serve 8080` (greets "NAME CLIENT-IP", answers each line L with
"NAME L") and busybox httpd on 8081 with a 2.9 MB file. Seen from inside the pod the client is
127.0.0.1: the bytes went into the pod's network namespace.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from kubeclients import CLIENT_NODE_MODULES, KUBECTL, missing_reason
from podtest import PodNode, ctr, pod_spec
from shoaltest import BUILD, ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")

PROBE_IMAGE = os.path.join(BUILD, "images", "shoal-probe")
PY = "/usr/bin/python3"
BIG_LINES = 400000  # `seq 1 400000`: 2.9 MB
SERVER = ["sh", "-c", "mkdir -p /w && seq 1 %d > /w/big && echo hello > /w/index.html && "
          "httpd -p 8081 -h /w && trap 'exit 0' TERM; shoal-probe serve 8080 & wait" % BIG_LINES]

# A client run inside the node's netns (where kubectl listens): N concurrent connections to
# 127.0.0.1:PORT, each reads the greeting and exchanges LINES lines; prints a JSON summary.
CLIENT = r"""
import json, socket, sys, threading
port, n, lines = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = [None] * n
def one(i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        f = s.makefile("rwb")
        greet = f.readline().decode().strip()
        replies = []
        for j in range(lines):
            f.write(b"conn%d-line%d\n" % (i, j)); f.flush()
            replies.append(f.readline().decode().strip())
        s.close()
        out[i] = {"greet": greet, "replies": replies}
    except Exception as e:
        out[i] = {"error": repr(e)}
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in ts]
[t.join() for t in ts]
print(json.dumps(out))
"""


def probe_image():
    if not os.path.exists(os.path.join(PROBE_IMAGE, "index.json")):
        subprocess.run(["make", "-s", "-C", ROOT, "build/images/shoal-probe"], check=True,
                       stdout=subprocess.DEVNULL)
    return PROBE_IMAGE


@pytest.fixture(scope="module")
def node():
    why = missing_reason("kubectl-1.33", KUBECTL["1.33"])
    if why:
        pytest.skip(why)
    n = PodNode(node="shoal-pf-" + os.urandom(3).hex(), images=[probe_image()])
    try:
        n.start()
        yield n
    finally:
        n.close()


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="shoal-pf-")
    yield d
    subprocess.run(["rm", "-rf", d])


def server_pod(name, labels=None):
    # Ready only once 8080 listens (httpd on 8081 starts before it): writing the 2.9 MB file
    # takes a while on a loaded machine, and a forward opened before would be refused
    p = pod_spec(name, [ctr("srv", SERVER, image="shoal-probe:latest",
                            ports=[{"name": "echo", "containerPort": 8080},
                                   {"name": "http", "containerPort": 8081}],
                            readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1})])
    if labels:
        p["metadata"]["labels"] = labels
    return p


def kubectl_env(tmp):
    return {"HOME": tmp, "PATH": "/usr/bin:/bin", "KUBECACHEDIR": os.path.join(tmp, "cache")}


def kubectl(node, tmp, *args, timeout=60):
    return subprocess.run(["ip", "netns", "exec", node.netns.name, KUBECTL["1.33"], "--server",
                           node.server, *args], capture_output=True, text=True,
                          env=kubectl_env(tmp), timeout=timeout)


class Forward:
    """A running `kubectl port-forward`; its output lines are collected on the side."""

    def __init__(self, node, tmp, *args):
        self.out = open(os.path.join(tmp, "pf.out"), "w+")
        self.err = open(os.path.join(tmp, "pf.err"), "w+")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", node.netns.name, KUBECTL["1.33"], "--server", node.server,
             "port-forward", *args], stdout=self.out, stderr=self.err, env=kubectl_env(tmp))
        self.node = node

    def text(self):
        self.out.seek(0)
        self.err.seek(0)
        return self.out.read(), self.err.read()

    def wait_listening(self, ports, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            out, err = self.text()
            if all(f"Forwarding from 127.0.0.1:{p} ->" in out for p in ports):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        out, err = self.text()
        raise AssertionError(f"kubectl port-forward not listening on {ports}: exit "
                             f"{self.proc.poll()}\nstdout:\n{out}\nstderr:\n{err}\n"
                             f"daemon:\n{self.node.logs()[-3000:]}")

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            out, err = self.text()
            raise AssertionError(f"kubectl port-forward still running after {timeout}s\n"
                                 f"stdout:\n{out}\nstderr:\n{err}\n"
                                 f"daemon:\n{self.node.logs()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()


# One connection that writes many lines without waiting while a thread reads the replies: both
# directions under load at once (pauses on either side must not lose or reorder bytes).
BULK = r"""
import socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=60)
f = s.makefile("rb")
greet = f.readline()
def writer():
    s.sendall(b"".join(b"bulk-%08d-%s\n" % (i, b"x" * 40) for i in range(n)))
t = threading.Thread(target=writer)
t.start()
bad = 0
for i in range(n):
    if f.readline() != b"%s bulk-%08d-%s\n" % (greet.split()[0], i, b"x" * 40):
        bad += 1
t.join()
print(bad)
"""


def clients(node, port, n, lines):
    r = node.in_node(PY, "-c", CLIENT, str(port), str(n), str(lines), timeout=120)
    return json.loads(r.stdout)


def check_echo(res, name, lines):
    for i, r in enumerate(res):
        assert "error" not in r, res
        assert r["greet"] == f"{name} 127.0.0.1", r
        assert r["replies"] == [f"{name} conn{i}-line{j}" for j in range(lines)], r


def http_get(node, port, path, timeout=60):
    r = node.in_node("curl", "-sSf", "-m", str(timeout), f"http://127.0.0.1:{port}{path}",
                     check=False, timeout=timeout + 10)
    assert r.returncode == 0, r.stderr
    return r.stdout


def netns_inode(path):
    return os.stat(path).st_ino


def tasks_by_netns(node):
    """netns inode -> number of the daemon's threads in it."""
    out = {}
    tdir = f"/proc/{node.proc.pid}/task"
    for t in os.listdir(tdir):
        try:
            ino = os.stat(f"{tdir}/{t}/ns/net").st_ino
        except FileNotFoundError:
            continue
        out[ino] = out.get(ino, 0) + 1
    return out


def pod_netns(node):
    names = [n for n in os.listdir("/run/netns") if n.startswith(f"shoal-{node.node}-")]
    assert len(names) == 1, names
    return "/run/netns/" + names[0]


def wait_tasks_in_pod_netns(node, netns_ino, count, timeout=20):
    """Wait until `count` daemon threads are in netns_ino (None: in any netns other than the
    node's own)."""
    own = netns_inode(f"/run/netns/{node.netns.name}")
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        t = tasks_by_netns(node)
        got = t.get(netns_ino, 0) if netns_ino else sum(v for k, v in t.items() if k != own)
        if got == count:
            return t
        time.sleep(0.1)
    raise AssertionError(f"{got} daemon threads in the pod netns, expected {count}")


def test_kubectl_pod_two_ports_concurrent_connections(node, tmp):
    node.create_pod(server_pod("web"))
    node.wait_running("web")
    ns_ino = netns_inode(pod_netns(node))
    own = netns_inode(f"/run/netns/{node.netns.name}")
    main_before = os.stat(f"/proc/{node.proc.pid}/ns/net").st_ino
    assert main_before == own
    fwd = Forward(node, tmp, "pod/web", "18080:8080", "18081:8081")
    try:
        fwd.wait_listening([18080, 18081])
        # one helper thread of the daemon sits in the pod's netns; the rest stay in the node's
        t = wait_tasks_in_pod_netns(node, ns_ino, 1)
        assert set(t) == {own, ns_ino}, t
        assert os.stat(f"/proc/{node.proc.pid}/ns/net").st_ino == own
        # several connections at once, each with its own stream pair
        check_echo(clients(node, 18080, 8, 20), "web", 20)
        # 2.5 MB up and 2.7 MB down at once on one connection
        r = node.in_node(PY, "-c", BULK, "18080", "40000", timeout=180)
        assert r.stdout.strip() == "0", r
        # bulk data from the other port, and a second request on it
        big = http_get(node, 18081, "/big")
        assert big == "".join(f"{i}\n" for i in range(1, BIG_LINES + 1))
        assert http_get(node, 18081, "/index.html") == "hello\n"
        # again, after those connections ended
        check_echo(clients(node, 18080, 3, 5), "web", 5)
        assert fwd.proc.poll() is None, fwd.text()
        out, _ = fwd.text()
        assert out.count("Handling connection for 18080") == 12, out
    finally:
        fwd.stop()
    # the client went away: so does the helper thread
    wait_tasks_in_pod_netns(node, ns_ino, 0)
    node.delete_pod("web", grace=0)


def test_kubectl_service_and_deployment(node, tmp):
    # a Service whose named targetPort kubectl resolves against the pod's container ports
    r = node.post("/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "websvc"},
        "spec": {"selector": {"app": "svcpod"},
                 "ports": [{"name": "echo", "port": 80, "targetPort": "echo"}]}})
    assert r.status == 201, r
    node.create_pod(server_pod("svcpod", labels={"app": "svcpod"}))
    node.wait_running("svcpod")
    tmpl = server_pod("x", labels={"app": "webd"})
    r = node.post("/apis/apps/v1/namespaces/default/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "webd"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "webd"}},
                 "template": {"metadata": {"labels": {"app": "webd"}},
                              "spec": tmpl["spec"]}}})
    assert r.status == 201, r
    deadline = time.time() + 60
    pods = []
    while time.time() < deadline:
        pods = [p for p in node.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dwebd")
                .json()["items"] if p.get("status", {}).get("phase") == "Running"]
        if pods:
            break
        time.sleep(0.2)
    assert pods, node.logs()[-3000:]
    dpod = pods[0]["metadata"]["name"]
    node.wait_running(dpod)

    fwd = Forward(node, tmp, "svc/websvc", "18090:80")
    try:
        fwd.wait_listening([18090])
        check_echo(clients(node, 18090, 3, 4), "svcpod", 4)
    finally:
        fwd.stop()
    fwd = Forward(node, tmp, "deploy/webd", "18091:8080")
    try:
        fwd.wait_listening([18091])
        check_echo(clients(node, 18091, 3, 4), dpod, 4)
    finally:
        fwd.stop()
    assert node.delete("/apis/apps/v1/namespaces/default/deployments/webd").status == 200
    assert node.delete("/api/v1/namespaces/default/services/websvc").status == 200
    node.delete_pod("svcpod", grace=0)


def test_kubectl_refused_port_reports_the_error(node, tmp):
    node.create_pod(server_pod("refuse"))
    node.wait_running("refuse")
    fwd = Forward(node, tmp, "pod/refuse", "18095:9999")
    try:
        fwd.wait_listening([18095])
        r = node.in_node("curl", "-sS", "-m", "20", "http://127.0.0.1:18095/", check=False,
                         timeout=30)
        assert r.returncode != 0
        # kubectl prints kubelet's message and, since 1.30, gives up the forward
        fwd.wait_exit(30)
        _, err = fwd.text()
        assert re.search(r"error forwarding port 9999 to pod refuse, uid [0-9a-f-]+: "
                         r"failed to connect to localhost:9999 inside the pod's network "
                         r"namespace, IPv4: Connection refused", err), err
    finally:
        fwd.stop()
    node.delete_pod("refuse", grace=0)


def test_kubectl_forward_ends_when_the_pod_is_deleted(node, tmp):
    node.create_pod(server_pod("doomed"))
    node.wait_running("doomed")
    fwd = Forward(node, tmp, "pod/doomed", "18096:8080")
    try:
        fwd.wait_listening([18096])
        check_echo(clients(node, 18096, 2, 3), "doomed", 3)
        node.delete_pod("doomed", grace=0)
        assert fwd.wait_exit(30) != 0
        _, err = fwd.text()
        assert "lost connection to pod" in err, err
    finally:
        fwd.stop()
    assert "the pod is gone, ending the forward" in node.logs()
    # nothing of the forward is left in the daemon: its helper thread is gone too
    wait_tasks_in_pod_netns(node, None, 0)


def test_spdy_only_and_bad_requests(node, tmp):
    node.create_pod(server_pod("spdy"))
    node.wait_running("spdy")
    base = "/api/v1/namespaces/default/pods/spdy/portforward"
    r = node.post(base, None, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                       "X-Stream-Protocol-Version": "portforward.k8s.io"})
    assert r.status == 400, r
    assert "not supported by shoal" in json.loads(r.body)["message"]
    assert "WebSocket" in json.loads(r.body)["message"]
    # not an upgrade at all
    r = node.get(base)
    assert r.status == 400 and "Upgrade request required" in json.loads(r.body)["message"]
    # a pod that does not exist: 404 before anything else (kubectl's fallback shows it)
    r = node.post("/api/v1/namespaces/default/pods/ghost/portforward", None,
                  headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
    assert r.status == 404, r
    # kubectl 1.20 speaks SPDY only: a clear message instead of a hang or a 404
    why = missing_reason("kubectl-1.20", KUBECTL["1.20"])
    if not why:
        p = subprocess.run(["ip", "netns", "exec", node.netns.name, KUBECTL["1.20"], "--server",
                            node.server, "port-forward", "pod/spdy", "18097:8080"],
                           capture_output=True, text=True, env=kubectl_env(tmp), timeout=60)
        assert p.returncode != 0
        assert "not supported by shoal" in p.stderr, p.stderr
    node.delete_pod("spdy", grace=0)


def test_client_node_port_forward(node, tmp):
    """@kubernetes/client-node 1.4.0's PortForward (v4.channel.k8s.io) and its raw channels."""
    why = None if shutil.which("node") else "node is not installed"
    why = why or missing_reason("client-node", os.path.join(
        CLIENT_NODE_MODULES, "@kubernetes", "client-node", "package.json"))
    if why:
        pytest.skip(why)
    node.create_pod(server_pod("cnpf"))
    node.wait_running("cnpf")
    kubeconfig = os.path.join(tmp, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: shoal
  cluster:
    server: {node.server}
    insecure-skip-tls-verify: true
users:
- name: shoal
  user: {{}}
contexts:
- name: shoal
  context:
    cluster: shoal
    user: shoal
    namespace: default
current-context: shoal
""")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin:" + os.path.dirname(shutil.which("node")),
           "HOME": tmp, "KUBECONFIG": kubeconfig, "LANG": "C.UTF-8",
           "SHOAL_CLIENT_NODE_MODULES": CLIENT_NODE_MODULES}
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clientnode",
                          "portforward.mjs")
    r = node.netns.run([shutil.which("node"), script, "cnpf", "8080", "9999"], check=False,
                       env=env, cwd=tmp, timeout=120)
    assert r.returncode == 0, (f"portforward.mjs exited {r.returncode}\nstdout:\n{r.stdout}\n"
                               f"stderr:\n{r.stderr[-6000:]}\ndaemon:\n{node.logs()[-3000:]}")
    res = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])
    assert res["ok"] is True
    # both WebSockets are over: no helper thread is left in the pod's netns
    wait_tasks_in_pod_netns(node, None, 0)
    node.delete_pod("cnpf", grace=0)


def test_spdy_protocol_edges(node):
    """Our own SPDY-over-WebSocket client (spdyws.py): pings, a pair without requestID, a line
    followed at once by a half-close, refused and out-of-order streams, a refused port, GOAWAY."""
    node.create_pod(server_pod("edge"))
    node.wait_running("edge")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spdyws.py")
    r = node.in_node(PY, script, node.server.split("//")[1], "default", "edge", "8080", "9999",
                     check=False, timeout=120)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{node.logs()[-3000:]}"
    res = json.loads(r.stdout)
    assert res["status"] == "101" and res["protocol"] == "SPDY/3.1+portforward.k8s.io", res
    assert res["ping"] == [6, 1]
    assert res["replies"] == [[2, 1], [2, 3]] and res["replies2"] == [[2, 7], [2, 9]]
    assert res["greeting"] == "edge 127.0.0.1\n"
    assert res["reply"] == "edge abc\n"
    assert res["no_port"] == [3, 5, 5]  # RST_STREAM, stream 5, CANCEL
    assert res["old_id"] == [3, 5, 1]   # RST_STREAM, stream 5, PROTOCOL_ERROR
    assert re.match(r"error forwarding port 9999 to pod edge, uid [0-9a-f-]+: failed to "
                    r"connect to localhost:9999 inside the pod's network namespace, IPv4: "
                    r"Connection refused IPv6: ", res["error"]), res["error"]
    assert res["goaway"] == [7, 9]
    assert res["close"] == ["closed", 1000]
    wait_tasks_in_pod_netns(node, None, 0)
    node.delete_pod("edge", grace=0)
