# SPDX-License-Identifier: Apache-2.0
"""Pod network library (netplugin/) through shoal-netctl, inside a private node netns:
real traffic pod<->pod, node<->pod, masquerade to the outside, hostPort DNAT, and teardown
that leaves nothing behind. Every shoal-netctl call is a separate process, i.e. a daemon
restart from the library's point of view."""
import os

import pytest

from shoalnet import (CLUSTER_CIDR, NETCTL, NODE_IP, POD_CIDR, WORLD_IP, Node, free_port,
                      netns_list, run)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(NETCTL),
                                reason="needs root and build/shoal-netctl")


@pytest.fixture
def node():
    with Node() as n:
        n.ctl("node-setup")
        yield n


def test_two_pods_talk_to_each_other_and_the_node(node):
    a = node.ctl_json("pod-setup", "pod-a")
    b = node.ctl_json("pod-setup", "pod-b")
    assert a["ip"] != b["ip"]
    for p in (a, b):
        assert p["netnsName"].startswith("shoal-" + node.name + "-")
        assert p["netnsName"] in netns_list()          # visible to `ip netns`
        assert len(p["hostVeth"]) <= 15
        assert p["ip"].startswith("10.244.0.") and p["ip"] not in ("10.244.0.0", "10.244.0.1")
    # the pod sees one /32 and a default route through the link-local gateway
    addrs = node.ip_json("addr", "show", "dev", "eth0", ns=a["netnsName"])
    assert [(i["local"], i["prefixlen"]) for i in addrs[0]["addr_info"]
            if i["family"] == "inet"] == [(a["ip"], 32)]
    routes = node.ip_json("route", ns=a["netnsName"])
    assert {"dst": "default", "gateway": "169.254.1.1"}.items() <= routes[0].items() or \
        any(r.get("dst") == "default" and r.get("gateway") == "169.254.1.1" for r in routes)
    # the node routes each pod /32 to its veth
    host_routes = {r["dst"]: r["dev"] for r in node.ip_json("route")}
    assert host_routes[a["ip"]] == a["hostVeth"] and host_routes[b["ip"]] == b["hostVeth"]

    port = free_port()
    node.serve(b["netnsName"], port)
    assert node.connect(a["netnsName"], b["ip"], port) == "%s hello" % a["ip"]   # pod -> pod
    assert node.connect(node.ns, b["ip"], port) == "%s hello" % NODE_IP         # node -> pod
    node.serve(node.ns, port)
    assert node.connect(a["netnsName"], NODE_IP, port) == "%s hello" % a["ip"]   # pod -> node
    assert node.ping(a["netnsName"], b["ip"]) and node.ping(node.ns, a["ip"])


def test_egress_is_masqueraded_outside_the_cluster_cidr(node):
    a = node.ctl_json("pod-setup", "pod-a")
    ruleset = node.nft_ruleset()
    assert "table ip %s" % node.table in ruleset
    assert "ip saddr %s ip daddr != %s masquerade" % (POD_CIDR, CLUSTER_CIDR) in ruleset
    port = free_port()
    node.serve(node.world, port)
    # the world has no route to pod IPs: the reply only arrives because of masquerade
    assert node.connect(a["netnsName"], WORLD_IP, port) == "%s hello" % NODE_IP


def test_hostport_dnat_from_another_netns(node):
    hp, cp = free_port(), free_port()
    b = node.ctl_json("pod-setup", "pod-b", "--port", "tcp:%d:%d" % (hp, cp))
    assert "tcp dport %d dnat to %s:%d" % (hp, b["ip"], cp) in node.nft_ruleset()
    assert node.ctl("hostports-count", "pod-b").stdout.strip() == "1"
    node.serve(b["netnsName"], cp)
    # from the world netns to the node's address: DNAT in prerouting, client address kept
    assert node.connect(node.world, NODE_IP, hp) == "%s hello" % WORLD_IP
    # from the node itself: DNAT in output
    assert node.connect(node.ns, NODE_IP, hp) == "%s hello" % NODE_IP
    # setup again with other ports replaces the rules (no duplicates)
    node.ctl_json("pod-setup", "pod-b", "--port", "tcp:%d:%d" % (hp + 1, cp),
                  "--port", "udp:%d:%d" % (hp + 1, cp))
    assert node.ctl("hostports-count", "pod-b").stdout.strip() == "2"
    assert node.connect(node.world, NODE_IP, hp, check=False) is None


def test_teardown_leaves_nothing_behind(node):
    hp = free_port()
    pods = [node.ctl_json("pod-setup", "pod-%d" % i, "--port", "tcp:%d:80" % (hp + i))
            for i in range(2)]
    for i, p in enumerate(pods):
        node.ctl("pod-teardown", "pod-%d" % i)
        node.ctl("pod-teardown", "pod-%d" % i)          # idempotent
        assert p["netnsName"] not in netns_list()
    assert [l for l in node.ip_json("link") if l["ifname"].startswith("sh")] == []
    assert [r for r in node.ip_json("route") if r["dst"].startswith("10.244.")] == []
    assert node.leases() == []
    assert node.ctl("hostports-count").stdout.strip() == "0"
    assert "dnat" not in node.nft_ruleset()
    node.ctl("node-teardown")
    assert node.table not in node.nft_ruleset()
    node.ctl("node-setup")                              # and it comes back idempotently
    node.ctl("node-setup")
    assert node.nft_ruleset().count("masquerade comment") == 1


def test_restart_readopts_without_replumbing(node):
    a = node.ctl_json("pod-setup", "pod-a")
    ino = os.stat("/run/netns/" + a["netnsName"]).st_ino
    idx = node.ip_json("link", "show", "dev", a["hostVeth"])[0]["ifindex"]
    # what a restarted daemon reads from disk, without asking the kernel
    looked = node.ctl_json("pod-lookup", "pod-a")
    assert (looked["ip"], looked["hostVeth"], looked["netns"]) == \
        (a["ip"], a["hostVeth"], a["netns"])
    again = node.ctl_json("pod-setup", "pod-a")
    assert again["adopted"] is True and again["ip"] == a["ip"]
    assert node.ip_json("link", "show", "dev", a["hostVeth"])[0]["ifindex"] == idx
    node.ctl("pod-check", "pod-a")

    # drift: the host veth disappears -> check says so, setup repairs it in the same netns
    run("ip", "-n", node.ns, "link", "del", a["hostVeth"])
    p = node.ctl("pod-check", "pod-a", check=False)
    assert p.returncode != 0 and a["hostVeth"] in p.stderr
    fixed = node.ctl_json("pod-setup", "pod-a")
    assert fixed["adopted"] is False and fixed["ip"] == a["ip"]
    assert os.stat("/run/netns/" + a["netnsName"]).st_ino == ino
    node.ctl("pod-check", "pod-a")
    assert node.ping(node.ns, a["ip"])


def test_addresses_are_not_reused_across_restarts(node):
    a = node.ctl_json("pod-setup", "pod-a")["ip"]
    b = node.ctl_json("pod-setup", "pod-b")["ip"]
    node.ctl("pod-teardown", "pod-a")
    c = node.ctl_json("pod-setup", "pod-c")["ip"]
    assert c not in (a, b)
    leases = {l["owner"]: l["ip"] for l in node.leases()}
    assert leases == {"pod-b": b, "pod-c": c}


def test_pool_exhaustion_is_reported_and_leaks_nothing(node):
    cidr = "10.244.0.0/30"          # exactly one pod address
    node.ctl_json("pod-setup", "pod-a", cidr=cidr)
    p = node.ctl("pod-setup", "pod-b", cidr=cidr, check=False)
    assert p.returncode != 0 and "no free address" in p.stderr
    assert [l["owner"] for l in node.leases(cidr=cidr)] == ["pod-a"]
    assert not [n for n in netns_list() if n.startswith("shoal-" + node.name + "-")][1:]


def test_kernel_refusal_reaches_the_error_message_and_setup_rolls_back(node):
    p = node.ctl("pod-setup", "pod-x", "--mtu", "70000", check=False)
    # the kernel's extended ack text, not just strerror
    assert p.returncode != 0 and "mtu greater than device maximum" in p.stderr, p.stderr
    assert node.leases() == []
    assert not [n for n in netns_list() if n.startswith("shoal-" + node.name + "-")]
    assert [l for l in node.ip_json("link") if l["ifname"].startswith("sh")] == []

    p = node.ctl("pod-setup", "pod-y", "--netns-path", "/run/netns/does-not-exist",
                 check=False)
    assert p.returncode != 0 and "does-not-exist" in p.stderr
    assert node.leases() == []


def test_pod_files(tmp_path):
    d = tmp_path / "etc"
    run(NETCTL, "podfiles", str(d), "web-1", "shop", "cluster.local", "10.244.0.7", "10.96.0.10")
    assert (d / "resolv.conf").read_text() == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")
    assert "10.244.0.7\tweb-1\n" in (d / "hosts").read_text()
    assert (d / "hostname").read_text() == "web-1\n"
