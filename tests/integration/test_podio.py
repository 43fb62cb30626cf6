# SPDX-License-Identifier: Apache-2.0
"""Pod I/O through the API on real pods: container logs (plain, tail, timestamps, since, limit,
follow until the container ends, previous instance), exec over WebSocket (shoalctl and kubectl
1.33; stdout/stderr, stdin, tty, exit codes) and the node's image store API."""
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time

import pytest

from kubeclients import KUBECTL, missing_reason
from podtest import PodNode, ctr, ctr_status, pod_spec
from shoaltest import SHOALCTL, sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")

LOGGER = ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; sleep 0.3; echo oops >&2; "
          "exec sleep 1000"]
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]


@pytest.fixture(scope="module")
def node():
    # a small body limit: image uploads must still pass, other routes must not
    n = PodNode(node="shoal-podio-" + os.urandom(3).hex(),
                extra_args=["--max-body-bytes", "200000"])
    try:
        n.start()
        yield n
    finally:
        n.close()


def logs_api(node, pod, **q):
    qs = "&".join(f"{k}={v}" for k, v in q.items())
    return node.get(f"/api/v1/namespaces/default/pods/{pod}/log" + (f"?{qs}" if qs else ""))


def wait_log(node, pod, text, timeout=20, **q):
    deadline = time.time() + timeout
    body = ""
    while time.time() < deadline:
        r = logs_api(node, pod, **q)
        body = r.body.decode() if r.status == 200 else ""
        if text in body:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the log of {pod}: {body!r}\n{node.logs()}")


def status_message(r):
    return json.loads(r.body)["message"]


def test_logs_plain_tail_timestamps_limit(node):
    node.create_pod(pod_spec("logs", [ctr("app", LOGGER), ctr("side", SLEEPER)]))
    node.wait_running("logs")
    body = wait_log(node, "logs", "oops", container="app")
    assert body == "line 1\nline 2\nline 3\nline 4\nline 5\noops\n"
    r = logs_api(node, "logs", container="app")
    assert r.headers["Content-Type"].startswith("text/plain")
    # the same through shoalctl, with kubectl's flags
    assert node.ctl("logs", "logs", "-c", "app").stdout == body
    assert node.ctl("logs", "pod/logs", "-c", "app", "--tail", "2").stdout == "line 5\noops\n"
    assert node.ctl("logs", "logs", "-c", "app", "--tail", "0").stdout == ""
    ts = node.ctl("logs", "logs", "-c", "app", "--timestamps", "--tail", "1").stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z oops\n", ts), ts
    assert node.ctl("logs", "logs", "-c", "app", "--limit-bytes", "9").stdout == "line 1\nli"
    # everything was written more than a second ago
    time.sleep(1.5)
    assert logs_api(node, "logs", container="app", sinceSeconds=1).body == b""
    assert logs_api(node, "logs", container="app", sinceSeconds=60).body.decode() == body

    # errors say what kubelet says
    r = logs_api(node, "logs")
    assert r.status == 400
    assert status_message(r) == ("a container name must be specified for pod logs, choose one "
                                 "of: [app side]")
    r = logs_api(node, "logs", container="nope")
    assert r.status == 400 and "container nope is not valid for pod logs" in status_message(r)
    r = logs_api(node, "logs", container="app", previous="true")
    assert r.status == 400
    assert status_message(r) == 'previous terminated container "app" in pod "logs" not found'
    r = logs_api(node, "logs", container="app", tailLines="-3")
    assert r.status == 422
    assert logs_api(node, "ghost").status == 404
    p = node.ctl("logs", "ghost", check=False)
    assert p.returncode == 1 and 'pods "ghost" not found' in p.stderr
    node.delete_pod("logs", grace=0)


def test_logs_follow_ends_with_the_container(node):
    cmd = ["sh", "-c", "sleep 1; for i in $(seq 1 8); do echo tick $i; sleep 0.25; done"]
    node.create_pod(pod_spec("follow", [ctr("t", cmd)], restartPolicy="Never"))
    node.wait_running("follow")
    t0 = time.time()
    p = node.ctl("logs", "-f", "follow", timeout=30)
    took = time.time() - t0
    assert p.stdout == "".join(f"tick {i}\n" for i in range(1, 9)), p.stdout
    # it streamed while the container ran and stopped by itself once it had exited
    assert 1.5 < took < 10, took
    # output arrives as it is written, not at the end
    node.create_pod(pod_spec("follow2", [ctr("t", cmd)], restartPolicy="Never"))
    node.wait_running("follow2")
    proc = subprocess.Popen([SHOALCTL, "--server", "unix:" + node.socket, "logs", "-f",
                             "follow2"], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        t_first = time.time()
        rest = proc.stdout.read()
        t_end = time.time()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert first == "tick 1\n" and rest.endswith("tick 8\n")
    assert t_end - t_first > 1.0, "the first line came only when the stream ended"
    node.delete_pod("follow", grace=0)
    node.delete_pod("follow2", grace=0)


def test_logs_previous_instance(node):
    # each instance counts itself on an emptyDir that survives restarts
    cmd = ["sh", "-c", "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; "
           "echo instance $n; if [ $n -lt 2 ]; then exit 1; fi; exec sleep 1000"]
    node.create_pod(pod_spec("crashy", [ctr("c", cmd, volumeMounts=[
        {"name": "data", "mountPath": "/data"}])], volumes=[{"name": "data", "emptyDir": {}}]))

    def second_running(p):
        cs = ctr_status(p, "c")
        return cs and cs["restartCount"] >= 1 and "running" in cs["state"]
    node.wait_pod("crashy", second_running, timeout=40, what="second instance running")
    assert wait_log(node, "crashy", "instance 2") == "instance 2\n"
    assert node.ctl("logs", "-p", "crashy").stdout == "instance 1\n"
    assert logs_api(node, "crashy", previous="true").body == b"instance 1\n"
    node.delete_pod("crashy", grace=0)


def test_exec_streams_exit_codes_stdin_and_tty(node):
    node.create_pod(pod_spec("box", [ctr("main", SLEEPER), ctr("other", SLEEPER)]))
    node.wait_running("box")
    p = node.ctl("exec", "box", "-c", "main", "--", "sh", "-c",
                 "echo to-out; echo to-err >&2; exit 3", check=False)
    assert p.returncode == 3, p
    assert p.stdout == "to-out\n"
    assert "to-err\n" in p.stderr and "command terminated with exit code 3" in p.stderr
    # the other container is a different mount namespace: its hostname is the pod's (shared)
    p = node.ctl("exec", "box", "-c", "other", "--", "hostname")
    assert p.stdout.strip() == "box"
    # stdin, half-closed at EOF so cat ends
    data = "".join(f"row {i}\n" for i in range(2000))
    p = node.ctl("exec", "-i", "box", "-c", "main", "--", "sh", "-c", "cat; echo done",
                 input=data)
    assert p.stdout == data + "done\n"
    # a terminal: the command sees a tty, stderr is merged, the exit code still comes back
    p = node.ctl("exec", "-t", "box", "-c", "main", "--", "sh", "-c",
                 "tty; echo e >&2; exit 5", check=False)
    assert p.returncode == 5, p
    lines = p.stdout.replace("\r", "").split("\n")
    assert lines[0].startswith("/dev/pts/") and lines[1] == "e", p.stdout
    p = node.ctl("exec", "-i", "-t", "box", "-c", "main", "--", "sh", "-c",
                 "read x; echo got $x", input="hello\n")
    assert "got hello" in p.stdout
    # errors: a command that does not exist, a container that does not, no command
    p = node.ctl("exec", "box", "-c", "main", "--", "/no/such", check=False)
    assert p.returncode != 0 and "/no/such" in p.stderr
    p = node.ctl("exec", "box", "-c", "ghost", "--", "true", check=False)
    assert p.returncode == 1 and "container ghost is not valid" in p.stderr
    p = node.ctl("exec", "box", check=False)
    assert p.returncode == 1
    # older clients (SPDY) get a message, not a hang
    r = node.post("/api/v1/namespaces/default/pods/box/exec?command=true&stdout=true",
                  None, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
    assert r.status == 400 and "WebSocket" in status_message(r)
    node.delete_pod("box", grace=0)


def kubectl(node, tmp, *args, input=None):
    env = {"HOME": tmp, "PATH": "/usr/bin:/bin", "KUBECACHEDIR": os.path.join(tmp, "cache")}
    return subprocess.run(["ip", "netns", "exec", node.netns.name, KUBECTL["1.33"], "--server",
                           node.server, *args], capture_output=True, text=True, env=env,
                          input=input, timeout=60)


def test_kubectl_logs_and_exec(node, tmp_path):
    why = missing_reason("kubectl-1.33", KUBECTL["1.33"])
    if why:
        pytest.skip(why)
    node.create_pod(pod_spec("kc", [ctr("app", LOGGER)]))
    node.wait_running("kc")
    wait_log(node, "kc", "oops")
    tmp = str(tmp_path)
    p = kubectl(node, tmp, "logs", "kc", "--tail=2")
    assert p.returncode == 0 and p.stdout == "line 5\noops\n", p
    p = kubectl(node, tmp, "exec", "kc", "--", "sh", "-c", "echo from-kubectl; exit 4")
    assert p.returncode == 4 and p.stdout == "from-kubectl\n", p
    p = kubectl(node, tmp, "exec", "-i", "kc", "--", "wc", "-l", input="a\nb\nc\n")
    assert p.returncode == 0 and p.stdout.strip() == "3", p
    node.delete_pod("kc", grace=0)


def test_image_api(node, tmp_path):
    # the preloaded busybox is listed
    p = node.ctl("image", "ls")
    assert "docker.io/library/busybox:latest" in p.stdout
    imgs = node.get("/apis/shoal.io/v1/images").json()
    assert imgs["kind"] == "ImageList"
    bb = [i for i in imgs["items"] if i["name"] == "docker.io/library/busybox:latest"][0]
    assert bb["digest"].startswith("sha256:") and bb["layers"]
    # import an OCI layout tar under another name (the upload is bigger than the node's
    # --max-body-bytes, which only other routes keep)
    tar = tmp_path / "bb.tar"
    with tarfile.open(tar, "w") as t:
        t.add(os.path.join(os.path.dirname(SHOALCTL), "images", "busybox"), arcname=".")
    assert tar.stat().st_size > 200000
    p = node.ctl("image", "import", str(tar), "--name", "shoal-podio/copy:v1")
    assert p.stdout == "imported docker.io/shoal-podio/copy:v1\n", p
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
           "data": {"x": "y" * 300000}}
    assert node.post("/api/v1/namespaces/default/configmaps", big).status == 413
    # a directory (OCI layout) is packed by shoalctl
    p = node.ctl("image", "import", os.path.join(os.path.dirname(SHOALCTL), "images", "busybox"),
                 "--name", "shoal-podio/dir:v2")
    assert "imported docker.io/shoal-podio/dir:v2" in p.stdout
    r = node.get("/apis/shoal.io/v1/images/docker.io/shoal-podio/copy:v1")
    assert r.status == 200 and r.json()["config"]["config"]
    # a pod uses the copy: it cannot be removed; the other one can
    node.create_pod(pod_spec("user", [ctr("c", SLEEPER, image="shoal-podio/copy:v1")]))
    node.wait_running("user")
    p = node.ctl("image", "rm", "shoal-podio/copy:v1", check=False)
    assert p.returncode == 1 and "in use by pod default/user" in p.stderr
    assert node.ctl("image", "rm", "shoal-podio/dir:v2").stdout == \
        "deleted docker.io/shoal-podio/dir:v2\n"
    assert node.get("/apis/shoal.io/v1/images/shoal-podio/dir:v2").status == 404
    node.delete_pod("user", grace=0)
    node.ctl("image", "rm", "shoal-podio/copy:v1")
    assert "copy" not in node.ctl("image", "ls").stdout
    # bad uploads and pulls are reported, the daemon keeps serving
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not an archive" * 100)
    p = node.ctl("image", "import", str(junk), check=False)
    assert p.returncode == 1 and "Error from server" in p.stderr
    p = node.ctl("image", "pull", "127.0.0.1:1/nothing:here", "--plain-http", check=False)
    assert p.returncode == 1 and "127.0.0.1:1" in p.stderr
    assert node.get("/readyz").status == 200
