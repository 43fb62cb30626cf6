# SPDX-License-Identifier: Apache-2.0
"""Container runtime: image store, bundles, crun driver and shim, with real crun in namespaces
this test creates. Drives the libraries through build/shoal-rtctl (the same calls the daemon's
pod manager makes)."""
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import hashlib
import io
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
RTCTL = os.path.join(BUILD, "shoal-rtctl")
CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and crun")


@pytest.fixture(scope="session")
def built():
    subprocess.run(["make", "-s", "-C", ROOT, "build/shoal-rtctl", "build/shoal-shim"], check=True)
    return RTCTL


@pytest.fixture(scope="session")
def busybox_layout(built, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shoal-runtime-img") / "busybox")
    subprocess.run([os.path.join(ROOT, "tools", "mkimage-busybox"), out], check=True,
                   stdout=subprocess.DEVNULL)
    return out


class Env:
    """One node's worth of runtime state under /tmp/shoal-runtime-<id>, a netns and a cgroup
    parent named after it; teardown removes all of it and checks nothing leaked."""

    def __init__(self):
        self.id = secrets.token_hex(4)
        self.name = f"shoal-runtime-{self.id}"
        self.dir = f"/tmp/{self.name}"
        self.state_dir = f"{self.dir}/state"
        self.run_dir = f"{self.dir}/run"
        os.makedirs(self.dir)
        self.netns = self.name
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        self.containers = []
        self.ctr_dirs = []
        self.pods = []

    def rt(self, *args, check=True, timeout=60):
        p = subprocess.run([RTCTL, "--state", self.state_dir, "--run", self.run_dir, *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"shoal-rtctl {' '.join(args)}: rc={p.returncode} {p.stderr}")
        return p

    def rtj(self, *args):
        return json.loads(self.rt(*args).stdout)

    def pod(self, name, containers, volumes=None, init=None, spec_extra=None):
        uid = secrets.token_hex(6)
        pod = {"metadata": {"name": name, "namespace": "default", "uid": uid},
               "spec": {"nodeName": "n1", "containers": containers}}
        if volumes:
            pod["spec"]["volumes"] = volumes
        if init:
            pod["spec"]["initContainers"] = init
        pod["spec"].update(spec_extra or {})
        pod_dir = f"{self.dir}/pods/{uid}"
        os.makedirs(pod_dir)
        path = f"{pod_dir}/pod.json"
        with open(path, "w") as f:
            json.dump(pod, f)
        self.rt("podns-create", f"{pod_dir}/ns", name)
        self.pods.append((uid, pod_dir))
        return {"uid": uid, "dir": pod_dir, "file": path, "obj": pod}

    def prepare(self, pod, index=0, image="busybox", objects=None, init=False, check=True):
        cname = (pod["obj"]["spec"]["initContainers" if init else "containers"][index]["name"])
        cid = f"{pod['uid']}-{cname}"
        ctr_dir = f"{self.dir}/containers/{cid}"
        self.ctr_dirs.append(ctr_dir)
        args = ["prepare", "--pod", pod["file"], "--image", image, "--ctr-dir", ctr_dir,
                "--pod-dir", pod["dir"], "--index", str(index),
                "--netns", f"/run/netns/{self.netns}", "--podns", f"{pod['dir']}/ns",
                "--cgroup-parent", self.name, "--pod-ip", "10.244.0.7", "--node", "n1"]
        if init:
            args.append("--init")
        if objects is not None:
            ofile = f"{pod['dir']}/objects.json"
            with open(ofile, "w") as f:
                json.dump(objects, f)
            args += ["--objects", ofile]
        p = self.rt(*args, check=check)
        return cid, ctr_dir, p

    def create(self, cid, ctr_dir, check=True):
        log = f"{self.dir}/logs/{cid}.log"
        p = self.rt("create", cid, ctr_dir, log, check=check)
        if p.returncode == 0:
            self.containers.append(cid)
        return log, p

    def run(self, pod, index=0, **kw):
        cid, ctr_dir, _ = self.prepare(pod, index, **kw)
        log, _ = self.create(cid, ctr_dir)
        self.rt("start", cid)
        return cid, log

    def state(self, cid):
        return self.rtj("state", cid)

    def wait_exit(self, cid, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            st = self.state(cid)
            if st["exited"]:
                return st
            time.sleep(0.05)
        raise AssertionError(f"container {cid} did not exit: {st}")

    def teardown(self):
        errors = []
        for cid in self.containers:
            self.rt("delete", "--force", cid, check=False)
        for d in self.ctr_dirs:
            self.rt("unprepare", "--ctr-dir", d, check=False)
        for uid, pod_dir in self.pods:
            self.rt("volumes-cleanup", "--pod-dir", pod_dir, check=False)
            self.rt("podns-destroy", f"{pod_dir}/ns", check=False)
            self.rt("cgroup-rm", f"/{self.name}/pod{uid}", check=False)
        self.rt("cgroup-rm", f"/{self.name}", check=False)
        subprocess.run(["ip", "netns", "del", self.netns], check=False)
        # nothing may be left behind: mounts, cgroups, crun state
        with open("/proc/self/mountinfo") as f:
            mounts = [l for l in f if self.dir in l or f"/{self.name}" in l]
        if mounts:
            errors.append(f"leftover mounts: {mounts}")
        cg = [p for p in os.listdir("/sys/fs/cgroup")
              if os.path.exists(f"/sys/fs/cgroup/{p}/{self.name}")]
        if cg:
            errors.append(f"leftover cgroups in {cg}")
        crun_root = f"{self.run_dir}/crun"
        if os.path.isdir(crun_root) and [x for x in os.listdir(crun_root) if not x.startswith(".")]:
            errors.append(f"leftover crun state: {os.listdir(crun_root)}")
        leftovers = [d for d in self.ctr_dirs if os.path.exists(d)]
        if leftovers:
            errors.append(f"leftover bundles: {leftovers}")
        shutil.rmtree(self.dir, ignore_errors=True)
        return errors

    def cleanup_container(self, cid, ctr_dir):
        """delete + unprepare, the way the pod manager tears a container down"""
        self.rt("delete", "--force", cid)
        self.rt("unprepare", "--ctr-dir", ctr_dir)
        assert not os.path.exists(ctr_dir)
        assert not os.path.exists(f"{self.run_dir}/containers/{cid}")


@pytest.fixture
def env(built, busybox_layout):
    e = Env()
    try:
        e.rt("image", "import", busybox_layout)
        yield e
    finally:
        errors = e.teardown()
    assert not errors, errors


def read_log(path):
    with open(path) as f:
        lines = f.read().splitlines()
    parsed = []
    for l in lines:
        m = CRI_LINE.match(l)
        assert m, f"not a CRI log line: {l!r}"
        parsed.append((m.group(1), m.group(2), m.group(3)))
    return parsed


def test_image_import_and_list(env, busybox_layout):
    imgs = env.rtj("image", "list")
    assert [i["name"] for i in imgs] == ["docker.io/library/busybox:latest"]
    img = env.rtj("image", "inspect", "busybox")
    assert img["config"]["config"]["Cmd"] == ["sh"]
    layer = img["layers"][0]
    ldir = f"{env.state_dir}/images/layers/{layer[7:]}"
    assert os.path.islink(f"{ldir}/bin/ls") and os.path.isfile(f"{ldir}/bin/busybox")
    # a tar of the same layout imports to the same digest without unpacking again
    tarpath = f"{env.dir}/bb.tar"
    subprocess.run(["tar", "-C", busybox_layout, "-cf", tarpath, "."], check=True)
    inode = os.stat(ldir).st_ino
    names = env.rtj("image", "import", tarpath, "localhost/mybox")
    assert names == ["localhost/mybox:latest"]
    assert env.rtj("image", "inspect", "localhost/mybox")["digest"] == img["digest"]
    assert os.stat(ldir).st_ino == inode


def test_container_runs_logs_and_exit_code(env):
    pod = env.pod("web", [{
        "name": "main", "image": "busybox",
        "command": ["sh", "-c",
                    "echo hello $(POD_NAME) from $MY_NS; echo oops >&2; cat /etc/cfg/greeting;"
                    " echo; echo $SECRET; hostname; printf no-newline; exit 3"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}}],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}],
        volumes=[{"name": "cfg", "configMap": {"name": "cm"}}])
    objects = [{"kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"},
                "data": {"greeting": "hi-from-configmap"}},
               {"kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                "data": {"pw": "aHVudGVyMg=="}}]
    cid, ctr_dir, _ = env.prepare(pod, objects=objects)
    log, _ = env.create(cid, ctr_dir)
    assert env.state(cid)["status"] == "created"
    env.rt("start", cid)
    st = env.wait_exit(cid)
    assert st["exitCode"] == 3 and st["signal"] == 0
    assert st["status"] == "stopped"
    lines = read_log(log)
    assert ("stdout", "F", "hello web from default") in lines
    assert ("stderr", "F", "oops") in lines
    assert ("stdout", "F", "hi-from-configmap") in lines
    assert ("stdout", "F", "hunter2") in lines
    assert ("stdout", "F", "web") in lines  # hostname from the pod's UTS namespace
    assert lines[-1] == ("stdout", "F", "no-newline")
    env.cleanup_container(cid, ctr_dir)


def test_long_running_shares_pod_namespaces_and_survives_caller(env):
    pod = env.pod("svc", [
        {"name": "a", "image": "busybox",
         "command": ["sh", "-c", "trap 'echo bye; exit 0' TERM; i=0; "
                     "while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"],
         "resources": {"limits": {"memory": "48Mi", "cpu": "250m"}}},
        {"name": "b", "image": "busybox", "command": ["sleep", "1000"]}])
    a, log_a = env.run(pod, 0)
    b, _ = env.run(pod, 1)
    sa, sb = env.state(a), env.state(b)
    assert sa["status"] == "running" and sb["status"] == "running"
    assert sa["shimPid"] > 0
    ns = lambda pid, kind: os.readlink(f"/proc/{pid}/ns/{kind}")
    netns_ino = os.stat(f"/run/netns/{env.netns}").st_ino
    assert ns(sa["pid"], "net") == f"net:[{netns_ino}]"
    assert ns(sa["pid"], "net") == ns(sb["pid"], "net")
    assert ns(sa["pid"], "ipc") == ns(sb["pid"], "ipc")
    assert ns(sa["pid"], "uts") == ns(sb["pid"], "uts")
    assert ns(sa["pid"], "pid") != ns(sb["pid"], "pid")
    assert ns(sa["pid"], "ipc") != os.readlink("/proc/self/ns/ipc")
    # the shim, not shoal-rtctl (the "daemon"), keeps logging after the caller exited
    n1 = len(read_log(log_a))
    deadline = time.time() + 10
    while len(read_log(log_a)) <= n1:
        assert time.time() < deadline, "the log stopped growing"
        time.sleep(0.05)
    # cgroup limits applied where this host keeps them
    mode = env.rt("cgroup-mode").stdout.strip()
    cg = f"/{env.name}/pod{pod['uid']}/a"
    if mode in ("hybrid", "v1"):
        with open(f"/sys/fs/cgroup/memory{cg}/memory.limit_in_bytes") as f:
            assert int(f.read()) == 48 * 1024 * 1024
        with open(f"/sys/fs/cgroup/cpu{cg}/cpu.cfs_quota_us") as f:
            assert int(f.read()) == 25000
    else:
        with open(f"/sys/fs/cgroup{cg}/memory.max") as f:
            assert int(f.read()) == 48 * 1024 * 1024
    # exec without and with a tty
    p = env.rt("exec", a, "cat", "/etc/hostname", check=False)
    p = env.rt("exec", a, "sh", "-c", "echo exec-out; exit 5", check=False)
    assert p.returncode == 5 and p.stdout == "exec-out\n"
    p = env.rt("exec", "--tty", a, "tty", check=False)
    assert p.returncode == 0 and "/dev/pts/" in p.stdout
    # graceful stop: SIGTERM runs the trap, exit code recorded
    env.rt("kill", a, "15")
    st = env.wait_exit(a)
    assert st["exitCode"] == 0
    assert ("stdout", "F", "bye") in read_log(log_a)
    env.rt("kill", b, "9")
    st = env.wait_exit(b)
    assert st["exitCode"] == 137 and st["signal"] == 9


def test_security_context(env):
    pod = env.pod("sec", [{
        "name": "c", "image": "busybox",
        "command": ["sh", "-c", "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; id -u; "
                    "id -g; touch /rootfile 2>/dev/null && echo rw-root || echo ro-root; "
                    "touch /tmp/x 2>/dev/null && echo tmp-writable || echo tmp-ro"],
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "runAsUser": 0, "runAsGroup": 0,
                            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "KILL"]}}}])
    cid, log = env.run(pod)
    assert env.wait_exit(cid)["exitCode"] == 0
    out = [l[2] for l in read_log(log)]
    capeff = int([l for l in out if l.startswith("CapEff:")][0].split()[1], 16)
    assert capeff == (1 << 10) | (1 << 5)  # CAP_NET_BIND_SERVICE | CAP_KILL
    assert "Seccomp:\t2" in out  # filter mode: the default profile is loaded
    assert "NoNewPrivs:\t1" in out
    assert "ro-root" in out and "tmp-ro" in out


def test_bad_command_reports_crun_error(env):
    pod = env.pod("bad", [{"name": "c", "image": "busybox", "command": ["/no/such/binary"]}])
    cid, ctr_dir, _ = env.prepare(pod)
    log, p = env.create(cid, ctr_dir, check=False)
    if p.returncode == 0:  # crun reports a missing executable at start on some versions
        p = env.rt("start", cid, check=False)
        st = env.wait_exit(cid) if p.returncode == 0 else None
        assert p.returncode != 0 or st["exitCode"] != 0
    else:
        assert "/no/such/binary" in p.stderr and "RunContainerError" in p.stderr
        assert not os.path.exists(f"{env.run_dir}/containers/{cid}")
    env.rt("delete", "--force", cid, check=False)
    env.rt("unprepare", "--ctr-dir", ctr_dir)


def test_bad_pod_input(env):
    pod = env.pod("noimgcmd", [{"name": "c", "image": "busybox", "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}}]}])
    _, _, p = env.prepare(pod, check=False)
    assert p.returncode != 0
    assert 'configmap "missing" not found' in p.stderr and "CreateContainerConfigError" in p.stderr
    _, _, p = env.prepare(pod, image="nosuchimage:1", check=False)
    assert p.returncode != 0 and "not present" in p.stderr


def test_tty_container_logs(env):
    pod = env.pod("tty", [{"name": "c", "image": "busybox", "tty": True,
                           "command": ["sh", "-c", "tty; echo on-a-terminal"]}])
    cid, log = env.run(pod)
    assert env.wait_exit(cid)["exitCode"] == 0
    out = [l[2] for l in read_log(log)]
    assert "on-a-terminal" in out and any(l.startswith("/dev/pts/") for l in out)


def test_volumes_emptydir_shared_and_memory(env):
    pod = env.pod("vols", [
        {"name": "w", "image": "busybox", "command": ["sh", "-c", "echo shared > /data/f; "
                                                      "grep ' /mem ' /proc/mounts | cut -d' ' -f3"],
         "volumeMounts": [{"name": "data", "mountPath": "/data"},
                          {"name": "mem", "mountPath": "/mem"}]},
        {"name": "r", "image": "busybox", "command": ["cat", "/d2/f"],
         "volumeMounts": [{"name": "data", "mountPath": "/d2", "readOnly": True}]}],
        volumes=[{"name": "data", "emptyDir": {}},
                 {"name": "mem", "emptyDir": {"medium": "Memory"}}])
    w, log_w = env.run(pod, 0)
    assert env.wait_exit(w)["exitCode"] == 0
    assert ("stdout", "F", "tmpfs") in read_log(log_w)
    r, log_r = env.run(pod, 1)
    assert env.wait_exit(r)["exitCode"] == 0
    assert ("stdout", "F", "shared") in read_log(log_r)


def _oci_layer(files):
    """tar bytes of {path: bytes|None(dir)|('wh',)}"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _docker_save(path, base_layout, extra_layers, tag):
    """docker-save archive: busybox layer (decompressed) + extra layers"""
    with open(f"{base_layout}/index.json") as f:
        mdig = json.load(f)["manifests"][0]["digest"][7:]
    with open(f"{base_layout}/blobs/sha256/{mdig}") as f:
        man = json.load(f)
    import gzip
    with open(f"{base_layout}/blobs/sha256/{man['layers'][0]['digest'][7:]}", "rb") as f:
        base = gzip.decompress(f.read())
    layers = [base] + extra_layers
    with open(f"{base_layout}/blobs/sha256/{man['config']['digest'][7:]}") as f:
        cfg = json.load(f)
    cfg["rootfs"]["diff_ids"] = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
    cfg_b = json.dumps(cfg).encode()
    cfg_name = hashlib.sha256(cfg_b).hexdigest() + ".json"
    entries = {cfg_name: cfg_b}
    lnames = []
    for i, l in enumerate(layers):
        n = f"l{i}/layer.tar"
        entries[n] = l
        lnames.append(n)
    entries["manifest.json"] = json.dumps([{"Config": cfg_name, "RepoTags": [tag],
                                            "Layers": lnames}]).encode()
    with tarfile.open(path, "w") as t:
        for n, d in entries.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))


def test_docker_save_whiteouts_and_refcounted_remove(env, busybox_layout):
    l1 = _oci_layer({"etc/motd": b"motd\n", "opq/": None, "opq/old": b"old\n"})
    l2 = _oci_layer({"etc/.wh.motd": b"", "opq/": None, "opq/.wh..wh..opq": b"",
                     "opq/new": b"new\n"})
    path = f"{env.dir}/save.tar"
    _docker_save(path, busybox_layout, [l1, l2], "example.com/wh:1")
    assert env.rtj("image", "import", path) == ["example.com/wh:1"]
    img = env.rtj("image", "inspect", "example.com/wh:1")
    assert len(img["layers"]) == 3
    pod = env.pod("wh", [{"name": "c", "image": "example.com/wh:1",
                          "command": ["sh", "-c", "ls /etc/motd 2>&1 || true; ls /opq"]}])
    cid, log = env.run(pod, image="example.com/wh:1")
    assert env.wait_exit(cid)["exitCode"] == 0
    out = [l[2] for l in read_log(log)]
    assert any("No such file" in l for l in out), out
    assert "new" in out and "old" not in out
    env.cleanup_container(cid, f"{env.dir}/containers/{cid}")
    # busybox's layer is shared: removing the docker image keeps it, removing both drops it
    base = img["layers"][0]
    layers_dir = f"{env.state_dir}/images/layers"
    env.rt("image", "rm", "example.com/wh:1")
    if base == env.rtj("image", "inspect", "busybox")["layers"][0]:
        assert os.path.isdir(f"{layers_dir}/{base[7:]}")
    assert not os.path.exists(f"{layers_dir}/{img['layers'][2][7:]}")
    env.rt("image", "rm", "busybox")
    assert os.listdir(layers_dir) == []
    assert env.rtj("image", "list") == []


def test_corrupt_blob_is_rejected(env, busybox_layout):
    bad = f"{env.dir}/bad"
    shutil.copytree(busybox_layout, bad)
    with open(f"{bad}/index.json") as f:
        mdig = json.load(f)["manifests"][0]["digest"][7:]
    with open(f"{bad}/blobs/sha256/{mdig}") as f:
        man = json.load(f)
    layer = f"{bad}/blobs/sha256/{man['layers'][0]['digest'][7:]}"
    with open(layer, "r+b") as f:
        f.seek(100)
        f.write(b"XXXX")
    env.rt("image", "rm", "busybox")  # force a fresh unpack
    p = env.rt("image", "import", bad, "corrupt", check=False)
    assert p.returncode != 0 and "digest mismatch" in p.stderr
    assert env.rtj("image", "list") == []
