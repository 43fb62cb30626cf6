# SPDX-License-Identifier: Apache-2.0
"""Socket-level load balancing with real programs, real sockets and real namespaces.

Topology (all names carry a random suffix and are removed at the end, even on failure):

    cgroup2 <root>/shoal-bpf-test-XXXX       programs attached here; the client process lives here
    netns shoal-bpf-node-XXXX                the client's network (a node)
      veth 10.250.1.1 <-> 10.250.1.2         netns shoal-bpf-b1-XXXX, backend "b1"
      veth 10.250.2.1 <-> 10.250.2.2         netns shoal-bpf-b2-XXXX, backend "b2"

Services are programmed with build/shoal-lbctl, a new short-lived process per change, which is
also the daemon-restart path (pinned maps and links adopted, never re-created).
"""
import errno
import json
import os
import re
import secrets
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SHOAL_BUILD", os.path.join(ROOT, "build"))
LBCTL = os.path.join(BUILD, "shoal-lbctl")
PY = "/usr/bin/python3"

VIP = "10.96.7.7"
PORT = 8080

BACKEND = r"""
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(128)
    while True:
        c, peer = s.accept()
        c.sendall(("%s %s\n" % (name, peer[0])).encode()); c.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        d, peer = s.recvfrom(2048)
        s.sendto(("%s %s" % (name, d.decode())).encode(), peer)
threading.Thread(target=tcp, daemon=True).start()
print("ready", flush=True)
udp()
"""

# A long-lived client: reads one command per line, answers one JSON line. Sockets it opens stay
# open between commands (connected UDP sockets must outlive a backend removal).
CLIENT = r"""
import json, socket, sys, time
socks = {}
def res(**kw):
    print(json.dumps(kw), flush=True)
for line in sys.stdin:
    a = line.split()
    try:
        if a[0] == "tcp":
            s = socket.socket(); s.settimeout(3)
            t = time.monotonic()
            try:
                s.connect((a[1], int(a[2])))
            except OSError as e:
                res(err=e.errno, secs=time.monotonic() - t); continue
            peer = s.getpeername()
            data = s.makefile().readline().split()
            s.close()
            res(name=data[0], peer=list(peer))
        elif a[0] == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
            try:
                s.sendto(b"hi", (a[1], int(a[2])))
                d, src = s.recvfrom(2048)
            except OSError as e:
                res(err=e.errno); continue
            finally:
                s.close()
            res(name=d.decode().split()[0], src=list(src))
        elif a[0] == "topen":
            s = socket.socket(); s.settimeout(3)
            s.connect((a[1], int(a[2])))
            socks[a[3]] = s
            res(peer=list(s.getpeername()), name=s.makefile().readline().split()[0])
        elif a[0] == "tpeer":
            res(peer=list(socks[a[1]].getpeername()))
        elif a[0] == "uconn":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
            s.connect((a[1], int(a[2])))
            socks[a[3]] = s
            res(peer=list(s.getpeername()))
        elif a[0] == "usend":
            s = socks[a[1]]
            try:
                s.send(b"hi")
                d = s.recv(2048)
            except OSError as e:
                res(err=e.errno); continue
            res(name=d.decode().split()[0])
        elif a[0] == "quit":
            break
    except Exception as e:
        res(exc=repr(e))
"""


def sh(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


class Env:
    def __init__(self):
        self.sfx = secrets.token_hex(3)
        self.node = "shoal-bpf-t" + self.sfx
        self.pin_root = "/sys/fs/bpf/shoal"
        self.procs = []
        self.netns = []
        self.cgroup = None

    def lbctl(self, *args, check=True):
        r = sh(LBCTL, "--node", self.node, *args, check=False)
        if check and r.returncode != 0:
            raise AssertionError("shoal-lbctl %s: %s" % (" ".join(args), r.stderr))
        return r

    def svc(self, frontend, *backends, flags=()):
        r = self.lbctl("svc-set", frontend, *flags, *backends)
        return json.loads(r.stdout)

    def ns(self, name):
        full = "shoal-bpf-%s-%s" % (name, self.sfx)
        sh("ip", "netns", "add", full)
        self.netns.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def setup(self):
        root = sh(LBCTL, "cgroup2-root").stdout.strip()
        self.cgroup = os.path.join(root, "shoal-bpf-test-" + self.sfx)
        os.mkdir(self.cgroup)
        self.node_ns = self.ns("node")
        for i in (1, 2):
            b = self.ns("b%d" % i)
            host, peer = "sb%d-%s" % (i, self.sfx), "sbp%d-%s" % (i, self.sfx)
            sh("ip", "link", "add", host, "netns", self.node_ns, "type", "veth",
               "peer", "name", peer, "netns", b)
            sh("ip", "-n", self.node_ns, "addr", "add", "10.250.%d.1/24" % i, "dev", host)
            sh("ip", "-n", b, "addr", "add", "10.250.%d.2/24" % i, "dev", peer)
            sh("ip", "-n", self.node_ns, "link", "set", host, "up")
            sh("ip", "-n", b, "link", "set", peer, "up")
            p = subprocess.Popen(["ip", "netns", "exec", b, PY, "-c", BACKEND, "b%d" % i,
                                  str(PORT)], stdout=subprocess.PIPE, text=True)
            self.procs.append(p)
            assert p.stdout.readline().strip() == "ready"
        self.lbctl("--cgroup", self.cgroup, "attach")
        # the client joins the cgroup before it creates any socket
        self.client = subprocess.Popen(
            ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "$2" -c "$3"',
             self.cgroup, self.node_ns, PY, CLIENT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(self.client)

    def ask(self, *words):
        self.client.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.client.stdin.flush()
        line = self.client.stdout.readline()
        assert line, "client died"
        out = json.loads(line)
        assert "exc" not in out, out
        return out

    def teardown(self):
        if self.cgroup:
            self.lbctl("teardown", check=False)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for n in self.netns:
            sh("ip", "netns", "del", n, check=False)
        if self.cgroup and os.path.isdir(self.cgroup):
            for _ in range(50):
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.1)
        leftover = os.path.join(self.pin_root, self.node)
        assert not os.path.exists(leftover), "pins left behind: " + leftover


@pytest.fixture
def env():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    e = Env()
    try:
        e.setup()
        yield e
    finally:
        e.teardown()


FE = "%s:%d" % (VIP, PORT)
B1 = "10.250.1.2:%d" % PORT
B2 = "10.250.2.2:%d" % PORT


def test_tcp_reaches_every_backend_and_peer_is_the_vip(env):
    env.svc(FE, B1, B2)
    seen = set()
    for _ in range(40):
        r = env.ask("tcp", VIP, PORT)
        assert r["peer"] == [VIP, PORT], r
        seen.add(r["name"])
    assert seen == {"b1", "b2"}
    # the backend saw the client's own address: no NAT, the socket went straight there
    r = env.ask("tcp", "10.250.1.2", PORT)
    assert r["name"] == "b1"
    # connected to the backend itself: getpeername() shows it, not the service
    assert r["peer"] == ["10.250.1.2", PORT], r


def test_udp_unconnected_and_connected(env):
    env.svc(FE + "/udp", B1, B2)
    seen = set()
    for _ in range(30):
        r = env.ask("udp", VIP, PORT)
        assert r["src"] == [VIP, PORT], r  # recvmsg4 shows the VIP, not the backend
        seen.add(r["name"])
    assert seen == {"b1", "b2"}
    c = env.ask("uconn", VIP, PORT, "s1")
    assert c["peer"] == [VIP, PORT]
    assert env.ask("usend", "s1")["name"] in ("b1", "b2")


FE2 = "10.96.7.8:%d" % PORT
NP = "10.250.1.1:30080"  # a node address : nodePort


def slot_flags(env):
    """{(frontend ip, port): set of the flags of its backend slots} from the pinned shoal_svc."""
    pin = os.path.join(env.pin_root, env.node, "shoal_svc")
    out = {}
    for e in json.loads(sh("bpftool", "-j", "map", "dump", "pinned", pin).stdout):
        k, v = e["formatted"]["key"], e["formatted"]["value"]
        if k["slot"] and k["proto"] == 6:
            ip = ".".join(str((k["vip"] >> s) & 255) for s in (0, 8, 16, 24))
            port = ((k["port"] & 255) << 8) | (k["port"] >> 8)
            out.setdefault((ip, port), set()).add(v["flags"])
    return out


def test_peer_is_what_the_app_connected_to(env):
    """One backend set behind a ClusterIP, a second service and a node address's nodePort.
    shoal_be_rev names the first frontend, so connect() through it writes nothing per socket;
    the other two frontends' slots are flagged and their connections keep a record."""
    for fe in (FE, FE2, NP):
        env.svc(fe, B1, B2)
    flags = slot_flags(env)
    slot0_copy_agrees(env)  # the copies carry the same flags
    assert flags[(VIP, PORT)] == {0}, flags
    assert flags[("10.96.7.8", PORT)] == {16} and flags[("10.250.1.1", 30080)] == {16}, flags
    for fe in (FE, FE2, NP):
        ip, port = fe.split(":")
        seen = set()
        for _ in range(30):
            r = env.ask("tcp", ip, port)
            assert r["peer"] == [ip, int(port)], (fe, r)
            seen.add(r["name"])
            if seen == {"b1", "b2"}:
                break
        assert seen == {"b1", "b2"}, fe
    for b in ("10.250.1.2", "10.250.2.2"):
        assert env.ask("tcp", b, PORT)["peer"] == [b, PORT]
    # open sockets: through the first frontend (no record) and the second (a record)
    a = env.ask("topen", VIP, PORT, "a")
    b = env.ask("topen", "10.96.7.8", PORT, "b")
    assert a["peer"] == [VIP, PORT] and b["peer"] == ["10.96.7.8", PORT]
    be_a = "10.250.%s.2" % a["name"][1]
    # the first frontend goes: its socket shows the real peer, the other keeps its frontend;
    # new connections through the others are still shown theirs
    env.lbctl("svc-del", FE)
    assert env.ask("tpeer", "a")["peer"] == [be_a, PORT]
    assert env.ask("tpeer", "b")["peer"] == ["10.96.7.8", PORT]
    assert env.ask("tcp", "10.96.7.8", PORT)["peer"] == ["10.96.7.8", PORT]
    # it comes back: the reverse entry never moved, so the old socket is shown it again
    env.svc(FE, B1, B2)
    assert env.ask("tpeer", "a")["peer"] == [VIP, PORT]
    assert slot_flags(env)[(VIP, PORT)] == {0}
    # a restart keeps the reverse map and the flags
    env.lbctl("--cgroup", env.cgroup, "attach")
    assert slot_flags(env) == flags
    slot0_copy_agrees(env)
    for fe in (FE, FE2, NP):
        ip, port = fe.split(":")
        assert env.ask("tcp", ip, port)["peer"] == [ip, int(port)]
    # UDP frontends sharing the backends: replies and connected peers show each one's own
    for fe in (FE, FE2):
        env.svc(fe + "/udp", B1, B2)
    for fe in (FE, FE2):
        ip, port = fe.split(":")
        assert env.ask("udp", ip, port)["src"] == [ip, int(port)]
        assert env.ask("uconn", ip, port, "u" + ip)["peer"] == [ip, int(port)]
        assert env.ask("usend", "u" + ip)["name"] in ("b1", "b2")
    # nothing names the backends any more: the reverse map is empty
    for fe in (FE, FE2, NP):
        env.lbctl("svc-del", fe)
    pin = os.path.join(env.pin_root, env.node, "shoal_be_rev")
    assert json.loads(sh("bpftool", "-j", "map", "dump", "pinned", pin).stdout) == []


def ip4(n):
    return ".".join(str((n >> s) & 255) for s in (0, 8, 16, 24))


def svc_entries(env, proto):
    """{(frontend ip, port): {slot: value}} of the pinned shoal_svc."""
    pin = os.path.join(env.pin_root, env.node, "shoal_svc")
    out = {}
    for e in json.loads(sh("bpftool", "-j", "map", "dump", "pinned", pin).stdout):
        k, v = e["formatted"]["key"], e["formatted"]["value"]
        if k["proto"] == proto:
            port = ((k["port"] & 255) << 8) | (k["port"] >> 8)
            out.setdefault((ip4(k["vip"]), port), {})[k["slot"]] = v
    return out


SVC_TBL = 1 << 5


def tbl_entries(env, base, n):
    """shoal_be_tbl[base .. base + n) as (ip, port, flags)."""
    pin = os.path.join(env.pin_root, env.node, "shoal_be_tbl")
    out = []
    for i in range(base, base + n):
        key = [str((i >> s) & 255) for s in (0, 8, 16, 24)]
        v = json.loads(sh("bpftool", "-j", "map", "lookup", "pinned", pin, "key",
                          *key).stdout)["formatted"]["value"]
        out.append((v["ip"], v["port"], v["flags"]))
    return out


def slot0_copy_agrees(env, proto=6):
    """Slot 0's copy of the backends (up to 4) is its slots' addresses and flags, in order;
    a bigger service's copy is empty and its region of shoal_be_tbl (SHOAL_SVC_TBL) holds
    them instead. Returns {frontend: backends in the copy}."""
    out = {}
    for fe, slots in svc_entries(env, proto).items():
        v0 = slots[0]
        n = v0["count"] or v0["term_count"]
        base = 0 if v0["count"] else 0x8000
        copy = [(b["ip"], b["port"], b["flags"]) for b in v0["be"]]
        if n > 4:
            assert copy == [(0, 0, 0)] * 4, (fe, v0)
            want = [(slots[base + i + 1]["be"][0]["ip"], slots[base + i + 1]["be"][0]["port"],
                     slots[base + i + 1]["flags"]) for i in range(n)]
            if v0["flags"] & SVC_TBL:
                assert tbl_entries(env, v0["backend_id"], n) == want, (fe, v0)
        else:
            want = [(slots[base + i + 1]["be"][0]["ip"], slots[base + i + 1]["be"][0]["port"],
                     slots[base + i + 1]["flags"]) for i in range(n)]
            assert copy == want + [(0, 0, 0)] * (4 - n), (fe, v0, want)
        out[fe] = n if n <= 4 else 0
    return out


def test_slot0_copy_up_to_four_backends(env):
    """Up to 4 backends, slot 0 carries their addresses (connect() and sendmsg() read nothing
    else); a fifth moves the choice to the slots; shrinking back brings the copy back. Every
    backend stays reachable and every peer shows the frontend either way."""
    more = {}  # three more backends on other ports of the two backend namespaces
    for name, i, port in (("b3", 1, PORT + 1), ("b4", 2, PORT + 2), ("b5", 1, PORT + 3)):
        p = subprocess.Popen(["ip", "netns", "exec", "shoal-bpf-b%d-%s" % (i, env.sfx), PY, "-c",
                              BACKEND, name, str(port)], stdout=subprocess.PIPE, text=True)
        env.procs.append(p)
        assert p.stdout.readline().strip() == "ready"
        more[name] = "10.250.%d.2:%d" % (i, port)
    names = {B1: "b1", B2: "b2"}
    names.update({v: k for k, v in more.items()})
    five = [B1, B2, more["b3"], more["b4"], more["b5"]]
    for bes, inline in ((five[:2], 2), (five, 0), (five[1:], 4), ([five[2]], 1)):
        env.svc(FE, *bes)
        env.svc(FE + "/udp", *bes)
        assert slot0_copy_agrees(env, 6)[(VIP, PORT)] == inline
        assert slot0_copy_agrees(env, 17)[(VIP, PORT)] == inline
        want = {names[b] for b in bes}
        for proto in ("tcp", "udp"):
            seen = set()
            for _ in range(80):
                r = env.ask(proto, VIP, PORT)
                assert r["peer" if proto == "tcp" else "src"] == [VIP, PORT], r
                seen.add(r["name"])
                if seen == want:
                    break
            assert seen == want, (proto, bes)
    # a restart over the pins keeps the copies as they are
    env.lbctl("--cgroup", env.cgroup, "attach")
    assert slot0_copy_agrees(env, 6)[(VIP, PORT)] == 1


def test_service_without_backends_refuses_at_once(env):
    env.svc(FE)
    env.svc(FE + "/udp")
    r = env.ask("tcp", VIP, PORT)
    assert r["err"] == errno.EHOSTUNREACH, r
    assert r["secs"] < 0.5
    assert env.ask("udp", VIP, PORT)["err"] == errno.EHOSTUNREACH
    # and a backend appearing makes it work, with nothing else touched
    env.svc(FE, B2)
    assert env.ask("tcp", VIP, PORT)["name"] == "b2"


def test_session_affinity_client_ip(env):
    env.svc(FE, B1, B2, flags=("--affinity=60",))
    names = {env.ask("tcp", VIP, PORT)["name"] for _ in range(20)}
    assert len(names) == 1
    pinned = names.pop()
    # the pinned backend drains: new connections move to the other one
    other = "b2" if pinned == "b1" else "b1"
    env.svc(FE, *([B1, B2 + ",terminating"] if pinned == "b2" else [B1 + ",terminating", B2]),
            flags=("--affinity=60",))
    assert {env.ask("tcp", VIP, PORT)["name"] for _ in range(10)} == {other}
    # terminating backends still serve when nothing ready is left
    env.svc(FE, B1 + ",terminating", flags=("--affinity=60",))
    assert env.ask("tcp", VIP, PORT)["name"] == "b1"


def test_backend_removal_reselects_connected_udp(env):
    env.svc(FE + "/udp", B1, B2)
    env.ask("uconn", VIP, PORT, "s1")
    first = env.ask("usend", "s1")["name"]
    assert env.ask("usend", "s1")["name"] == first  # connected: stays on its backend
    keep = B2 if first == "b1" else B1
    out = env.svc(FE + "/udp", keep)
    assert out["udp_destroyed"] == 1, out  # s1, the one socket connected to it
    # the removed backend is still up, yet the old socket no longer reaches it ...
    r = env.ask("usend", "s1")
    assert "err" in r, r
    # ... and a reconnect (what DNS clients do on error) lands on the remaining backend
    env.ask("uconn", VIP, PORT, "s2")
    assert env.ask("usend", "s2")["name"] != first
    # unconnected sockets re-pick per datagram
    assert {env.ask("udp", VIP, PORT)["name"] for _ in range(10)} == {"b2" if first == "b1" else "b1"}


def test_changes_write_only_what_changed(env):
    backends = ["10.250.1.%d:%d" % (i, PORT) for i in range(10, 30)]
    # revnat, backends, their shoal_be_rev entries (TCP), slots, the table region, slot 0
    assert env.svc(FE, *backends)["writes"] == 1 + 20 + 20 + 20 + 20 + 1
    changed = backends[:7] + ["10.250.1.99:%d" % PORT] + backends[8:]
    # new backend entry and its be_rev entry, its slot, the old backend's two entries gone;
    # the list connect4 reads goes to a new region whole (20, one syscall), then slot 0
    assert env.svc(FE, *changed)["writes"] == 5 + 20 + 1
    assert env.svc(FE, *changed)["writes"] == 0
    # a small service: its slot 0 is its list, nothing else
    assert env.svc(FE, *changed[:3])["writes"] == 17 * 3 + 1


def test_restart_keeps_traffic_and_adopts_links(env):
    env.svc(FE, B1)
    before = sh("bpftool", "cgroup", "show", env.cgroup).stdout
    # a "daemon" restart: load again, adopt pinned maps and links, swap programs in place
    env.lbctl("--cgroup", env.cgroup, "attach")
    after = sh("bpftool", "cgroup", "show", env.cgroup).stdout
    assert len(re.findall(r"shoal_sock4_", after)) == 4, after
    assert before != after  # new program ids, same links
    assert env.ask("tcp", VIP, PORT)["name"] == "b1"
    dump = json.loads(env.lbctl("dump").stdout)
    assert dump[0]["frontend"] == FE + "/tcp"
    assert dump[0]["backends"][0]["ip"] == "10.250.1.2"


def test_restart_over_an_older_service_map_layout(env):
    """shoal_svc pinned by a build whose slot 0 had no copy of the backends (24-byte values;
    16 before the slots carried an address): tools refuse to read it, a restart re-creates it
    and programs it again."""
    env.svc(FE, B1)
    pin = os.path.join(env.pin_root, env.node, "shoal_svc")
    os.unlink(pin)  # the attached programs keep theirs
    sh("bpftool", "map", "create", pin, "type", "hash", "key", "12", "value", "24",
       "entries", "1024", "name", "shoal_svc")
    r = env.lbctl("dump", check=False)
    assert r.returncode != 0 and "another layout" in r.stderr, r.stderr
    env.lbctl("--cgroup", env.cgroup, "attach")
    info = json.loads(sh("bpftool", "-j", "map", "show", "pinned", pin).stdout)
    assert info["bytes_value"] == 48, info
    env.svc(FE, B1, B2)
    seen = set()
    for _ in range(40):
        r = env.ask("tcp", VIP, PORT)
        assert r["peer"] == [VIP, PORT], r
        seen.add(r["name"])
        if seen == {"b1", "b2"}:
            break
    assert seen == {"b1", "b2"}


def test_pinned_maps_dump_named_fields(env):
    env.svc(FE, B1, flags=("--affinity",))
    env.svc(FE + "/udp", B1)
    env.ask("tcp", VIP, PORT)
    # unconnected UDP keeps its records in shoal_sk_nat (connected sockets in socket storage)
    assert env.ask("udp", VIP, PORT)["name"] == "b1"
    pins = os.path.join(env.pin_root, env.node)
    svc = sh("bpftool", "map", "dump", "pinned", os.path.join(pins, "shoal_svc")).stdout
    for field in ("vip", "port", "proto", "slot", "backend_id", "count", "rev_nat",
                  "affinity_timeout", "be", "ip"):
        assert '"%s"' % field in svc, svc
    be = sh("bpftool", "map", "dump", "pinned", os.path.join(pins, "shoal_backend")).stdout
    assert '"ip"' in be and '"flags"' in be
    aff = sh("bpftool", "map", "dump", "pinned", os.path.join(pins, "shoal_affinity")).stdout
    assert '"last_used_ns"' in aff and '"backend_id"' in aff
    nat = sh("bpftool", "map", "dump", "pinned", os.path.join(pins, "shoal_sk_nat")).stdout
    assert '"cookie"' in nat and '"vip"' in nat


def test_refuses_root_cgroup(env):
    root = sh(LBCTL, "cgroup2-root").stdout.strip()
    r = sh(LBCTL, "--node", env.node + "x", "--cgroup", root, "attach", check=False)
    assert r.returncode != 0 and "root cgroup" in r.stderr
    sh(LBCTL, "--node", env.node + "x", "teardown", check=False)


def test_full_map_refuses_without_partial_state():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    node = "shoal-bpf-full" + secrets.token_hex(3)
    run = lambda *a, check=True: sh(LBCTL, "--node", node, *a, check=check)
    try:
        # no --cgroup: programs loaded and maps pinned, nothing attached
        run("--svc-max", "8", "--backend-max", "4", "attach")
        run("svc-set", FE, B1, B2)
        r = run("svc-set", "10.96.7.8:80", "10.250.1.5:80", "10.250.1.6:80", "10.250.1.7:80",
                check=False)
        assert r.returncode != 0 and "backend map full" in r.stderr, r.stderr
        dump = json.loads(run("dump").stdout)
        assert [d["frontend"] for d in dump] == [FE + "/tcp"]
        stats = json.loads(run("stats").stdout)
        assert stats["backends"] == 2 and stats["backend_max"] == 4
        # a restart with bigger sizes keeps the pinned (smaller) maps and their contents
        run("--svc-max", "100", "attach")
        assert json.loads(run("stats").stdout)["svc_max"] == 8
    finally:
        sh(LBCTL, "--node", node, "teardown", check=False)
    assert not os.path.exists("/sys/fs/bpf/shoal/" + node)


# One process in a backend namespace listening on many TCP ports: backend "p<port>".
MULTI = r"""
import selectors, socket, sys
ports = [int(p) for p in sys.argv[1:]]
sel = selectors.DefaultSelector()
for p in ports:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(512); sel.register(s, selectors.EVENT_READ, p)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        c, peer = key.fileobj.accept()
        c.sendall(("p%d %s\\n" % (key.data, peer[0])).encode()); c.close()
"""

# Connects to a frontend as fast as it can for `secs`, from the node's cgroup: counts per
# backend name and every failure (errno or exception).
BURST = r"""
import collections, json, socket, sys, time
vip, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
seen, errs, n = collections.Counter(), collections.Counter(), 0
print("go", flush=True)
end = time.monotonic() + secs
while time.monotonic() < end:
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((vip, port))
        seen[s.makefile().readline().split()[0]] += 1
    except OSError as e:
        errs[str(e.errno)] += 1
    finally:
        s.close()
    n += 1
print(json.dumps({"seen": seen, "errs": errs, "n": n}), flush=True)
"""

MPORTS = list(range(PORT + 100, PORT + 164))


def multi_backends(env):
    """64 backends in b1's namespace: {"10.250.1.2:port": "pport"}."""
    p = subprocess.Popen(["ip", "netns", "exec", "shoal-bpf-b1-%s" % env.sfx, PY, "-c", MULTI]
                         + [str(x) for x in MPORTS], stdout=subprocess.PIPE, text=True)
    env.procs.append(p)
    assert p.stdout.readline().strip() == "ready"
    return {"10.250.1.2:%d" % x: "p%d" % x for x in MPORTS}


class Repl:
    """One shoal-lbctl process taking commands on stdin, as a daemon keeps its view."""

    def __init__(self, env):
        self.p = subprocess.Popen([LBCTL, "--node", env.node, "repl"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        env.procs.append(self.p)

    def __call__(self, *words):
        self.p.stdin.write(" ".join(words) + "\n")
        self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline())
        assert not (isinstance(out, dict) and "error" in out), (words, out)
        return out


def pick(env, fe, repl=None):
    for d in (repl("dump") if repl else json.loads(env.lbctl("dump").stdout)):
        if d["frontend"] == fe + "/tcp":
            return d["pick"], d.get("table")
    raise AssertionError("no " + fe)


def test_big_service_one_lookup_reaches_every_backend(env):
    """5 to 64 backends: connect4 picks from a region of shoal_be_tbl that slot 0 names (one
    hash lookup); every backend is reached, peers show the frontend, a restart adopts the
    regions as they are, and shrinking to 4 brings the list back into slot 0."""
    bes = multi_backends(env)
    addrs = list(bes)
    for n in (5, 8, 64, 9):
        env.svc(FE, *addrs[:n])
        assert pick(env, FE)[0] == "table"
        slot0_copy_agrees(env)
        want = {bes[a] for a in addrs[:n]}
        seen = set()
        for _ in range(40 * n):
            r = env.ask("tcp", VIP, PORT)
            assert r["peer"] == [VIP, PORT], r
            assert r["name"] in want, (r, n)
            seen.add(r["name"])
            if seen == want:
                break
        assert seen == want, n
    where = pick(env, FE)
    env.lbctl("--cgroup", env.cgroup, "attach")  # restart: adopt, nothing rewritten
    assert pick(env, FE) == where
    slot0_copy_agrees(env)
    assert env.ask("tcp", VIP, PORT)["name"] in {bes[a] for a in addrs[:9]}
    env.svc(FE, *addrs[:4])
    assert pick(env, FE) == ("slot0", None)
    slot0_copy_agrees(env)


def test_big_service_changes_under_load_never_fail_a_connect(env):
    """Two services of 5-64 backends change membership while a client connects as fast as it
    can: no connect() fails and every answer comes from a backend the service had at some
    point. Changes outlast the regions' grace period, so freed regions are reused."""
    bes = multi_backends(env)
    addrs = list(bes)
    fe2 = "10.96.7.9:%d" % PORT
    sets = [addrs[:5], addrs[10:74 - 10], addrs[3:12], addrs[:64], addrs[40:47], addrs[20:60],
            addrs[1:6], addrs[30:64]]
    repl = Repl(env)
    repl("svc-set", FE, *sets[0])
    repl("svc-set", fe2, *sets[-1])
    burst = subprocess.Popen(
        ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "$2" -c "$3" "$4" '
         '"$5" "$6"', env.cgroup, env.node_ns, PY, BURST, VIP, str(PORT), "6"],
        stdout=subprocess.PIPE, text=True)
    env.procs.append(burst)
    assert burst.stdout.readline().strip() == "go"
    tables = set()
    deadline = time.monotonic() + 5
    i = 0
    while time.monotonic() < deadline:
        i += 1
        repl("svc-set", FE, *sets[i % len(sets)])
        repl("svc-set", fe2, *sets[(i + 3) % len(sets)])
        tables.add(pick(env, FE, repl)[1])
        time.sleep(0.01)  # pace: ~100 changes a second, a busy cluster's churn
    out = json.loads(burst.stdout.readline())
    burst.wait(timeout=10)
    assert out["errs"] == {}, out
    assert out["n"] > 100, out
    union = {bes[a] for s in sets for a in s}
    assert set(out["seen"]) <= union, out
    assert len(out["seen"]) > 20, out
    slot0_copy_agrees(env)
    # regions were handed out again after their grace period rather than growing the table
    assert None not in tables, tables  # never full
    assert len(tables) < 0.8 * i, (len(tables), i)


def test_full_backend_table_falls_back_to_slots():
    """Without room in shoal_be_tbl a big service is served from its slots (two lookups), and
    a region freed later goes to the next change."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    e = Env()
    try:
        root = sh(LBCTL, "cgroup2-root").stdout.strip()
        e.cgroup = os.path.join(root, "shoal-bpf-test-" + e.sfx)
        os.mkdir(e.cgroup)
        e.lbctl("--tbl-max", "8", "--cgroup", e.cgroup, "attach")
        five = ["10.250.1.%d:%d" % (i, PORT) for i in range(10, 15)]
        repl = Repl(e)
        repl("svc-set", FE, *five)
        repl("svc-set", FE2, *five)
        assert pick(e, FE, repl) == ("table", 0)
        assert pick(e, FE2, repl)[0] == "slots"
        repl("svc-del", FE)
        t0 = time.monotonic()
        repl("svc-set", FE2, *five)
        # the one region is in its grace period (2 s): still the slots
        assert pick(e, FE2, repl)[0] == "slots"
        deadline = time.monotonic() + 10
        while pick(e, FE2, repl)[0] != "table" and time.monotonic() < deadline:
            time.sleep(0.2)
            repl("svc-set", FE2, *five)
        assert pick(e, FE2, repl) == ("table", 0)
        assert time.monotonic() - t0 >= 2
        slot0_copy_agrees(e)
    finally:
        e.teardown()
    assert not os.path.exists("/sys/fs/bpf/shoal/" + e.node)
