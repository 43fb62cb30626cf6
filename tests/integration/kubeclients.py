# SPDX-License-Identifier: Apache-2.0
"""Run unmodified real Kubernetes clients (kubectl 1.33/1.20, @kubernetes/client-node) against a
real shoald inside its network namespace. The clients come from tools/install-clients
(build/clients/); a client that is missing makes its tests skip with the installer's reason.

Nothing from the invoking user's environment reaches a client: HOME, KUBECONFIG and kubectl's
cache dir all point into a per-test temporary directory.
"""
import os
import queue
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from shoaltest import BUILD, Netns, Shoald

CLIENTS = os.environ.get("SHOAL_CLIENTS", os.path.join(BUILD, "clients"))
KUBECTL = {"1.33": os.path.join(CLIENTS, "kubectl-1.33"),
           "1.20": os.path.join(CLIENTS, "kubectl-1.20")}
CLIENT_NODE_MODULES = os.path.join(CLIENTS, "node", "node_modules")


def missing_reason(name, path):
    """Why client `name` (expected at `path`) is unavailable, or None when it is there."""
    if os.path.exists(path):
        return None
    why = ""
    try:
        with open(os.path.join(CLIENTS, name + ".missing")) as f:
            why = ": " + f.read().strip()
    except OSError:
        why = " (run tools/install-clients or `make clients`)"
    return f"{name} not installed at {path}{why}"


def unique(prefix):
    return f"{prefix}-{secrets.token_hex(3)}"


def start_daemon():
    """A real shoald (debug logs) in a netns named with this suite's prefix."""
    ns = Netns("shoal-itest-" + secrets.token_hex(4))
    d = Shoald(node="shoal-itest-" + secrets.token_hex(3), netns=ns,
               extra_args=["--log-level", "debug"])
    try:
        d.start()
    except BaseException:
        d.close()
        ns.close()
        raise
    return d, ns


def stop_daemon(d, ns):
    try:
        d.close()
    finally:
        ns.close()


# "Response" verb="PATCH" url="http://..." status="200 OK"   (kubectl >= 1.27, -v=6)
_REQ_NEW = re.compile(r'verb="([A-Z]+)" url="([^"]+)" status="(\d+)')
# PATCH http://127.0.0.1:6443/... 200 OK in 3 milliseconds    (kubectl 1.20, -v=6)
_REQ_OLD = re.compile(r'round_trippers\.go:\d+\] ([A-Z]+) (https?://\S+) (\d+)')


def trim(log, limit=6000):
    """A client's stderr for a failure message, without Go goroutine dumps (klog -v fatal)."""
    cut = log.find("\ngoroutine 1 [")
    if cut >= 0:
        log = log[:cut] + "\n[goroutine dump trimmed]"
    return log[-limit:]


def requests_in(log):
    """(verb, url, status) of every HTTP request a kubectl -v=6 run logged."""
    out = [(m.group(1), m.group(2), int(m.group(3))) for m in _REQ_NEW.finditer(log)]
    out += [(m.group(1), m.group(2), int(m.group(3))) for m in _REQ_OLD.finditer(log)]
    return out


class Kubectl:
    """One unmodified kubectl binary talking plain HTTP to a daemon inside its netns."""

    def __init__(self, version, daemon, tmp):
        self.version = version
        self.binary = KUBECTL[version]
        self.daemon = daemon
        self.tmp = tmp
        self.kubeconfig = os.path.join(tmp, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: shoal
  cluster:
    server: {daemon.server}
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
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": tmp,
                    "KUBECONFIG": self.kubeconfig, "LANG": "C.UTF-8"}

    def argv(self, args):
        return [self.binary, "--cache-dir", os.path.join(self.tmp, "cache")] + list(args)

    def run(self, *args, check=True, input=None, timeout=90):
        r = self.daemon.netns.run(self.argv(args), check=False, input=input, timeout=timeout,
                                  env=self.env, cwd=self.tmp)
        if check and r.returncode != 0:
            pytest.fail(f"kubectl {self.version} {' '.join(args)} exited {r.returncode}\n"
                        f"stdout:\n{r.stdout}\nstderr:\n{trim(r.stderr)}\n"
                        f"shoald log tail:\n{self.daemon.logs()[-3000:]}")
        return r

    def fail(self, *args, input=None, timeout=90):
        """Run a command that must fail; returns the CompletedProcess."""
        r = self.run(*args, check=False, input=input, timeout=timeout)
        assert r.returncode != 0, \
            f"kubectl {' '.join(args)} succeeded but must fail:\n{r.stdout}\n{r.stderr}"
        return r

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def watch(self, *args):
        return LineReader(self.daemon.netns.popen(
            self.argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env, cwd=self.tmp))


class LineReader:
    """Collect a long-running client's stdout lines on a thread; wait for a matching line."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.q = queue.Queue()
        self.err = []
        self.err_open = True
        threading.Thread(target=self._pump, args=(proc.stdout, self.q), daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def _pump_err(self):
        for line in self.proc.stderr:
            self.err.append(line)
        self.err_open = False

    def wait_for(self, pattern, timeout=20):
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        for line in self.lines:
            if rx.search(line):
                return line
        while True:
            left = deadline - time.time()
            if left <= 0:
                break
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if rx.search(line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s; got:\n"
                             + "\n".join(self.lines) + "\nstderr:\n" + "".join(self.err)[-4000:])

    def wait_for_err(self, pattern, timeout=20):
        """Wait for a stderr line matching pattern (e.g. a request kubectl -v=6 logged)."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(rx.search(line) for line in list(self.err)):
                return
            if self.proc.poll() is not None and not self.err_open:
                break
            time.sleep(0.05)
        raise AssertionError(f"no stderr line matching {pattern!r} within {timeout}s; got:\n"
                             + "".join(self.err)[-4000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_tmp():
    return tempfile.mkdtemp(prefix="shoal-itest-")


def rm_tmp(path):
    shutil.rmtree(path, ignore_errors=True)


def table(text):
    """Parse kubectl's column output (tabwriter, >= 3 spaces between columns) into dicts."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0]
    cells = [(m.start(), m.group(0)) for m in re.finditer(r"\S+(?: \S+)*", header)]
    rows = []
    for ln in lines[1:]:
        row = {}
        for i, (start, name) in enumerate(cells):
            end = cells[i + 1][0] if i + 1 < len(cells) else None
            row[name] = ln[start:end].strip()
        rows.append(row)
    return rows


def header(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return re.findall(r"\S+(?: \S+)*", lines[0]) if lines else []
