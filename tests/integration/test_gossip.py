# SPDX-License-Identifier: Apache-2.0
"""Gossip membership between two real daemons, each in its own network namespace, joined by a
veth pair: join and the members view, a wrong key rejected and counted, a captured datagram
replayed and dropped (and nothing of the metadata in clear on the wire), key rotation with no
suspicion, graceful leave. The multi-node behaviour (crashes, partitions, 5 nodes) is in the
devcluster tests."""
import json
import os
import re
import secrets
import stat
import subprocess
import time

import pytest

from shoaltest import SHOALCTL, SHOALD, Netns, Shoald, sh

NET = "10.77.0."
PORT = 7946


def wait_for(cond, timeout=30, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def members(d):
    r = d.ctl("members", "-o", "json")
    return {m["name"]: m for m in json.loads(r.stdout)}


def metric(d, name, **labels):
    text = d.get("/metrics").body.decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pat = re.compile(r"^%s%s (\d+)$" % (re.escape(name), re.escape("{%s}" % want) if want else ""),
                     re.M)
    m = pat.search(text)
    assert m, f"{name}{{{want}}} not in /metrics"
    return int(m.group(1))


def dropped(d, reason, layer="seal"):
    return metric(d, "shoal_gossip_dropped_packets_total", layer=layer, reason=reason)


def sees_alive(d, *names):
    view = members(d)
    return all(view.get(n, {}).get("state") == "alive" for n in names)


class Pair:
    """Namespaces a and b joined by a veth pair (10.77.0.1 and .2)."""

    def __init__(self, tmp):
        self.a = Netns()
        self.b = Netns()
        self.veth = "shg" + secrets.token_hex(3)
        sh("ip", "link", "add", self.veth + "a", "netns", self.a.name, "type", "veth",
           "peer", "name", self.veth + "b", "netns", self.b.name)
        for ns, side, ip in ((self.a, "a", NET + "1"), (self.b, "b", NET + "2")):
            ns.run(["ip", "addr", "add", ip + "/24", "dev", self.veth + side])
            ns.run(["ip", "link", "set", self.veth + side, "up"])
        self.key_file = os.path.join(tmp, "key")
        with open(self.key_file, "w") as f:
            f.write(sh(SHOALCTL, "gossip", "keys", "generate").stdout)
        self.daemons = []

    def daemon(self, ns, ip, port=PORT, api_port=6443, join=None, key_file=None, cluster="t"):
        args = ["--gossip-listen", f"{ip}:{port}", "--cluster-name", cluster,
                "--gossip-key-file", key_file or self.key_file]
        if join:
            args += ["--join", join]
        if port != PORT:  # a second daemon in a namespace: the DNS address is taken
            args += ["--dns-listen", ""]
        d = Shoald(netns=ns, port=api_port, extra_args=args)
        self.daemons.append(d)
        return d.start()

    def close(self):
        for d in self.daemons:
            try:
                d.close()
            except Exception:
                pass
        self.a.close()
        self.b.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    p = Pair(str(tmp_path_factory.mktemp("gossip")))
    try:
        p.n1 = p.daemon(p.a, NET + "1")
        p.n2 = p.daemon(p.b, NET + "2", join=f"{NET}1:{PORT}")
        yield p
    finally:
        p.close()


def test_join_and_members_view(pair):
    n1, n2 = pair.n1, pair.n2
    wait_for(lambda: sees_alive(n1, n1.node, n2.node) and sees_alive(n2, n1.node, n2.node),
             what="both nodes alive in both views")
    # n2 claims its pod CIDR once it joined, then publishes it in its metadata
    view = wait_for(lambda: (lambda v: v if "podCIDR" in v[n2.node].get("meta", {}) else None)(
        members(n1)), what="n2's pod CIDR in its metadata")
    m2 = view[n2.node]
    assert m2["address"] == f"{NET}2:{PORT}"
    assert m2["incarnation"] >= 1
    assert set(m2) >= {"name", "address", "state", "incarnation", "rtt"}
    assert m2["meta"]["podCIDR"] == n2.get(f"/api/v1/nodes/{n2.node}").json()["spec"]["podCIDR"]
    assert m2["meta"]["podCIDR"].startswith("10.244.") and m2["meta"]["podCIDR"].endswith("/24")
    assert view[n1.node].get("self") is True
    # RTT measured once n1 probed n2 directly
    wait_for(lambda: members(n1)[n2.node]["rttMicros"] > 0, what="an RTT measurement")
    table = n1.ctl("members").stdout
    assert re.search(r"^NAME\s+ADDRESS\s+STATE\s+INCARNATION\s+RTT$", table, re.M)
    assert re.search(r"^%s\s+%s\s+alive\s+\d+" % (re.escape(n2.node), re.escape(f"{NET}2:{PORT}")),
                     table, re.M)
    api = n2.get("/apis/shoal.io/v1/members").json()
    assert {m["name"] for m in api["items"]} == {n1.node, n2.node}
    assert metric(n1, "shoal_gossip_members", state="alive") == 2
    assert metric(n1, "shoal_gossip_probes_total") > 0
    # the keyring file is the node's secret
    st = os.stat(os.path.join(n1.state_dir, "gossip.keyring"))
    assert stat.S_IMODE(st.st_mode) == 0o600


# Captures UDP datagrams to the gossip port on an interface, then sends the first one again.
CAPTURE_REPLAY = r"""
import socket, struct, sys, time
iface, port, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((iface, 0))
s.settimeout(20)
caught = []
deadline = time.time() + 20
while len(caught) < 5 and time.time() < deadline:
    pkt, addr = s.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    ip = pkt[14:]
    if ip[9] != 17:
        continue
    ihl = (ip[0] & 15) * 4
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    if dport == port:
        caught.append(ip[ihl + 8:])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(caught[0], (dst, port))
sys.stdout.write(b"".join(c.hex().encode() + b"\n" for c in caught).decode())
"""


def test_replayed_datagram_dropped(pair):
    n1, n2 = pair.n1, pair.n2
    wait_for(lambda: sees_alive(n1, n2.node), what="n2 alive")
    before = dropped(n1, "replay")
    r = pair.a.run(["python3", "-c", CAPTURE_REPLAY, pair.veth + "a", str(PORT), NET + "1"],
                   timeout=40)
    caught = [bytes.fromhex(l) for l in r.stdout.split()]
    assert caught
    wait_for(lambda: dropped(n1, "replay") > before, what="the replay counted")
    # what goes over the wire is sealed: none of the metadata appears in clear
    for c in caught:
        assert b"podCIDR" not in c and b"10.244.0.0" not in c
        assert n2.node.encode() not in c
    assert sees_alive(n1, n2.node)


def test_wrong_key_rejected_and_counted(pair, tmp_path):
    n1 = pair.n1
    wrong = tmp_path / "wrong"
    wrong.write_text(sh(SHOALCTL, "gossip", "keys", "generate").stdout)
    before = dropped(n1, "auth")
    bad = pair.daemon(pair.b, NET + "2", port=PORT + 1, api_port=6444,
                      join=f"{NET}1:{PORT}", key_file=str(wrong))
    try:
        wait_for(lambda: dropped(n1, "auth") > before, what="n1 counting unauthenticated packets")
        assert bad.node not in members(n1)
        assert members(bad).keys() == {bad.node}
        # another cluster name with the right key is as foreign as a wrong key
    finally:
        bad.close()
        pair.daemons.remove(bad)
    other = pair.daemon(pair.b, NET + "2", port=PORT + 2, api_port=6445,
                        join=f"{NET}1:{PORT}", cluster="other")
    try:
        before = dropped(n1, "auth")
        wait_for(lambda: dropped(n1, "auth") > before, what="another cluster's packets dropped")
        assert other.node not in members(n1)
    finally:
        other.close()
        pair.daemons.remove(other)


def keys(d, *args, check=True):
    r = d.ctl("gossip", "keys", *args, "-o", "json", check=check)
    return json.loads(r.stdout) if r.stdout.strip() else None


def test_key_rotation_without_suspicion(pair):
    n1, n2 = pair.n1, pair.n2
    wait_for(lambda: sees_alive(n1, n2.node) and sees_alive(n2, n1.node), what="both alive")
    old = open(pair.key_file).read().strip()
    new = sh(SHOALCTL, "gossip", "keys", "generate").stdout.strip()
    susp = [metric(d, "shoal_gossip_suspicions_total") for d in (n1, n2)]
    auth = [dropped(d, "auth") for d in (n1, n2)]

    res = keys(n1, "install", new)
    assert res["nodes"] == 2 and res["responded"] == 2 and res["errors"] == {}
    assert {k["key"]: k["installed"] for k in res["keys"]} == {old: 2, new: 2}
    # using a key that is not installed is refused, and the primary cannot be removed
    stray = sh(SHOALCTL, "gossip", "keys", "generate").stdout.strip()
    r = n1.ctl("gossip", "keys", "use", stray, check=False)
    assert r.returncode != 0 and "not installed" in r.stderr
    r = n2.ctl("gossip", "keys", "remove", old, check=False)
    assert r.returncode != 0 and "primary" in r.stderr

    res = keys(n2, "use", new)
    assert {k["key"]: k["primary"] for k in res["keys"]} == {old: 0, new: 2}
    res = keys(n1, "remove", old)
    assert [(k["key"], k["installed"], k["primary"]) for k in res["keys"]] == [(new, 2, 2)]
    listed = keys(n2, "list")
    assert [k["key"] for k in listed["keys"]] == [new]
    # the keyring file is written off the loop (lib/saver.h): on disk shortly after the answer
    def keyring_file(d):
        with open(os.path.join(d.state_dir, "gossip.keyring")) as f:
            return json.load(f)
    for d in (n1, n2):
        wait_for(lambda: keyring_file(d) == [new], what=f"{d.node}'s keyring file rotated")

    # traffic keeps flowing under the new key, and nobody was suspected on the way
    probes = metric(n1, "shoal_gossip_acks_total")
    wait_for(lambda: metric(n1, "shoal_gossip_acks_total") > probes + 2, what="acks under the new key")
    assert [metric(d, "shoal_gossip_suspicions_total") for d in (n1, n2)] == susp
    assert [dropped(d, "auth") for d in (n1, n2)] == auth
    assert sees_alive(n1, n2.node) and sees_alive(n2, n1.node)
    # a restart keeps the rotated keyring (the key file only seeds a new one)
    n2.restart()
    wait_for(lambda: sees_alive(n1, n2.node) and sees_alive(n2, n1.node), what="n2 back")


def keyring_break(d):
    """Make writing d's keyring fail (even as root): its path becomes a non-empty directory, so
    the rename of the written file over it fails (EISDIR). Returns the undo."""
    path = os.path.join(d.state_dir, "gossip.keyring")
    os.rename(path, path + ".aside")
    os.makedirs(os.path.join(path, "blocker"))

    def undo():
        if os.path.isdir(path):
            os.rmdir(os.path.join(path, "blocker"))
            os.rmdir(path)
            os.rename(path + ".aside", path)
    return undo


def keyring_file(d):
    with open(os.path.join(d.state_dir, "gossip.keyring")) as f:
        return json.load(f)


def test_keyring_save_failure_is_an_error(pair):
    """A keyring operation answers once every node's keyring file is written: a node whose
    write failed is an error (shoalctl exits 1), whether it is the node asked or another."""
    n1, n2 = pair.n1, pair.n2
    wait_for(lambda: sees_alive(n1, n2.node) and sees_alive(n2, n1.node), what="both alive")
    k1 = sh(SHOALCTL, "gossip", "keys", "generate").stdout.strip()
    k2 = sh(SHOALCTL, "gossip", "keys", "generate").stdout.strip()
    undo = [keyring_break(n2)]
    try:
        # another node's write fails
        r = n1.ctl("gossip", "keys", "install", k1, check=False)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert f"node {n2.node}: the keyring could not be saved (Is a directory)" in r.stderr, \
            r.stderr
        assert f"node {n1.node}" not in r.stderr, r.stderr
        res = keys(n1, "list")
        assert {k["key"]: k["installed"] for k in res["keys"]}[k1] == 2  # in use in memory
        assert k1 in keyring_file(n1)
        # the asked node's own write fails too
        undo.append(keyring_break(n1))
        res = keys(n1, "install", k2, check=False)
        assert set(res["errors"]) == {n1.node, n2.node}, res
        assert all("could not be saved" in m for m in res["errors"].values()), res
    finally:
        for u in undo:
            u()
    # repaired: the same operation again answers once both files hold the keyring
    res = keys(n1, "install", k2)
    assert res["errors"] == {} and res["responded"] == 2, res
    for d in (n1, n2):
        assert {k1, k2} <= set(keyring_file(d)), d.node
    # leave the keyring as it was
    for k in (k1, k2):
        res = keys(n2, "remove", k)
        assert res["errors"] == {}, res
    for d in (n1, n2):
        assert not {k1, k2} & set(keyring_file(d)), d.node


def test_leave(pair):
    n1, n2 = pair.n1, pair.n2
    wait_for(lambda: sees_alive(n1, n2.node), what="n2 alive")
    # (earlier tests restart n2: a restart slower than the suspicion timeout is a death)
    deaths = metric(n1, "shoal_gossip_deaths_total")
    out = n2.ctl("members", "leave").stdout
    assert "left" in out
    wait_for(lambda: members(n1).get(n2.node, {}).get("state") == "left", timeout=15,
             what="n2 seen as left")
    assert members(n2)[n2.node]["state"] == "left"
    assert metric(n1, "shoal_gossip_deaths_total") == deaths  # a leave is no death


def test_teardown_leaves(pair, tmp_path):
    """shoald --teardown on a running node is a decommission: the others see it leave."""
    n1 = pair.n1
    current = tmp_path / "key"  # the cluster's key now (rotation may have replaced the first)
    current.write_text([k["key"] for k in keys(n1, "list")["keys"] if k["primary"]][0])
    n3 = pair.daemon(pair.b, NET + "2", port=PORT + 3, api_port=6446, join=f"{NET}1:{PORT}",
                     key_file=str(current))
    wait_for(lambda: sees_alive(n1, n3.node), what="n3 alive")
    deaths = metric(n1, "shoal_gossip_deaths_total")
    # started: its pod CIDR claim settled and went out in its metadata (teardown must find
    # the daemon done starting: a later metadata update would refute the leave)
    wait_for(lambda: "podCIDR" in members(n1)[n3.node].get("meta", {}), what="n3 started")
    # the daemon still runs: teardown has it leave, stops it, then removes everything
    r = pair.b.run(n3.args() + ["--teardown"], check=False)
    assert "left the gossip cluster" in r.stdout + r.stderr, r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    assert n3.proc.wait(timeout=30) is not None  # the running daemon was stopped
    wait_for(lambda: members(n1).get(n3.node, {}).get("state") == "left", timeout=15,
             what="n3 seen as left")
    assert metric(n1, "shoal_gossip_deaths_total") == deaths  # a leave is no death
