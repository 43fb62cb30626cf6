# SPDX-License-Identifier: Apache-2.0
"""Any node answers for any pod (issue 12 item 5): on a 3-node devcluster, kubectl talks to n1
only, and `logs`, `logs -f`, `exec` (stdout, stderr, stdin, exit code), `cp` both ways,
`attach` (output, and stdin of a container created with it) and `port-forward` reach pods running on n2 and n3 because n1 relays each request to the pod's node
over TLS with its node credential (daemon/relay.h). A node's API refuses pod I/O without a
valid node credential and a node credential anywhere else; a pod whose node is unreachable
(its API black-holed, or the node killed) gets an error naming that node, not a hang.

The pods are created on their own node; n1 knows them (and their status) only through object
replication.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time

import pytest

from devcluster import devcluster, wait_for
from kubeclients import KUBECTL, missing_reason

KUBECTL_BIN = KUBECTL["1.33"]
RELAY_CONNECT_S = 3  # api/relay.c RELAY_CONNECT_MS


def talker(name, node):
    """A pod bound to node: an HTTP server on 8080 serving its node's name, and a log line every
    200 ms."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": "busybox",
            "command": ["sh", "-c",
                        f"mkdir -p /www; echo page-of-{node} > /www/index.html; "
                        "httpd -p 8080 -h /www; i=0; "
                        "while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]}]},
    }


def reader(name, node):
    """A pod bound to node whose container reads one line from its stdin and answers."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "restartPolicy": "Never", "containers": [{
            "name": "c", "image": "busybox", "stdin": True,
            "command": ["sh", "-c", "read l; echo got $l; echo bye >&2"]}]},
    }


def api_json(nd, method, path, body=None):
    st, out = nd.api(method, path, body)
    return st, (json.loads(out) if out else None)


def running(nd, name):
    st, pod = api_json(nd, "GET", f"/api/v1/namespaces/default/pods/{name}")
    return st == 200 and pod.get("status", {}).get("phase") == "Running"


class Env:
    def __init__(self, c):
        self.c = c
        self.n1, self.n2, self.n3 = c.nodes()
        self.pods = {self.n2: "talk-n2", self.n3: "talk-n3"}

    def kubectl(self, *args, check=True, timeout=60, input=None):
        return self.c.hub_run(KUBECTL_BIN, "--context", self.n1.name, *args, check=check,
                              timeout=timeout, input=input)

    def popen(self, *args):
        env = dict(os.environ, KUBECONFIG=self.c.kubeconfig)
        return subprocess.Popen(["nsenter", f"--net=/run/netns/{self.c.hub}", KUBECTL_BIN,
                                 "--context", self.n1.name, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(scope="module")
def env():
    why = missing_reason("kubectl-1.33", KUBECTL_BIN)
    if why:
        pytest.skip(why)
    # self-healing would delete a killed node's pods after --dead-node-grace-ms: the window
    # this test is about (the pod is still there, its node is not) is made long
    with devcluster(3, extra_args=["--dead-node-grace-ms", "600000"]) as c:
        e = Env(c)
        for nd, name in e.pods.items():
            st, out = api_json(nd, "POST", "/api/v1/namespaces/default/pods", talker(name, nd.name))
            assert st == 201, out
        st, out = api_json(e.n2, "POST", "/api/v1/namespaces/default/pods",
                           reader("reader-n2", e.n2.name))
        assert st == 201, out
        wait_for(lambda: running(e.n2, "reader-n2"), 120, "reader-n2 running on n2")
        wait_for(lambda: running(e.n1, "reader-n2"), 60, "n1 sees reader-n2 running")
        for nd, name in e.pods.items():
            wait_for(lambda: running(nd, name), 120, f"{name} running on {nd.name}")
            # n1 learns the pod and its status through replication
            wait_for(lambda: running(e.n1, name), 60, f"n1 sees {name} running")
            # the server is up once the first line is logged (httpd starts before the loop);
            # test_logs asks for the last two lines, so wait for the second as well
            wait_for(lambda: "line 1\n" in e.kubectl("logs", name, check=False).stdout, 60,
                     f"{name} logs through n1")
        yield e


def test_logs(env):
    for nd, name in env.pods.items():
        r = env.kubectl("logs", name, "--tail", "2")
        lines = r.stdout.splitlines()
        assert len(lines) == 2 and all(re.fullmatch(r"line \d+", ln) for ln in lines), r.stdout
        # what n1 relays is the pod node's own answer
        direct = env.c.hub_run(KUBECTL_BIN, "--context", nd.name, "logs", name, "--tail", "1")
        assert re.fullmatch(r"line \d+\n", direct.stdout)
        # kubelet's errors come back from the pod's node as they are
        r = env.kubectl("logs", name, "-c", "nope", check=False)
        assert r.returncode != 0 and "container nope is not valid" in r.stderr, r.stderr


def test_logs_follow(env):
    for name in env.pods.values():
        p = env.popen("logs", "-f", name, "--tail", "1")
        try:
            seen = [p.stdout.readline().strip() for _ in range(4)]
        finally:
            p.kill()
            p.wait()
        nums = [int(s.split()[1]) for s in seen]
        # a live stream: new lines keep arriving, in order
        assert nums == sorted(nums) and nums[-1] >= nums[0] + 3, seen


def test_exec(env):
    for nd, name in env.pods.items():
        r = env.kubectl("exec", name, "--", "sh", "-c", "cat /www/index.html; echo oops >&2; "
                        "exit 7", check=False)
        assert r.returncode == 7, (r.stdout, r.stderr)
        assert r.stdout == f"page-of-{nd.name}\n"
        assert "oops" in r.stderr
        r = env.kubectl("exec", "-i", name, "--", "sh", "-c", "tr a-z A-Z", input="relayed stdin\n")
        assert r.stdout == "RELAYED STDIN\n"


def test_cp(env, tmp_path):
    data = os.urandom(300_000)
    src = tmp_path / "blob"
    src.write_bytes(data)
    for name in env.pods.values():
        env.kubectl("cp", str(src), f"{name}:/tmp/blob")
        r = env.kubectl("exec", name, "--", "md5sum", "/tmp/blob")
        assert r.stdout.split()[0] == hashlib.md5(data).hexdigest()
        back = tmp_path / f"back-{name}"
        env.kubectl("cp", f"{name}:/tmp/blob", str(back))
        assert back.read_bytes() == data


def test_port_forward(env):
    for nd, name in env.pods.items():
        p = env.popen("port-forward", f"pod/{name}", ":8080")
        try:
            line = p.stdout.readline()
            m = re.search(r"127\.0\.0\.1:(\d+) -> 8080", line)
            assert m, (line, p.stderr.read() if p.poll() is not None else "")
            port = m.group(1)
            for _ in range(3):  # several connections over one forward
                r = env.c.hub_run("curl", "-s", "-m", "20", f"http://127.0.0.1:{port}/",
                                  timeout=30)
                assert r.stdout == f"page-of-{nd.name}\n"
        finally:
            p.kill()
            p.wait()


def test_attach(env):
    for name in env.pods.values():
        p = env.popen("attach", name)
        try:
            seen = [p.stdout.readline().strip() for _ in range(3)]
        finally:
            p.kill()
            p.wait()
        # what the container writes from now on
        assert all(re.fullmatch(r"line \d+", ln) for ln in seen), seen
    # stdin: the container's own, which it reads once, answers and exits; attach ends with it
    r = env.kubectl("attach", "-i", "reader-n2", input="hello\n", timeout=60)
    assert "got hello" in r.stdout, (r.stdout, r.stderr)


def node_credential(key_b64, src, dst):
    """daemon/relay.h's credential, computed independently."""
    key = base64.b64decode(key_b64)
    k = hmac.new(key, b"shoal relay credential v1", hashlib.sha256).digest()
    mac = hmac.new(k, src.encode() + b"\0" + dst.encode(), hashlib.sha256).digest()
    return "shoal-node." + base64.urlsafe_b64encode(mac).decode().rstrip("=") + "." + src


def curl_code(env, url, token=None):
    args = ["curl", "-sk", "-m", "20", "-o", "/dev/null", "-w", "%{http_code}", url]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    return int(env.c.hub_run(*args, timeout=30).stdout)


def test_node_credential_required(env):
    n1, n2 = env.n1, env.n2
    with open(env.c.key_path) as f:
        key = f.read().strip()
    log = f"{n2.api_url}/api/v1/namespaces/default/pods/talk-n2/log?tailLines=1"
    good = node_credential(key, n1.name, n2.name)
    assert curl_code(env, log) == 401
    assert curl_code(env, log, node_credential(base64.b64encode(b"k" * 32).decode(), n1.name,
                                               n2.name)) == 401
    assert curl_code(env, log, node_credential(key, n1.name, env.n3.name)) == 401  # for n3
    assert curl_code(env, log, good) == 200
    # a node credential is for pod I/O only
    assert curl_code(env, f"{n2.api_url}/api/v1/namespaces/default/pods", good) == 403
    assert curl_code(env, f"{n2.api_url}/api/v1/namespaces/default/secrets", good) == 403


def expect_unreachable(env, name, node, *args):
    t0 = time.monotonic()
    r = env.kubectl(*args, check=False, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode != 0, r.stdout
    assert f"node {node.name} is unreachable" in r.stderr, r.stderr
    assert f"pod default/{name}" in r.stderr, r.stderr
    return took


def test_unreachable_api_is_an_error_naming_the_node(env):
    n1, n2, name = env.n1, env.n2, env.pods[env.n2]
    # n2's API black-holed for n1 (gossip still up: n2 is alive): the connect deadline answers
    n2.in_ns("nft", "add", "rule", "inet", "devcluster", "partition_in", "ip", "saddr", n1.ip,
             "tcp", "dport", "6443", "drop")
    try:
        took = expect_unreachable(env, name, n2, "logs", name)
        print(f"black-holed node: kubectl logs failed after {took:.2f}s")
        r = env.kubectl("exec", name, "--", "true", check=False, timeout=60)
        assert r.returncode != 0 and f"node {n2.name} is unreachable" in r.stderr, r.stderr
    finally:
        n2.in_ns("nft", "flush", "chain", "inet", "devcluster", "partition_in")
    assert env.kubectl("logs", name, "--tail", "1").stdout.startswith("line")


def test_killed_node_is_an_error_naming_it(env):
    n3, name = env.n3, env.pods[env.n3]
    follow = env.popen("logs", "-f", name)
    try:
        assert follow.stdout.readline().startswith("line")
        env.c.kill("n3")
        # the relayed stream ends with its node
        follow.wait(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    took = expect_unreachable(env, name, n3, "logs", name)
    print(f"killed node: kubectl logs failed after {took:.2f}s")
    expect_unreachable(env, name, n3, "exec", name, "--", "true")
    # n2's pod still answers through n1
    assert env.kubectl("logs", env.pods[env.n2], "--tail", "1").stdout.startswith("line")


def test_metrics(env):
    m1, m2 = env.n1.metrics(), env.n2.metrics()
    relayed = m1['shoal_relay_requests_total{outcome="relayed"}']
    assert relayed > 0
    assert m1['shoal_relay_requests_total{outcome="unreachable"}'] >= 3  # the tests above
    assert m1["shoal_relay_connect_seconds_count"] == relayed
    assert m2["shoal_relay_served_total"] > 0
    print(f"n1 relayed {relayed:.0f} requests, connect + TLS handshake "
          f"{1000 * m1['shoal_relay_connect_seconds_sum'] / relayed:.1f} ms on average")
