# SPDX-License-Identifier: Apache-2.0
"""The cross-node pod network on tools/devcluster (daemon/routes.c, docs/datapath.md).

Every node routes the other members' pod CIDRs (10.244.K.0/24 on devcluster) from its members
view: direct routes over the cluster's bridge by default, a VXLAN device with --overlay vxlan.
Pods are created through each node's own API (each node runs the pods bound to it) and talk by
IP with `shoal-probe`, whose server answers with the client address it saw: pod -> pod across
nodes keeps the source address (no masquerade inside the cluster CIDR).
"""
import json
import os
import subprocess

import pytest

from devcluster import cluster_factory, tool, wait_for  # noqa: F401 (fixture)
from shoaltest import BUILD, ROOT

PROBE_IMAGE = os.path.join(BUILD, "images", "shoal-probe")
BUSYBOX = os.path.join(BUILD, "images", "busybox")
RTPROT = "0xd2"  # daemon/routes.h ROUTES_RTPROT
# with store replication every node's replica holds every pod
REPLICATED = "--tombstone-horizon-ms" in tool.shoald_help()
# the servers outlive their node's death: these tests kill nodes to test routes, not healing
TOLERATE_UNREACHABLE = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                         "effect": "NoExecute"}]


def images():
    for img, target in ((BUSYBOX, "build/images/busybox"),
                        (PROBE_IMAGE, "build/images/shoal-probe")):
        if not os.path.exists(os.path.join(img, "index.json")):
            subprocess.run(["make", "-s", "-C", ROOT, target], check=True,
                           stdout=subprocess.DEVNULL)
    return ["--image-preload", f"{BUSYBOX},{PROBE_IMAGE}"]


def create_server(nd, name):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"app": "net"}},
           "spec": {"terminationGracePeriodSeconds": 1, "nodeName": nd.name,
                    "tolerations": TOLERATE_UNREACHABLE,
                    "containers": [{"name": "echo", "image": "shoal-probe:latest",
                                    "command": ["shoal-probe", "serve", "8080"]}]}}
    st, body = nd.api("POST", "/api/v1/namespaces/default/pods", pod)
    assert st == 201, body


def pod_ip(nd, name):
    st, body = nd.api("GET", f"/api/v1/namespaces/default/pods/{name}")
    if st != 200:
        return None
    p = json.loads(body)
    if p.get("status", {}).get("phase") != "Running":
        return None
    return p["status"].get("podIP")


def probe(nd, pod, ip, count=1):
    """shoal-probe tcp in `pod` on node nd: [(server name, client address it saw)] or None."""
    r = nd.ctl("exec", pod, "--", "shoal-probe", "tcp", ip, "8080", str(count), check=False,
               timeout=60)
    out = []
    for line in r.stdout.splitlines():
        w = line.split()
        if not w or w[0] != "ok":
            return None
        kv = dict(x.split("=", 1) for x in w[2:] if "=" in x)
        out.append((w[1], kv.get("from")))
    return out or None


def routes(nd):
    """{pod CIDR: route line} of the node's routes to other nodes."""
    r = nd.in_ns("ip", "-4", "route", "show", "proto", RTPROT)
    return {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}


def pods_talk(c, ips, pairs):
    """Every (a, b) pair: the pod on a reaches the pod on b by IP, and b sees a's own IP."""
    for a, b in pairs:
        got = wait_for(lambda: probe(a, f"srv-{a.short}", ips[b.short]), 30,
                       f"{a.name} -> {b.name} pod")
        assert got == [(f"srv-{b.short}", ips[a.short])], got


def start_servers(c, nodes):
    for nd in nodes:
        create_server(nd, f"srv-{nd.short}")
    return {nd.short: wait_for(lambda nd=nd: pod_ip(nd, f"srv-{nd.short}"), 90,
                               f"srv-{nd.short} running") for nd in nodes}


def test_direct_routes_follow_membership(cluster_factory):  # noqa: F811
    c = cluster_factory(3, extra_args=images())
    nodes = c.nodes()
    n1, n2, n3 = nodes
    want = {nd.short: {o.pod_cidr for o in nodes if o.short != nd.short} for nd in nodes}
    for nd in nodes:
        got = wait_for(lambda nd=nd: routes(nd) if set(routes(nd)) == want[nd.short] else None,
                       30, f"{nd.name} routes")
        for o in nodes:
            if o.short != nd.short:
                assert f"via {o.ip} dev eth0" in got[o.pod_cidr], got
    ips = start_servers(c, nodes)
    for nd in nodes:
        assert ips[nd.short].startswith(nd.pod_cidr.rsplit(".", 1)[0] + "."), ips
    pods_talk(c, ips, [(a, b) for a in nodes for b in nodes if a.short != b.short])
    # and 20 connections in a row, every one from the client pod's own address
    got = probe(n1, "srv-n1", ips["n2"], count=20)
    assert got == [("srv-n2", ips["n1"])] * 20, got

    # a dead member's route is withdrawn everywhere; the survivors still talk
    c.kill("n3")
    for nd in (n1, n2):
        wait_for(lambda nd=nd: n3.pod_cidr not in routes(nd), 60,
                 f"{nd.name} withdraws {n3.name}'s route")
    assert probe(n1, "srv-n1", ips["n3"]) is None
    pods_talk(c, ips, [(n1, n2), (n2, n1)])
    m = n1.metrics()
    assert m.get('shoal_pod_route_changes_total{op="withdraw"}', 0) >= 1, m

    # back: the route returns, and its re-adopted pod answers from its old address
    c.start("n3")
    c.wait_converged(timeout=60)
    for nd in (n1, n2):
        wait_for(lambda nd=nd: n3.pod_cidr in routes(nd), 30,
                 f"{nd.name} routes {n3.name} again")
    wait_for(lambda: routes(n3) if set(routes(n3)) == want["n3"] else None, 30, "n3 routes")
    assert wait_for(lambda: pod_ip(n3, "srv-n3"), 60, "srv-n3 running") == ips["n3"]
    pods_talk(c, ips, [(n1, n3), (n3, n1), (n3, n2)])


def link_stats(nd, dev):
    r = nd.in_ns("ip", "-j", "-s", "link", "show", dev)
    d = json.loads(r.stdout)[0]
    return d["mtu"], d["stats64"]["tx"]["packets"], d["stats64"]["rx"]["packets"]


def test_vxlan_overlay(cluster_factory):  # noqa: F811
    c = cluster_factory(2, extra_args=images() + ["--overlay", "vxlan"])
    n1, n2 = c.nodes()
    for nd, other in ((n1, n2), (n2, n1)):
        got = wait_for(lambda nd=nd, o=other: routes(nd).get(o.pod_cidr), 30,
                       f"{nd.name} routes over vxlan")
        first = other.pod_cidr.split("/")[0]
        assert f"via {first} dev shoal-vxlan" in got and "onlink" in got, got
        d = json.loads(nd.in_ns("ip", "-d", "-j", "link", "show", "shoal-vxlan").stdout)[0]
        info = d["linkinfo"]["info_data"]
        assert (info["id"], info["port"], info["local"], info.get("learning")) == \
            (1, 4789, nd.ip, False), info
        assert d["mtu"] == 1500 - 50, d
        fdb = nd.in_ns("bridge", "fdb", "show", "dev", "shoal-vxlan").stdout
        assert f"dst {other.ip}" in fdb, fdb
    ips = start_servers(c, c.nodes())
    # the pods' MTU leaves room for the encapsulation
    r = n1.ctl("exec", "srv-n1", "--", "cat", "/sys/class/net/eth0/mtu", check=False)
    assert r.stdout.strip() == "1450", r
    before = {nd.short: link_stats(nd, "shoal-vxlan") for nd in c.nodes()}
    pods_talk(c, ips, [(n1, n2), (n2, n1)])
    for nd in c.nodes():
        _, tx, rx = link_stats(nd, "shoal-vxlan")
        assert tx > before[nd.short][1] and rx > before[nd.short][2], (before, tx, rx)
    # a full-size payload crosses (no fragmentation trouble at the pods' MTU)
    r = n1.ctl("exec", "srv-n1", "--", "ping", "-c", "1", "-W", "5", "-s", "1422",
               ips["n2"], check=False, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr

    # withdrawal takes the VTEP entries with it
    c.kill("n2")
    wait_for(lambda: n2.pod_cidr not in routes(n1), 60, "n1 withdraws n2's vxlan route")
    fdb = n1.in_ns("bridge", "fdb", "show", "dev", "shoal-vxlan").stdout
    assert f"dst {n2.ip}" not in fdb, fdb


def post(nd, path, obj):
    st, body = nd.api("POST", path, obj)
    assert st == 201, body
    return json.loads(body)


def served_by(nd, pod, ip, port, count):
    """Server names of `count` connections from `pod` to ip:port, with the client address each
    server saw: {name: {from}}."""
    got = probe_raw(nd, pod, ip, port, count)
    out = {}
    for name, frm in got:
        out.setdefault(name, set()).add(frm)
    return out


def probe_raw(nd, pod, ip, port, count):
    r = nd.ctl("exec", pod, "--", "shoal-probe", "tcp", ip, str(port), str(count), check=False,
               timeout=120)
    out = []
    for line in r.stdout.splitlines():
        w = line.split()
        if w and w[0] == "ok":
            kv = dict(x.split("=", 1) for x in w[2:] if "=" in x)
            out.append((w[1], kv.get("from")))
    return out


def mirror_pod(n1, nd, ip):
    """In n1's replica, a copy of nd's server pod (bound to nd, Running and Ready at ip): what
    replication will deliver; until it runs, each node's replica holds only its own pods."""
    name = f"mirror-{nd.short}"
    post(n1, "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "net"}},
        "spec": {"nodeName": nd.name, "containers": [
            {"name": "echo", "image": "shoal-probe:latest", "command": ["true"]}]}})
    st, body = n1.api("GET", f"/api/v1/namespaces/default/pods/{name}")
    pod = json.loads(body)
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": "True"},
                                    {"type": "ContainersReady", "status": "True"}]}
    st, body = n1.api("PUT", f"/api/v1/namespaces/default/pods/{name}/status", pod)
    assert st == 200, body


def test_services_with_backends_on_other_nodes(cluster_factory):  # noqa: F811
    """A Service on n1 selecting pods on all three nodes: ClusterIP, NodePort and the DNS name
    reach every node's pod, remote backends see the client pod's own address; a stopped node's
    backend leaves rotation on n1 (suspect first, then dead) and returns after SIGCONT. Without
    replication n1's replica holds mirrors of the other nodes' pods; with it, the real ones (and
    n2 serves the Service too)."""
    c = cluster_factory(3, extra_args=images())
    nodes = c.nodes()
    n1, n2, n3 = nodes
    ips = start_servers(c, nodes)
    if not REPLICATED:
        for nd in (n2, n3):
            mirror_pod(n1, nd, ips[nd.short])
    svc = post(n1, "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "net"},
                 "ports": [{"name": "tcp", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    vip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    every = {f"srv-{nd.short}" for nd in nodes}

    # ClusterIP from a pod on n1: all three backends, each seeing the client pod's address
    got = wait_for(lambda: (lambda s: s if set(s) == every else None)(
        served_by(n1, "srv-n1", vip, 80, 30)), 60, "ClusterIP reaches all three nodes' pods")
    assert all(f == {ips["n1"]} for f in got.values()), got

    # the DNS name, through the pod's resolv.conf (n1's cluster DNS)
    r = n1.ctl("exec", "srv-n1", "--", "nslookup", "web.default.svc.cluster.local", check=False)
    assert vip in r.stdout, r.stdout + r.stderr
    names = set()
    for _ in range(30):
        r = n1.ctl("exec", "srv-n1", "--", "sh", "-c", "nc -w 1 web 80 </dev/null",
                   check=False, timeout=30)
        if r.stdout.split():
            names.add(r.stdout.split()[0])
        if names >= {"srv-n2", "srv-n3"}:
            break
    assert names >= {"srv-n2", "srv-n3"}, names

    # NodePort from outside (the hub): n1 forwards to the other nodes' pods
    r = c.hub_run(os.path.join(BUILD, "shoal-probe"), "tcp", n1.ip, str(node_port), "30",
                  check=False)
    seen = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("ok ")}
    assert seen >= {"srv-n2", "srv-n3"}, r.stdout

    if REPLICATED:
        # every node has the Service and its Endpoints: a pod on n2 reaches all three too
        wait_for(lambda: (lambda s: s if set(s) == every else None)(
            served_by(n2, "srv-n2", vip, 80, 30)), 60, "ClusterIP from n2")

    # n3 stops answering: suspect, then dead on n1; its backend leaves rotation
    c.stop("n3")
    try:
        wait_for(lambda: "n3=suspect" in n1.logs(tail=200000) or
                 "n3=dead" in n1.logs(tail=200000), 60, "n1 takes n3 out of rotation")
        got = wait_for(lambda: (lambda s: s if set(s) == {"srv-n1", "srv-n2"} else None)(
            served_by(n1, "srv-n1", vip, 80, 20)), 30, "only n1 and n2 serve")
        if REPLICATED:
            wait_for(lambda: (lambda s: s if set(s) == {"srv-n1", "srv-n2"} else None)(
                served_by(n2, "srv-n2", vip, 80, 20)), 30, "only n1 and n2 serve on n2")
        wait_for(lambda: (n1.members_api() or {}).get(n3.name, {}).get("state") == "dead", 60,
                 "n3 dead on n1")
        got = served_by(n1, "srv-n1", vip, 80, 20)
        assert set(got) == {"srv-n1", "srv-n2"}, got
    finally:
        c.cont("n3")
    c.wait_converged(timeout=60)
    wait_for(lambda: "srv-n3" in served_by(n1, "srv-n1", vip, 80, 20), 60,
             "n3's backend back in rotation")
    log = n1.logs(tail=400000)
    assert f"{n3.name}=suspect" in log, "the suspect state alone took n3 out of rotation"
