# SPDX-License-Identifier: Apache-2.0
"""Helpers for integration tests: network namespaces, a real shoald, API calls.

Every daemon runs in a network namespace the test created (loopback only), with its state under a
temporary directory and a node name unique to the test run. Tests reach the API through the
daemon's unix socket (from this process) or by running clients inside the namespace
(`ns.run([...])`), so no test traffic touches the machine's own network.
"""
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SHOAL_BUILD", os.path.join(ROOT, "build"))
SHOALD = os.path.join(BUILD, "shoald")
SHOALCTL = os.path.join(BUILD, "shoalctl")


def sh(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


class Netns:
    """A network namespace with loopback up; removed on close()."""

    def __init__(self, name=None):
        self.name = name or "shoal-t-" + secrets.token_hex(4)
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")

    # nsenter enters only the network namespace: unlike `ip netns exec` it does not remount
    # /sys, so the daemon still sees the cgroup2 and bpffs mounts it attaches to.
    def prefix(self):
        return ["nsenter", f"--net=/run/netns/{self.name}"]

    def run(self, cmd, check=True, timeout=60, **kw):
        return sh(*self.prefix(), *cmd, check=check, timeout=timeout, **kw)

    def popen(self, cmd, **kw):
        return subprocess.Popen(self.prefix() + list(cmd), **kw)

    def close(self):
        sh("ip", "netns", "del", self.name, check=False)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Shoald:
    """A real shoald in its own netns. API on 127.0.0.1:6443 inside the netns + a unix socket."""

    def __init__(self, node=None, netns=None, extra_args=(), port=6443, pods=False):
        self.node = node or "t" + secrets.token_hex(3)
        self.own_netns = netns is None
        self.netns = netns or Netns()
        self.tmp = tempfile.mkdtemp(prefix="shoal-t-")
        self.state_dir = os.path.join(self.tmp, "state")
        self.run_dir = os.path.join(self.tmp, "run")
        self.socket = os.path.join(self.run_dir, "api.sock")
        self.port = port
        self.server = f"http://127.0.0.1:{port}"
        # API/controller tests run without the pod manager (nothing acts on their pods);
        # pod tests (podtest.PodNode) turn it on
        self.extra_args = ([] if pods else ["--run-pods", "0"]) + list(extra_args)
        self.log_path = os.path.join(self.tmp, "shoald.log")
        self.proc = None

    def args(self):
        return [SHOALD, "--node-name", self.node, "--state-dir", self.state_dir,
                "--run-dir", self.run_dir, "--api-listen", f"127.0.0.1:{self.port}",
                "--api-socket", self.socket] + self.extra_args

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = self.netns.popen(self.args(), stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shoald exited {self.proc.returncode}:\n{self.logs()}")
            try:
                if self.get("/readyz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"shoald not ready after {timeout}s:\n{self.logs()}")

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-8000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        # nsenter execs the daemon, so proc.pid is shoald itself
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def teardown(self):
        """Remove what the node keeps on purpose across restarts (pins, nft table, cgroup)."""
        r = self.netns.run(self.args() + ["--teardown"], check=False)
        assert r.returncode == 0, f"shoald --teardown failed: {r.stderr}"

    def close(self):
        self.stop()
        try:
            self.teardown()
        finally:
            if self.own_netns:
                self.netns.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- API over the unix socket ---
    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = UnixHTTPConnection(self.socket, timeout=timeout)
        hdrs = {"Accept": "application/json"}
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return Response(r.status, dict(r.getheaders()), data)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body=body, **kw)

    def patch(self, path, body, ctype="application/merge-patch+json", **kw):
        return self.request("PATCH", path, body=json.dumps(body),
                            headers={"Content-Type": ctype}, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body=body, **kw)

    def ctl(self, *args, check=True, input=None, timeout=60):
        """Run shoalctl against this daemon through its unix socket."""
        return sh(SHOALCTL, "--server", "unix:" + self.socket, *args, check=check,
                  input=input, timeout=timeout)
