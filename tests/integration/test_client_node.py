# SPDX-License-Identifier: Apache-2.0
"""Unmodified @kubernetes/client-node 1.4.0 against a real shoald.

The scripts in clientnode/ run under node inside the daemon's network namespace, with a kubeconfig
(plain HTTP, `insecure-skip-tls-verify: true`) in a temporary HOME. Each script asserts on what the
client returns (node:assert) and prints one JSON line {"ok": true, ...} when everything held.
"""
import json
import os
import shutil

import pytest

from kubeclients import (CLIENT_NODE_MODULES, make_tmp, missing_reason, rm_tmp, start_daemon,
                         stop_daemon, unique)

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "clientnode")
PKG = os.path.join(CLIENT_NODE_MODULES, "@kubernetes", "client-node", "package.json")


def _skip_reason():
    if not shutil.which("node"):
        return "node is not installed (tools/install-deps installs nodejs)"
    return missing_reason("client-node", PKG)


@pytest.fixture(scope="module")
def daemon():
    why = _skip_reason()
    if why:
        pytest.skip(why)
    d, ns = start_daemon()
    yield d
    stop_daemon(d, ns)


@pytest.fixture
def node_env(daemon):
    tmp = make_tmp()
    kubeconfig = os.path.join(tmp, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: shoal
  cluster:
    server: {daemon.server}
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
           "SHOAL_CLIENT_NODE_MODULES": CLIENT_NODE_MODULES, "SHOAL_NODE": daemon.node}
    yield env
    rm_tmp(tmp)


def run_script(daemon, env, script, *args, timeout=90):
    r = daemon.netns.run([shutil.which("node"), os.path.join(SCRIPTS, script), *args],
                         check=False, env=env, cwd=env["HOME"], timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"clientnode/{script} {' '.join(args)} exited {r.returncode}\n"
                    f"stdout:\n{r.stdout}\nstderr:\n{r.stderr[-6000:]}\n"
                    f"shoald log tail:\n{daemon.logs()[-3000:]}")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result line from {script}:\n{r.stdout}\n{r.stderr}"
    res = json.loads(lines[-1])
    assert res.get("ok") is True, res
    return res


def test_core_crud(daemon, node_env):
    name = unique("cn-crud")
    res = run_script(daemon, node_env, "crud.mjs", name)
    assert res["uid"]
    assert daemon.get(f"/api/v1/namespaces/default/pods/{name}").status == 404


def test_watch_pods(daemon, node_env):
    res = run_script(daemon, node_env, "watch.mjs", unique("cn-watch"))
    assert res["events"][0] == "ADDED" and res["events"][-1] == "DELETED"


def test_apps_deployment(daemon, node_env):
    name = unique("cn-apps")
    run_script(daemon, node_env, "apps.mjs", name)
    assert daemon.get(f"/apis/apps/v1/namespaces/default/deployments/{name}").status == 404


def test_patch_types(daemon, node_env):
    run_script(daemon, node_env, "patch.mjs", unique("cn-patch"))


def test_informer(daemon, node_env):
    res = run_script(daemon, node_env, "informer.mjs", unique("cn-inf"))
    assert ["delete", res["seen"][-1][1]] == res["seen"][-1][:2]


def test_paging_and_deletecollection(daemon, node_env):
    assert run_script(daemon, node_env, "paging.mjs", unique("cn-page"))["pages"] == 3
