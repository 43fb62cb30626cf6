# SPDX-License-Identifier: Apache-2.0
"""shoalctl against a real shoald: apply (create, unchanged, 3-way patch), create, get (tables,
outputs, selectors, -A, -w), describe with events, delete, version, kubeconfig and errors."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import yaml

from shoaltest import SHOALCTL


def ctl_env(extra=None):
    env = dict(os.environ)
    env.pop("SHOAL_SERVER", None)
    # never pick up a kubeconfig of the machine running the tests
    env["KUBECONFIG"] = "/nonexistent/shoal-ctl-kubeconfig"
    env.update(extra or {})
    return env


def ctl(d, *args, input=None, env=None, server=True, timeout=60):
    cmd = [SHOALCTL] + (["--server", "unix:" + d.socket] if server else []) + list(args)
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                          env=env or ctl_env())


def ok(r):
    assert r.returncode == 0, f"rc={r.returncode}\nstdout:{r.stdout}\nstderr:{r.stderr}"
    return r.stdout


@pytest.fixture
def tmpdir_():
    with tempfile.TemporaryDirectory(prefix="shoal-ctl-t-") as t:
        yield t


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels: {app: web, tier: frontend}
data:
  mode: prod
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: [sleep, "3600"]
"""


def test_version(shoald_shared):
    out = ok(ctl(shoald_shared, "version"))
    assert "Client Version: v" in out
    assert "Server Version: v" in out
    j = json.loads(ok(ctl(shoald_shared, "version", "-o", "json")))
    assert j["clientVersion"]["gitVersion"].startswith("v")
    assert j["serverVersion"]["gitVersion"]
    assert "Client Version:" in ok(ctl(shoald_shared, "version", "--client",
                                       "--server", "unix:/nonexistent"))


def test_apply_create_unchanged_configured(shoald, tmpdir_):
    d = shoald
    f = write(os.path.join(tmpdir_, "app.yaml"), MANIFEST)
    out = ok(ctl(d, "apply", "-f", f))
    assert out.splitlines() == ["configmap/web-config created", "deployment.apps/web created"]
    cm = d.get("/api/v1/namespaces/default/configmaps/web-config").json()
    last = json.loads(cm["metadata"]["annotations"]
                      ["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["data"] == {"mode": "prod", "color": "blue"}

    # applying the same files again changes nothing, even with server defaults in the spec
    rv = cm["metadata"]["resourceVersion"]
    out = ok(ctl(d, "apply", "-f", f))
    assert out.splitlines() == ["configmap/web-config unchanged",
                                "deployment.apps/web unchanged"]
    cm = d.get("/api/v1/namespaces/default/configmaps/web-config").json()
    assert cm["metadata"]["resourceVersion"] == rv

    # someone else adds a label; the manifest drops one label and one key, changes another
    d.patch("/api/v1/namespaces/default/configmaps/web-config",
            {"metadata": {"labels": {"owner": "ops"}}})
    write(f, MANIFEST.replace(", tier: frontend", "").replace("  color: blue\n", "")
          .replace("mode: prod", "mode: canary").replace("replicas: 1", "replicas: 2"))
    out = ok(ctl(d, "apply", "-f", f))
    assert out.splitlines() == ["configmap/web-config configured",
                                "deployment.apps/web configured"]
    cm = d.get("/api/v1/namespaces/default/configmaps/web-config").json()
    assert cm["data"] == {"mode": "canary"}
    assert cm["metadata"]["labels"] == {"app": "web", "owner": "ops"}
    dep = d.get("/apis/apps/v1/namespaces/default/deployments/web").json()
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["command"] == ["sleep", "3600"]


def test_apply_dir_stdin_json_list(shoald, tmpdir_):
    d = shoald
    sub = os.path.join(tmpdir_, "m")
    os.mkdir(sub)
    write(os.path.join(sub, "a.yaml"),
          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n---\n")
    write(os.path.join(sub, "b.json"), json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b1"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b2"},
             "data": {"x": "eQ=="}}]}))
    write(os.path.join(sub, "ignored.txt"), "not a manifest")
    out = ok(ctl(d, "apply", "-f", sub))
    assert out.splitlines() == ["configmap/a created", "configmap/b1 created",
                                "secret/b2 created"]
    out = ok(ctl(d, "apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\n"
                 "metadata: {name: c}\n"))
    assert out == "configmap/c created\n"
    assert d.get("/api/v1/namespaces/default/configmaps/c").status == 200

    # the namespace of the object and -n must agree
    r = ctl(d, "apply", "-n", "kube-system", "-f", "-",
            input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\n")
    assert r.returncode == 1
    assert "does not match the namespace" in r.stderr


def test_create_and_server_errors(shoald_shared, tmpdir_):
    d = shoald_shared
    f = write(os.path.join(tmpdir_, "cm.yaml"),
              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: created-once}\n")
    assert ok(ctl(d, "create", "-f", f)) == "configmap/created-once created\n"
    r = ctl(d, "create", "-f", f)
    assert r.returncode == 1
    assert r.stderr.strip() == ('Error from server (AlreadyExists): '
                                'configmaps "created-once" already exists')
    r = ctl(d, "get", "pods", "does-not-exist")
    assert r.returncode == 1
    assert r.stderr.strip() == 'Error from server (NotFound): pods "does-not-exist" not found'
    r = ctl(d, "create", "-f", "-",
            input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n")
    assert r.returncode == 1
    assert r.stderr.startswith("Error from server (Invalid): ")
    r = ctl(d, "get", "widgets")
    assert r.returncode == 1
    assert r.stderr.strip() == 'error: the server doesn\'t have a resource type "widgets"'


def test_connection_errors(tmpdir_):
    r = subprocess.run([SHOALCTL, "--server", "unix:" + os.path.join(tmpdir_, "none.sock"),
                        "get", "pods"], capture_output=True, text=True, env=ctl_env())
    assert r.returncode == 1
    assert "none.sock" in r.stderr and "is shoald running" in r.stderr


def test_get_outputs_and_selectors(shoald_shared):
    d = shoald_shared
    ok(ctl(d, "create", "-f", "-", input=(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ctl-other}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sel-a, labels: {app: a}}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sel-b, labels: {app: b}}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: sel-c, namespace: ctl-other, labels: {app: a}}\n")))

    out = ok(ctl(d, "get", "configmaps", "-l", "app=a"))
    lines = out.splitlines()
    assert lines[0].split()[0] == "NAME"
    assert [l.split()[0] for l in lines[1:]] == ["sel-a"]

    out = ok(ctl(d, "get", "cm", "-A", "-l", "app in (a,b)"))
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    rows = {tuple(l.split()[:2]) for l in lines[1:]}
    assert rows == {("default", "sel-a"), ("default", "sel-b"), ("ctl-other", "sel-c")}

    # columns line up: every cell of a column starts where its header starts
    starts = [lines[0].index(h) for h in lines[0].split()]
    for l in lines[1:]:
        for s in starts:
            assert l[s] != " " and (s == 0 or l[s - 1] == " "), (l, s)

    assert ok(ctl(d, "get", "configmap", "sel-a", "sel-b", "-o", "name")).splitlines() == [
        "configmap/sel-a", "configmap/sel-b"]
    assert ok(ctl(d, "get", "cm/sel-a", "ns/ctl-other", "-o", "name")).splitlines() == [
        "configmap/sel-a", "namespace/ctl-other"]
    assert ok(ctl(d, "get", "cm", "--field-selector", "metadata.name=sel-b",
                  "-o", "name")) == "configmap/sel-b\n"

    one = json.loads(ok(ctl(d, "get", "configmap", "sel-a", "-o", "json")))
    assert one["kind"] == "ConfigMap" and one["metadata"]["labels"] == {"app": "a"}
    lst = json.loads(ok(ctl(d, "get", "cm", "-l", "app", "-o", "json")))
    assert lst["kind"] == "List"
    assert {i["kind"] for i in lst["items"]} == {"ConfigMap"}
    assert {i["metadata"]["name"] for i in lst["items"]} == {"sel-a", "sel-b"}
    y = yaml.safe_load(ok(ctl(d, "get", "-n", "ctl-other", "cm", "sel-c", "-o", "yaml")))
    assert y["metadata"]["namespace"] == "ctl-other" and y["apiVersion"] == "v1"

    out = ok(ctl(d, "get", "configmaps,namespaces", "-l", "app=b"))
    assert "configmap/sel-b" in out
    r = ctl(d, "get", "cm", "-l", "app=zzz")
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.strip() == "No resources found in default namespace."

    out = ok(ctl(d, "api-resources"))
    names = {l.split()[0] for l in out.splitlines()[1:]}
    assert {"pods", "deployments", "configmaps", "namespaces"} <= names
    assert "deployments.apps" in ok(ctl(d, "api-resources", "-o", "name")).split()


def test_get_watch(shoald):
    d = shoald
    d.post("/api/v1/namespaces/default/configmaps",
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w-before"}})
    p = subprocess.Popen([SHOALCTL, "--server", "unix:" + d.socket, "get", "cm", "-w"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=ctl_env())
    try:
        header = p.stdout.readline()
        assert header.split()[0] == "NAME"
        assert p.stdout.readline().split()[0] == "w-before"
        d.post("/api/v1/namespaces/default/configmaps",
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w-after"}})
        deadline = time.time() + 10
        seen = None
        while time.time() < deadline:
            line = p.stdout.readline()
            if line.split() and line.split()[0] == "w-after":
                seen = line
                break
        assert seen, "watch did not print the new object"
        assert p.poll() is None
    finally:
        p.terminate()
        p.wait(5)


def test_describe_with_events(shoald_shared):
    d = shoald_shared
    r = d.post("/api/v1/namespaces/default/pods",
               {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "desc-pod", "labels": {"app": "desc"}},
                "spec": {"containers": [{"name": "main", "image": "busybox",
                                         "ports": [{"containerPort": 8080}]}]}})
    uid = r.json()["metadata"]["uid"]
    d.post("/api/v1/namespaces/default/events",
           {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "desc-pod.1"},
            "involvedObject": {"kind": "Pod", "name": "desc-pod", "namespace": "default",
                               "uid": uid},
            "reason": "Pulled", "message": "image pulled", "type": "Normal",
            "source": {"component": "shoald"}})
    d.post("/api/v1/namespaces/default/events",
           {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "other.1"},
            "involvedObject": {"kind": "Pod", "name": "someone-else", "namespace": "default"},
            "reason": "Unrelated", "message": "x", "type": "Normal"})
    out = ok(ctl(d, "describe", "pod", "desc-pod"))
    assert out.startswith("Name:               desc-pod\nNamespace:          default\n")
    assert "Labels:             app=desc\n" in out
    assert "  main:\n    Image:          busybox\n    Port:           8080/TCP\n" in out
    events = out[out.index("Events:"):]
    assert "Pulled" in events and "image pulled" in events and "shoald" in events
    assert "Unrelated" not in events

    r = ctl(d, "describe", "pod", "nope")
    assert r.returncode == 1 and 'pods "nope" not found' in r.stderr


def test_delete(shoald, tmpdir_):
    d = shoald
    f = write(os.path.join(tmpdir_, "cms.yaml"),
              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d1, labels: {g: x}}\n---\n"
              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d2, labels: {g: x}}\n---\n"
              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d3}\n")
    ok(ctl(d, "apply", "-f", f))
    assert ok(ctl(d, "delete", "configmap", "d3")) == 'configmap "d3" deleted\n'
    assert d.get("/api/v1/namespaces/default/configmaps/d3").status == 404
    r = ctl(d, "delete", "cm", "d3")
    assert r.returncode == 1
    assert r.stderr.strip() == 'Error from server (NotFound): configmaps "d3" not found'
    assert ctl(d, "delete", "cm", "d3", "--ignore-not-found").returncode == 0
    out = ok(ctl(d, "delete", "cm", "-l", "g=x", "--wait=false", "--grace-period=0"))
    assert sorted(out.splitlines()) == ['configmap "d1" force deleted',
                                        'configmap "d2" force deleted']
    ok(ctl(d, "apply", "-f", f))
    out = ok(ctl(d, "delete", "-f", f))
    assert out.splitlines() == ['configmap "d1" deleted', 'configmap "d2" deleted',
                                'configmap "d3" deleted']
    names = [i["metadata"]["name"]
             for i in d.get("/api/v1/namespaces/default/configmaps").json()["items"]]
    assert not {"d1", "d2", "d3"} & set(names)

    # a deployment goes with its replica sets and pods (background propagation)
    ok(ctl(d, "apply", "-f", "-", input=MANIFEST))
    assert ok(ctl(d, "delete", "deploy", "web")) == 'deployment.apps "web" deleted\n'
    assert d.get("/apis/apps/v1/namespaces/default/deployments/web").status == 404


def test_kubeconfig(shoald, tmpdir_):
    """kubeconfig over TCP inside the daemon's namespace: server, token, context namespace."""
    d = shoald
    d.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "kc-ns"}})
    d.post("/api/v1/namespaces/kc-ns/configmaps",
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "in-kc-ns"}})
    kc = write(os.path.join(tmpdir_, "config"), yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "shoal",
        "clusters": [{"name": "c", "cluster": {"server": d.server}},
                     {"name": "wrong", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "not-needed-on-loopback"}}],
        "contexts": [{"name": "shoal", "context": {"cluster": "c", "user": "u",
                                                   "namespace": "kc-ns"}},
                     {"name": "broken", "context": {"cluster": "wrong", "user": "u"}}]}))
    env = {k: v for k, v in ctl_env().items()}
    r = d.netns.run([SHOALCTL, "--kubeconfig", kc, "get", "cm", "-o", "name"], check=False,
                    env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configmap/in-kc-ns\n"
    env["KUBECONFIG"] = kc
    r = d.netns.run([SHOALCTL, "get", "cm", "-o", "name"], check=False, env=env)
    assert r.stdout == "configmap/in-kc-ns\n", r.stderr
    # --context switches cluster; SHOAL_SERVER overrides the kubeconfig's server
    r = d.netns.run([SHOALCTL, "--context", "broken", "get", "ns"], check=False, env=env)
    assert r.returncode == 1 and "127.0.0.1:1" in r.stderr
    env["SHOAL_SERVER"] = d.server
    r = d.netns.run([SHOALCTL, "--context", "broken", "get", "ns", "kc-ns", "-o", "name"],
                    check=False, env=env)
    assert r.stdout == "namespace/kc-ns\n", r.stderr
    r = d.netns.run([SHOALCTL, "--kubeconfig", os.path.join(tmpdir_, "missing"), "get", "ns"],
                    check=False, env=env)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_tls_token_kubeconfig(tmpdir_):
    """https with the daemon's generated CA (file and inline data), bearer tokens, 401s."""
    import base64

    from shoaltest import Netns, Shoald, sh

    token = "shoal-ctl-token-0123456789"
    tokens = write(os.path.join(tmpdir_, "tokens.csv"), f"{token},alice,1000\n")
    ns = Netns()
    try:
        sh("ip", "-n", ns.name, "link", "add", "shoal-ctl-v0", "type", "veth", "peer", "name",
           "shoal-ctl-v1")
        sh("ip", "-n", ns.name, "addr", "add", "10.124.0.1/24", "dev", "shoal-ctl-v0")
        sh("ip", "-n", ns.name, "link", "set", "shoal-ctl-v0", "up")
        sh("ip", "-n", ns.name, "link", "set", "shoal-ctl-v1", "up")
        d = Shoald(netns=ns, extra_args=["--api-listen", "10.124.0.1:6443",
                                         "--tokens-file", tokens])
        try:
            d.start()
            ca = os.path.join(d.state_dir, "tls", "ca.crt")
            ca_data = base64.b64encode(open(ca, "rb").read()).decode()

            def kubeconfig(name, cluster, user):
                return write(os.path.join(tmpdir_, name), yaml.safe_dump({
                    "apiVersion": "v1", "kind": "Config", "current-context": "x",
                    "clusters": [{"name": "c", "cluster": dict(
                        server="https://10.124.0.1:6443", **cluster)}],
                    "users": [{"name": "u", "user": user}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}))

            def run(kc, *args):
                return ns.run([SHOALCTL, "--kubeconfig", kc, *args], check=False,
                              env=ctl_env())

            for kc in (kubeconfig("ca-file", {"certificate-authority": ca}, {"token": token}),
                       kubeconfig("ca-data", {"certificate-authority-data": ca_data},
                                  {"token": token}),
                       kubeconfig("insecure", {"insecure-skip-tls-verify": True},
                                  {"token": token})):
                r = run(kc, "get", "ns", "default", "-o", "name")
                assert r.stdout == "namespace/default\n", (kc, r.stderr)

            no_token = kubeconfig("no-token", {"certificate-authority": ca}, {})
            r = run(no_token, "get", "ns")
            assert r.returncode == 1
            assert r.stderr.startswith("Error from server (Unauthorized)"), r.stderr
            r = run(no_token, "--token", token, "get", "ns", "default", "-o", "name")
            assert r.stdout == "namespace/default\n", r.stderr

            no_ca = kubeconfig("no-ca", {}, {"token": token})
            r = run(no_ca, "get", "ns")
            assert r.returncode == 1
            assert "cannot talk to the server https://10.124.0.1:6443" in r.stderr
        finally:
            d.close()
    finally:
        ns.close()


def _kubectl():
    """The kubectl `make clients` installs (1.33), else $KUBECTL, else one on PATH."""
    from kubeclients import KUBECTL as INSTALLED
    for k in (INSTALLED["1.33"], os.environ.get("KUBECTL"), shutil.which("kubectl")):
        if k and os.access(k, os.X_OK):
            return k
    return None


KUBECTL = _kubectl()


@pytest.mark.skipif(not KUBECTL, reason="no kubectl: run `make clients` (or set KUBECTL=...)")
def test_same_as_kubectl(shoald, tmpdir_):
    """Applies by either tool see the other's as unchanged; tables print the same."""
    d = shoald
    f = write(os.path.join(tmpdir_, "app.yaml"), MANIFEST)

    def kubectl(*args):
        # kubectl writes a discovery cache under $HOME: keep it in the test's directory
        return d.netns.run([KUBECTL, "--server", d.server, *args], check=False,
                           env=ctl_env({"HOME": tmpdir_}))

    def shoalctl(*args):
        return d.netns.run([SHOALCTL, "--server", d.server, *args], check=False, env=ctl_env())

    r = kubectl("apply", "-f", f)
    assert r.returncode == 0, r.stderr
    assert shoalctl("apply", "-f", f).stdout.splitlines() == [
        "configmap/web-config unchanged", "deployment.apps/web unchanged"]
    write(f, MANIFEST.replace(", tier: frontend", ""))
    assert "configmap/web-config configured" in shoalctl("apply", "-f", f).stdout
    r = kubectl("apply", "-f", f)
    assert "configmap/web-config unchanged" in r.stdout, r.stdout + r.stderr
    cm = d.get("/api/v1/namespaces/default/configmaps/web-config").json()
    assert cm["metadata"]["labels"] == {"app": "web"}

    for args in (["get", "configmaps,deployments"], ["get", "namespaces", "-o", "wide"],
                 ["get", "cm", "-A", "--show-labels"], ["get", "deploy", "-o", "name"]):
        k, s = kubectl(*args), shoalctl(*args)
        # AGE may tick between the two runs (and move later columns): compare the cells
        def cells(t):
            return [[c for c in l.split() if not re.fullmatch(r"\d+s", c)]
                    for l in t.splitlines()]
        assert k.returncode == 0, k.stderr
        assert cells(k.stdout) == cells(s.stdout), (args, k.stdout, s.stdout)


def test_debug_registers(shoald_shared):
    """shoalctl debug registers prints the node's registers, tombstones too, stably."""
    d = shoald_shared
    for name in ("dbg-reg-1", "dbg-reg-2"):
        assert d.post("/api/v1/namespaces/default/configmaps",
                      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                       "data": {"k": "v"}}).status == 201
    assert d.delete("/api/v1/namespaces/default/configmaps/dbg-reg-2").status == 200
    out = ok(ctl(d, "debug", "registers", "configmaps"))
    lines = [l for l in out.splitlines() if "default/dbg-reg-" in l]
    assert [l.split()[1] for l in lines] == ["default/dbg-reg-1", "default/dbg-reg-2"]
    assert " deleted " not in lines[0] and " deleted " in lines[1]
    assert ok(ctl(d, "debug", "registers", "configmaps")) == out
    assert "configmaps default/dbg-reg-1 " in ok(ctl(d, "debug", "registers"))
    r = ctl(d, "debug", "nonsense")
    assert r.returncode != 0 and "usage" in r.stderr
    d.delete("/api/v1/namespaces/default/configmaps/dbg-reg-1")
