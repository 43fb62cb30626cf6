# SPDX-License-Identifier: Apache-2.0
"""Unmodified kubectl (1.33 static build, and Debian's 1.20) against a real shoald.

Every expectation here is what the same command prints or does against a real Kubernetes API
server. kubectl runs inside the daemon's network namespace over plain HTTP with a kubeconfig in a
temporary HOME; validation stays on (no --validate=false).
"""
import json
import os
import re
import time

import pytest
import yaml

from kubeclients import (KUBECTL, Kubectl, header, make_tmp, missing_reason, requests_in,
                         rm_tmp, start_daemon, stop_daemon, table, unique)


@pytest.fixture(scope="module")
def daemon():
    if all(missing_reason("kubectl-" + v, p) for v, p in KUBECTL.items()):
        pytest.skip(missing_reason("kubectl-1.33", KUBECTL["1.33"]))
    d, ns = start_daemon()
    yield d
    stop_daemon(d, ns)


def _kubectl(version, daemon):
    why = missing_reason("kubectl-" + version, KUBECTL[version])
    if why:
        pytest.skip(why)
    tmp = make_tmp()
    try:
        yield Kubectl(version, daemon, tmp)
    finally:
        rm_tmp(tmp)


@pytest.fixture
def kubectl(daemon):
    """kubectl 1.33 (the full set of tests)."""
    yield from _kubectl("1.33", daemon)


@pytest.fixture(params=["1.33", "1.20"])
def anykubectl(request, daemon):
    """Both kubectl versions (the smaller common set)."""
    yield from _kubectl(request.param, daemon)


def manifest(template, s):
    return template.replace("@S@", s)


POD = """apiVersion: v1
kind: Pod
metadata:
  name: web-@S@
  labels:
    app: web-@S@
    suite: "@S@"
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
    ports:
    - containerPort: 8080
"""

SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: web-@S@
  labels:
    suite: "@S@"
spec:
  selector:
    app: web-@S@
  ports:
  - name: http
    port: 80
    targetPort: 8080
"""

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: web-@S@
  labels:
    suite: "@S@"
data:
  greeting: hello
  count: "1"
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-@S@
  labels:
    app: web-@S@
    suite: "@S@"
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web-@S@-d
  template:
    metadata:
      labels:
        app: web-@S@-d
    spec:
      containers:
      - name: main
        image: busybox:1.36
        command: ["sleep", "3600"]
"""

ALL4 = "---\n".join([POD, SERVICE, CONFIGMAP, DEPLOYMENT])


def get_json(k, *args):
    return json.loads(k.run("get", *args, "-o", "json").stdout)


def saw(log, verb, path_rx, status=None):
    """Did kubectl -v=6 log a `verb` request whose URL path matches path_rx (and status)?"""
    for v, url, st in requests_in(log):
        if v == verb and re.search(path_rx, url) and (status is None or st == status):
            return True
    return False


# ---------------------------------------------------------------- both versions

def test_version_and_discovery(anykubectl):
    k = anykubectl
    out = json.loads(k.run("version", "-o", "json").stdout)
    sv = out.get("serverVersion")
    assert sv, f"no serverVersion: {out}"
    assert sv["major"] and sv["minor"] and sv["gitVersion"].startswith("v"), sv

    versions = k.run("api-versions").stdout.split()
    for gv in ("v1", "apps/v1", "batch/v1"):
        assert gv in versions, versions


EXPECTED_RESOURCES = {
    # name: (shortnames, apiversion, namespaced, kind)
    "pods": ("po", "v1", "true", "Pod"),
    "services": ("svc", "v1", "true", "Service"),
    "configmaps": ("cm", "v1", "true", "ConfigMap"),
    "secrets": ("", "v1", "true", "Secret"),
    "namespaces": ("ns", "v1", "false", "Namespace"),
    "nodes": ("no", "v1", "false", "Node"),
    "events": ("ev", "v1", "true", "Event"),
    "endpoints": ("ep", "v1", "true", "Endpoints"),
    "deployments": ("deploy", "apps/v1", "true", "Deployment"),
    "replicasets": ("rs", "apps/v1", "true", "ReplicaSet"),
    "jobs": ("", "batch/v1", "true", "Job"),
    "poddisruptionbudgets": ("pdb", "policy/v1", "true", "PodDisruptionBudget"),
}


def test_api_resources(anykubectl):
    r = anykubectl.run("api-resources")
    rows = {row["NAME"]: row for row in table(r.stdout)}
    for name, (short, apiver, namespaced, kind) in EXPECTED_RESOURCES.items():
        assert name in rows, f"{name} missing from api-resources:\n{r.stdout}"
        row = rows[name]
        assert row["KIND"] == kind, row
        assert row["NAMESPACED"] == namespaced, row
        assert row.get("SHORTNAMES", "") == short, row
        if "APIVERSION" in row:
            assert row["APIVERSION"] == apiver, row


def test_get_nodes_and_namespaces(anykubectl, daemon):
    k = anykubectl
    out = k.run("get", "nodes").stdout
    assert header(out)[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], out
    assert daemon.node in [row["NAME"] for row in table(out)], out

    out = k.run("get", "namespaces").stdout
    assert header(out) == ["NAME", "STATUS", "AGE"], out
    rows = {row["NAME"]: row for row in table(out)}
    assert rows.get("default", {}).get("STATUS") == "Active", out


def test_create_get_delete(anykubectl):
    k = anykubectl
    s = unique("cgd")
    path = k.write("all.yaml", manifest(ALL4, s))
    out = k.run("create", "-f", path).stdout
    for what in ("pod", "service", "configmap", "deployment.apps"):
        assert f"{what}/web-{s} created" in out, out

    out = k.run("get", "pods", "-l", f"suite={s}").stdout
    assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], out
    rows = table(out)
    assert [r["NAME"] for r in rows] == [f"web-{s}"], out
    assert rows[0]["READY"].endswith("/1"), out

    pod = get_json(k, "pod", f"web-{s}")
    assert pod["kind"] == "Pod" and pod["apiVersion"] == "v1"
    md = pod["metadata"]
    assert md["namespace"] == "default" and md["uid"] and md["resourceVersion"]
    assert md["creationTimestamp"].endswith("Z")
    assert md["labels"] == {"app": f"web-{s}", "suite": s}
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["containers"][0]["image"] == "busybox:1.36"

    # create again: every object already exists
    r = k.fail("create", "-f", path)
    assert re.search(rf'Error from server \(AlreadyExists\): error when creating "[^"]*": '
                     rf'pods "web-{s}" already exists', r.stderr), r.stderr

    out = k.run("delete", "pod", f"web-{s}").stdout
    assert f'pod "web-{s}" deleted' in out, out
    r = k.fail("get", "pod", f"web-{s}")
    assert f'Error from server (NotFound): pods "web-{s}" not found' in r.stderr, r.stderr

    out = k.run("delete", "-f", path, "--ignore-not-found").stdout
    for what in ("service", "configmap", "deployment.apps"):
        assert f'{what} "web-{s}" deleted' in out, out
    for kind in ("svc", "cm", "deploy"):
        r = k.run("get", kind, "-l", f"suite={s}", "-o", "name")
        assert r.stdout.strip() == "", r.stdout


def test_apply_twice_patches(anykubectl):
    k = anykubectl
    s = unique("apl")
    path = k.write("cm.yaml", manifest(CONFIGMAP, s))
    name = f"web-{s}"

    r = k.run("apply", "-f", path, "-v=6")
    assert f"configmap/{name} created" in r.stdout, r.stdout
    assert saw(r.stderr, "POST", r"/api/v1/namespaces/default/configmaps\b", 201), r.stderr
    cm1 = get_json(k, "configmap", name)
    last = cm1["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(last)["data"] == {"greeting": "hello", "count": "1"}

    # same file again: kubectl computes an empty patch, the object is untouched
    r = k.run("apply", "-f", path, "-v=6")
    assert f"configmap/{name} unchanged" in r.stdout, r.stdout
    cm2 = get_json(k, "configmap", name)
    assert cm2["metadata"]["resourceVersion"] == cm1["metadata"]["resourceVersion"]

    # changed file: the second apply is a PATCH (strategic merge) the server must honour
    path = k.write("cm.yaml", manifest(CONFIGMAP, s).replace('count: "1"', 'count: "2"')
                   .replace("greeting: hello\n", ""))
    r = k.run("apply", "-f", path, "-v=6")
    assert f"configmap/{name} configured" in r.stdout, r.stdout
    assert saw(r.stderr, "PATCH", rf"/api/v1/namespaces/default/configmaps/{name}\b", 200), \
        r.stderr
    cm3 = get_json(k, "configmap", name)
    assert cm3["data"] == {"count": "2"}, cm3["data"]
    assert int(cm3["metadata"]["resourceVersion"]) > int(cm1["metadata"]["resourceVersion"])
    assert cm3["metadata"]["uid"] == cm1["metadata"]["uid"]
    last = cm3["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(last)["data"] == {"count": "2"}

    k.run("delete", "-f", path)


def test_get_watch(anykubectl):
    k = anykubectl
    s = unique("w")
    k.run("run", f"w0-{s}", "--image=busybox:1.36", f"--labels=suite={s}")
    w = k.watch("get", "pods", "-l", f"suite={s}", "-w", "--output-watch-events")
    try:
        # the initial list (printed as ADDED events) shows the existing pod
        w.wait_for(rf"^ADDED\s+w0-{s}\s")
        k.run("run", f"w1-{s}", "--image=busybox:1.36", f"--labels=suite={s}")
        w.wait_for(rf"^ADDED\s+w1-{s}\s")
        k.run("label", "pod", f"w1-{s}", "changed=yes")
        w.wait_for(rf"^MODIFIED\s+w1-{s}\s")
        k.run("delete", "pod", f"w1-{s}")
        w.wait_for(rf"^DELETED\s+w1-{s}\s")
    finally:
        w.stop()
        k.run("delete", "pod", f"w0-{s}", "--ignore-not-found")


def test_errors(anykubectl):
    k = anykubectl
    r = k.fail("get", "pod", "no-such-pod")
    assert 'Error from server (NotFound): pods "no-such-pod" not found' in r.stderr, r.stderr
    r = k.fail("delete", "configmap", "no-such-cm")
    assert 'Error from server (NotFound): configmaps "no-such-cm" not found' in r.stderr, r.stderr
    r = k.fail("get", "frobnicators")
    assert 'the server doesn\'t have a resource type "frobnicators"' in r.stderr, r.stderr

    bad = k.write("bad.yaml",
                  manifest(POD, "bad").replace("  name: web-bad\n", "  name: Bad_Name\n"))
    r = k.fail("create", "-f", bad)
    assert 'The Pod "Bad_Name" is invalid' in r.stderr and "metadata.name" in r.stderr, r.stderr

    nocont = k.write("nocont.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nocont\n"
                     "spec:\n  containers: []\n")
    r = k.fail("create", "-f", nocont)
    assert 'The Pod "nocont" is invalid' in r.stderr, r.stderr
    assert "spec.containers: Required value" in r.stderr, r.stderr


# ---------------------------------------------------------------- kubectl 1.33 only

def test_get_output_formats(kubectl, daemon):
    k = kubectl
    s = unique("fmt")
    k.run("create", "-f", k.write("p.yaml", manifest(POD, s)))
    name = f"web-{s}"
    try:
        pod = json.loads(k.run("get", "pod", name, "-o", "json").stdout)
        assert pod["metadata"]["name"] == name and pod["kind"] == "Pod"
        pod_y = yaml.safe_load(k.run("get", "pod", name, "-o", "yaml").stdout)
        assert pod_y["metadata"]["uid"] == pod["metadata"]["uid"]

        lst = json.loads(k.run("get", "pods", "-l", f"suite={s}", "-o", "json").stdout)
        assert lst["kind"] == "List" and [i["metadata"]["name"] for i in lst["items"]] == [name]
        lst_y = yaml.safe_load(k.run("get", "pods", "-l", f"suite={s}", "-o", "yaml").stdout)
        assert [i["metadata"]["name"] for i in lst_y["items"]] == [name]

        out = k.run("get", "pods", "-l", f"suite={s}", "-o", "wide").stdout
        assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                               "NOMINATED NODE", "READINESS GATES"], out
        assert table(out)[0]["NAME"] == name

        assert k.run("get", "pods", "-l", f"suite={s}", "-o", "name").stdout.split() == \
            [f"pod/{name}"]
        out = k.run("get", "pod", name, "-o", "jsonpath={.metadata.labels.app}").stdout
        assert out == name
        out = k.run("get", "pods", "-l", f"suite={s}",
                    "-o", "custom-columns=N:.metadata.name,IMG:.spec.containers[0].image").stdout
        assert table(out) == [{"N": name, "IMG": "busybox:1.36"}], out

        out = k.run("get", "pods", "-l", f"suite={s}", "--show-labels").stdout
        assert f"app=web-{s}" in table(out)[0]["LABELS"], out
        out = k.run("get", "pods", "--field-selector", f"metadata.name={name}", "-o", "name")
        assert out.stdout.split() == [f"pod/{name}"], out.stdout
        out = k.run("get", "pods", "-l", f"suite={s},app notin (web-{s})", "-o", "name")
        assert out.stdout.strip() == "", out.stdout

        out = k.run("get", "nodes", "-o", "wide").stdout
        assert header(out)[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
        node = json.loads(k.run("get", "node", daemon.node, "-o", "json").stdout)
        for res in ("cpu", "memory", "pods"):
            assert res in node["status"]["capacity"], node["status"]
    finally:
        k.run("delete", "pod", name, "--ignore-not-found")


def test_get_empty_and_namespaces(kubectl):
    k = kubectl
    ns = unique("itest-ns")
    out = k.run("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n"
                f"  name: {ns}\n").stdout
    assert f"namespace/{ns} created" in out
    try:
        r = k.run("get", "pods", "-n", ns)
        assert r.stdout == "" and f"No resources found in {ns} namespace." in r.stderr, r
        k.run("create", "-n", ns, "-f", "-",
              input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  a: b\n")
        out = k.run("get", "configmaps", "-n", ns).stdout
        assert header(out) == ["NAME", "DATA", "AGE"], out
        assert {"NAME": "c1", "DATA": "1"}.items() <= table(out)[0].items(), out
        r = k.fail("get", "configmap", "c1")
        assert 'configmaps "c1" not found' in r.stderr, r.stderr
        out = k.run("get", "configmaps", "-A", "--field-selector", "metadata.name=c1").stdout
        rows = [row for row in table(out) if row["NAME"] == "c1"]
        assert rows and rows[0]["NAMESPACE"] == ns, out
    finally:
        k.run("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def test_create_generators(kubectl):
    """`kubectl create <kind> ...` builds typed objects and sends them with client-go's typed
    clients (Content-Type: application/vnd.kubernetes.protobuf)."""
    k = kubectl
    s = unique("ok")
    out = k.run("create", "namespace", f"ns-{s}").stdout
    assert f"namespace/ns-{s} created" in out
    out = k.run("create", "configmap", f"cm-{s}", "--from-literal=a=b").stdout
    assert f"configmap/cm-{s} created" in out
    assert get_json(k, "configmap", f"cm-{s}")["data"] == {"a": "b"}
    out = k.run("create", "deployment", f"d-{s}", "--image=busybox:1.36", "--replicas=2").stdout
    assert f"deployment.apps/d-{s} created" in out
    d = get_json(k, "deployment", f"d-{s}")
    assert d["spec"]["replicas"] == 2 and d["metadata"]["generation"] == 1
    assert d["spec"]["selector"]["matchLabels"] == {"app": f"d-{s}"}

    out = k.run("create", "secret", "generic", f"sec-{s}", "--from-literal=k=v").stdout
    assert f"secret/sec-{s} created" in out
    assert k.run("get", "secret", f"sec-{s}", "-o", "jsonpath={.data.k}").stdout == "dg=="
    assert k.run("get", "secret", f"sec-{s}", "-o", "jsonpath={.type}").stdout == "Opaque"

    out = k.run("create", "job", f"j-{s}", "--image=busybox:1.36", "--", "true").stdout
    assert f"job.batch/j-{s} created" in out
    j = get_json(k, "job", f"j-{s}")
    assert j["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    gen = k.run("create", "-f", "-", "-o", "name", input="apiVersion: v1\nkind: ConfigMap\n"
                "metadata:\n  generateName: gen-\ndata: {a: b}\n").stdout.strip()
    assert re.fullmatch(r"configmap/gen-[a-z0-9]{5}", gen), gen

    k.run("delete", "deployment", f"d-{s}")
    k.run("delete", "configmap", f"cm-{s}")
    k.run("delete", "namespace", f"ns-{s}", "--wait=false")
    k.run("delete", "secret", f"sec-{s}")
    k.run("delete", "job", f"j-{s}")
    k.run("delete", gen)


def test_create_service_defaults(kubectl):
    k = kubectl
    s = unique("svc")
    k.run("create", "-f", k.write("s.yaml", manifest(SERVICE, s)))
    svc = get_json(k, "service", f"web-{s}")
    port = svc["spec"]["ports"][0]
    assert port["protocol"] == "TCP" and port["port"] == 80 and port["targetPort"] == 8080
    assert svc["spec"]["type"] == "ClusterIP"
    out = k.run("get", "service", f"web-{s}").stdout
    assert header(out) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], out
    assert table(out)[0]["PORT(S)"] == "80/TCP", out
    k.run("delete", "service", f"web-{s}")


def test_create_service_generators(anykubectl):
    """`kubectl create service clusterip|nodeport NAME --tcp=A:B` names each port "A-B": a
    Service port name is a DNS-1123 label, not an IANA service name (which needs a letter)."""
    k = anykubectl
    s = unique("gen")
    try:
        out = k.run("create", "service", "clusterip", f"c-{s}", "--tcp=80:80").stdout
        assert f"service/c-{s} created" in out, out
        svc = get_json(k, "service", f"c-{s}")
        assert svc["spec"]["type"] == "ClusterIP"
        assert [(p["name"], p["port"], p["targetPort"], p["protocol"])
                for p in svc["spec"]["ports"]] == [("80-80", 80, 80, "TCP")]
        assert svc["spec"]["selector"] == {"app": f"c-{s}"}
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", svc["spec"]["clusterIP"]), svc["spec"]

        # a type change to NodePort allocates the nodePort, back to ClusterIP drops it
        k.run("patch", "service", f"c-{s}", "-p", '{"spec":{"type":"NodePort"}}')
        svc = get_json(k, "service", f"c-{s}")
        assert svc["spec"]["type"] == "NodePort"
        assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767, svc["spec"]
        k.run("patch", "service", f"c-{s}", "-p", '{"spec":{"type":"ClusterIP"}}')
        svc = get_json(k, "service", f"c-{s}")
        assert svc["spec"]["type"] == "ClusterIP"
        assert "nodePort" not in svc["spec"]["ports"][0], svc["spec"]
        assert "externalTrafficPolicy" not in svc["spec"], svc["spec"]

        out = k.run("create", "service", "nodeport", f"n-{s}", "--tcp=8080:80").stdout
        assert f"service/n-{s} created" in out, out
        svc = get_json(k, "service", f"n-{s}")
        assert svc["spec"]["type"] == "NodePort"
        (p,) = svc["spec"]["ports"]
        assert (p["name"], p["port"], p["targetPort"]) == ("8080-80", 8080, 80), p
        assert 30000 <= p["nodePort"] <= 32767, p

        # several ports: every one named A-B, each nodePort its own
        k.run("create", "service", "nodeport", f"m-{s}", "--tcp=80:8080,443:8443")
        ports = get_json(k, "service", f"m-{s}")["spec"]["ports"]
        assert [(p["name"], p["port"], p["targetPort"]) for p in ports] == \
            [("80-8080", 80, 8080), ("443-8443", 443, 8443)], ports
        assert len({p["nodePort"] for p in ports}) == 2, ports

        k.run("create", "service", "clusterip", f"h-{s}", "--clusterip=None", "--tcp=5432:5432")
        svc = get_json(k, "service", f"h-{s}")
        assert svc["spec"]["clusterIP"] == "None"
        assert svc["spec"]["ports"][0]["name"] == "5432-5432"

        # what Kubernetes still rejects: a port name that is no DNS label
        bad = k.fail("create", "-f", "-", input=f"""apiVersion: v1
kind: Service
metadata:
  name: x-{s}
spec:
  ports: [{{name: Web_80, port: 80}}]
""")
        assert "spec.ports[0].name: Invalid value: \"Web_80\"" in bad.stderr, bad.stderr
    finally:
        for n in ("c", "n", "m", "h", "x"):
            k.run("delete", "service", f"{n}-{s}", "--ignore-not-found")


def test_apply_deployment_strategic_merge(kubectl):
    """Second apply sends a strategic merge patch: lists merge by key, removals use null, and
    fields set by someone else (here: kubectl label) survive the three-way merge."""
    k = kubectl
    s = unique("smp")
    name = f"web-{s}"
    v1 = manifest(DEPLOYMENT, s).replace(
        "        command: [\"sleep\", \"3600\"]\n",
        "        command: [\"sleep\", \"3600\"]\n"
        "        env:\n        - name: A\n          value: \"1\"\n"
        "      - name: side\n        image: busybox:1.36\n").replace(
        "    suite: \"@S@\"\n".replace("@S@", s),
        f"    suite: \"{s}\"\n    tier: frontend\n", 1)
    path = k.write("d.yaml", v1)
    assert f"deployment.apps/{name} created" in k.run("apply", "-f", path).stdout
    k.run("label", "deployment", name, "owner=someone-else")

    v2 = v1.replace("    tier: frontend\n", "").replace(
        "      - name: side\n        image: busybox:1.36\n",
        "      - name: side\n        image: busybox:1.37\n").replace("replicas: 2", "replicas: 3")
    path = k.write("d.yaml", v2)
    r = k.run("apply", "-f", path, "-v=6")
    assert f"deployment.apps/{name} configured" in r.stdout, r.stdout
    assert saw(r.stderr, "PATCH", rf"/apis/apps/v1/namespaces/default/deployments/{name}\b",
               200), r.stderr
    d = get_json(k, "deployment", name)
    assert d["metadata"]["labels"] == {"app": name, "suite": s, "owner": "someone-else"}, \
        d["metadata"]["labels"]
    assert d["spec"]["replicas"] == 3
    cs = d["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in cs] == \
        [("main", "busybox:1.36"), ("side", "busybox:1.37")], cs
    assert cs[0]["env"] == [{"name": "A", "value": "1"}], cs[0]
    assert d["metadata"]["generation"] >= 2

    assert f"deployment.apps/{name} unchanged" in k.run("apply", "-f", path).stdout
    k.run("delete", "-f", path)


def test_describe(kubectl, daemon):
    k = kubectl
    s = unique("desc")
    k.run("create", "-f", k.write("p.yaml", manifest(POD, s)))
    out = k.run("describe", "pod", f"web-{s}").stdout
    for rx in (rf"^Name:\s+web-{s}$", r"^Namespace:\s+default$", rf"^Labels:\s+app=web-{s}$",
               r"^Containers:$", r"^\s+Image:\s+busybox:1\.36$", r"^Events:"):
        assert re.search(rx, out, re.M), f"{rx!r} not in:\n{out}"
    out = k.run("describe", "node", daemon.node).stdout
    assert re.search(rf"^Name:\s+{daemon.node}$", out, re.M), out
    assert re.search(r"^Capacity:$", out, re.M), out
    k.run("delete", "pod", f"web-{s}")


def test_scale_label_annotate(kubectl):
    k = kubectl
    s = unique("sla")
    name = f"web-{s}"
    k.run("create", "-f", k.write("d.yaml", manifest(DEPLOYMENT, s)))
    try:
        r = k.run("scale", "deployment", name, "--replicas=4", "-v=6")
        assert f"deployment.apps/{name} scaled" in r.stdout, r.stdout
        assert saw(r.stderr, "PATCH", rf"/deployments/{name}/scale\b", 200) or \
            saw(r.stderr, "PUT", rf"/deployments/{name}/scale\b", 200), r.stderr
        assert get_json(k, "deployment", name)["spec"]["replicas"] == 4
        sc = json.loads(k.run("get", "--raw",
                              f"/apis/apps/v1/namespaces/default/deployments/{name}/scale").stdout)
        assert sc["kind"] == "Scale" and sc["spec"]["replicas"] == 4, sc
        r = k.fail("scale", "deployment", name, "--current-replicas=2", "--replicas=1")
        assert "Expected replicas to be 2, was 4" in r.stderr, r.stderr

        assert f"deployment.apps/{name} labeled" in \
            k.run("label", "deployment", name, "env=prod").stdout
        r = k.fail("label", "deployment", name, "env=dev")
        assert "--overwrite is false" in r.stderr, r.stderr
        k.run("label", "deployment", name, "env=dev", "--overwrite")
        assert k.run("get", "deployments", "-l", "env=dev", "-o", "name").stdout.split() == \
            [f"deployment.apps/{name}"]
        assert f"deployment.apps/{name} unlabeled" in \
            k.run("label", "deployment", name, "env-").stdout
        assert "env" not in get_json(k, "deployment", name)["metadata"]["labels"]

        assert f"deployment.apps/{name} annotated" in \
            k.run("annotate", "deployment", name, "note=hello world").stdout
        d = get_json(k, "deployment", name)
        assert d["metadata"]["annotations"]["note"] == "hello world"
        k.run("annotate", "deployment", name, "note-")
        assert "note" not in get_json(k, "deployment", name)["metadata"].get("annotations", {})
    finally:
        k.run("delete", "deployment", name, "--ignore-not-found")


def test_patch_replace_conflict(kubectl):
    k = kubectl
    s = unique("prc")
    name = f"web-{s}"
    k.run("create", "-f", k.write("cm.yaml", manifest(CONFIGMAP, s)))
    try:
        out = k.run("patch", "configmap", name, "--type=merge", "-p",
                    '{"data":{"greeting":null,"extra":"x"}}').stdout
        assert f"configmap/{name} patched" in out
        assert get_json(k, "cm", name)["data"] == {"count": "1", "extra": "x"}
        out = k.run("patch", "configmap", name, "-p", '{"metadata":{"labels":{"p":"q"}}}').stdout
        assert f"configmap/{name} patched" in out
        assert get_json(k, "cm", name)["metadata"]["labels"]["p"] == "q"
        out = k.run("patch", "configmap", name, "-p", '{"metadata":{"labels":{"p":"q"}}}').stdout
        assert f"configmap/{name} patched (no change)" in out
        cur = get_json(k, "cm", name)
        cur["data"]["replaced"] = "1"
        path = k.write("cur.json", json.dumps(cur))
        assert f"configmap/{name} replaced" in k.run("replace", "-f", path).stdout
        # cur.json still carries the old resourceVersion: a second replace must conflict
        r = k.fail("replace", "-f", path)
        assert "Error from server (Conflict)" in r.stderr, r.stderr
        assert "the object has been modified" in r.stderr, r.stderr
    finally:
        k.run("delete", "configmap", name, "--ignore-not-found")


def test_json_patch(kubectl):
    k = kubectl
    s = unique("jp")
    name = f"web-{s}"
    k.run("create", "-f", k.write("cm.yaml", manifest(CONFIGMAP, s)))
    try:
        out = k.run("patch", "configmap", name, "--type=json", "-p",
                    '[{"op":"replace","path":"/data/count","value":"7"},'
                    '{"op":"remove","path":"/data/greeting"}]').stdout
        assert f"configmap/{name} patched" in out
        assert get_json(k, "cm", name)["data"] == {"count": "7"}
        # a failing "test" op rejects the whole patch (real k8s: 422) and changes nothing
        k.fail("patch", "configmap", name, "--type=json", "-p",
               '[{"op":"test","path":"/data/count","value":"8"},'
               '{"op":"add","path":"/data/new","value":"x"}]')
        assert get_json(k, "cm", name)["data"] == {"count": "7"}
    finally:
        k.run("delete", "configmap", name, "--ignore-not-found")


def test_chunked_list(kubectl):
    k = kubectl
    s = unique("chunk")
    docs = [f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}-{s}\n  labels:\n"
            f"    suite: {s}\ndata: {{i: \"{i}\"}}\n" for i in range(5)]
    k.run("create", "-f", k.write("c.yaml", "---\n".join(docs)))
    r = k.run("get", "configmaps", "-l", f"suite={s}", "--chunk-size=2", "-v=6")
    names = sorted(row["NAME"] for row in table(r.stdout))
    assert names == sorted(f"c{i}-{s}" for i in range(5)), r.stdout
    lists = [u for v, u, st in requests_in(r.stderr) if v == "GET" and "/configmaps" in u]
    assert len(lists) == 3 and all("limit=2" in u for u in lists), lists
    assert sum("continue=" in u for u in lists) == 2, lists
    k.run("delete", "configmaps", "-l", f"suite={s}")
    assert k.run("get", "configmaps", "-l", f"suite={s}", "-o", "name").stdout == ""


def test_unknown_field_rejected(kubectl):
    """kubectl's default --validate=strict: an unknown field fails (server- or client-side)."""
    k = kubectl
    s = unique("unk")
    path = k.write("p.yaml", manifest(POD, s).replace("  containers:\n",
                                                      "  frobnicate: true\n  containers:\n"))
    r = k.fail("create", "-f", path)
    assert re.search(r'unknown field "(spec\.)?frobnicate"', r.stderr), r.stderr
    k.fail("get", "pod", f"web-{s}")


def test_health_raw(kubectl):
    for p in ("/healthz", "/readyz", "/livez"):
        assert kubectl.run("get", "--raw", p).stdout.strip() == "ok", p


def test_apply_dir_stdin_json(kubectl):
    k = kubectl
    s = unique("dir")
    d = os.path.join(k.tmp, "manifests")
    os.makedirs(d)
    k.write("manifests/cm.yaml", manifest(CONFIGMAP, s))
    svc = yaml.safe_load(manifest(SERVICE, s))
    k.write("manifests/svc.json", json.dumps(svc))
    out = k.run("apply", "-f", d).stdout
    assert f"configmap/web-{s} created" in out and f"service/web-{s} created" in out, out
    out = k.run("apply", "-f", d).stdout
    assert f"configmap/web-{s} unchanged" in out and f"service/web-{s} unchanged" in out, out
    out = k.run("apply", "-f", "-", input=manifest(POD, s)).stdout
    assert f"pod/web-{s} created" in out
    out = k.run("get", "all", "-l", f"suite={s}", "-o", "name").stdout.split()
    assert f"pod/web-{s}" in out and f"service/web-{s}" in out, out
    out = k.run("delete", "-f", d).stdout
    assert f'configmap "web-{s}" deleted' in out and f'service "web-{s}" deleted' in out
    k.run("delete", "pod", f"web-{s}")


def test_get_all_categories(kubectl):
    k = kubectl
    s = unique("all")
    k.run("create", "-f", k.write("all.yaml", manifest(ALL4, s)))
    try:
        out = k.run("get", "all", "-l", f"suite={s}").stdout
        for kind in ("pod", "service", "deployment.apps"):
            assert re.search(rf"^{re.escape(kind)}/web-{s}\s", out, re.M), out
        # configmaps are not in the "all" category
        assert f"configmap/web-{s}" not in out
    finally:
        k.run("delete", "-f", k.tmp + "/all.yaml", "--ignore-not-found")


def test_diff(kubectl):
    """kubectl diff asks the server for a dry run (PATCH ...?dryRun=All) and must not change
    anything: exit 0 without differences, 1 with."""
    k = kubectl
    s = unique("diff")
    path = k.write("cm.yaml", manifest(CONFIGMAP, s))
    k.run("apply", "-f", path)
    rv = get_json(k, "cm", f"web-{s}")["metadata"]["resourceVersion"]
    r = k.run("diff", "-f", path, check=False)
    assert r.returncode == 0 and r.stdout == "", r
    path = k.write("cm.yaml", manifest(CONFIGMAP, s).replace("greeting: hello", "greeting: bye"))
    r = k.run("diff", "-f", path, check=False)
    assert r.returncode == 1, r
    assert "-  greeting: hello" in r.stdout and "+  greeting: bye" in r.stdout, r.stdout
    cm = get_json(k, "cm", f"web-{s}")
    assert cm["data"]["greeting"] == "hello" and cm["metadata"]["resourceVersion"] == rv
    k.run("delete", "-f", path)


def test_server_side_apply(kubectl):
    k = kubectl
    s = unique("ssa")
    name = f"web-{s}"
    path = k.write("cm.yaml", manifest(CONFIGMAP, s))
    out = k.run("apply", "--server-side", "-f", path).stdout
    assert f"configmap/{name} serverside-applied" in out, out
    # kubectl >= 1.21 hides managedFields unless asked (as against any Kubernetes)
    cm = get_json(k, "cm", name, "--show-managed-fields")
    assert cm["data"] == {"greeting": "hello", "count": "1"}
    mf = cm["metadata"].get("managedFields", [])
    assert any(m.get("manager") == "kubectl" and m.get("operation") == "Apply" for m in mf), mf
    path = k.write("cm.yaml", manifest(CONFIGMAP, s).replace("  greeting: hello\n", ""))
    k.run("apply", "--server-side", "-f", path)
    # the field this manager no longer applies is removed
    assert get_json(k, "cm", name)["data"] == {"count": "1"}
    k.run("delete", "-f", path)


def test_edit(kubectl):
    k = kubectl
    s = unique("edit")
    name = f"web-{s}"
    k.run("create", "-f", k.write("cm.yaml", manifest(CONFIGMAP, s)))
    k.env["KUBE_EDITOR"] = "sed -i -e s/greeting:\\ hello/greeting:\\ edited/"
    try:
        out = k.run("edit", "configmap", name).stdout
        assert f"configmap/{name} edited" in out, out
        assert get_json(k, "cm", name)["data"]["greeting"] == "edited"
    finally:
        del k.env["KUBE_EDITOR"]
        k.run("delete", "configmap", name)


def test_wait_node_ready_and_delete(kubectl, daemon):
    k = kubectl
    out = k.run("wait", "--for=condition=Ready", f"node/{daemon.node}", "--timeout=20s").stdout
    assert f"node/{daemon.node} condition met" in out, out
    s = unique("wd")
    k.run("create", "-f", k.write("cm.yaml", manifest(CONFIGMAP, s)))
    w = k.watch("wait", "-v=6", "--for=delete", f"configmap/web-{s}", "--timeout=30s")
    try:
        # delete only once kubectl's watch is open (-v=6 logs its response), so what is
        # tested is the watch seeing the delete, not a first GET missing the object
        w.wait_for_err(r"watch=true.*200 OK")
        k.run("delete", "configmap", f"web-{s}", "--wait=false")
        w.wait_for(rf"configmap/web-{s} condition met")
    finally:
        w.stop()
