# SPDX-License-Identifier: Apache-2.0
"""Cluster DNS (daemon/dns.c) with real clients: dig (bind9-dnsutils) and glibc's stub resolver.

The server runs inside a private "node" netns on the node's reserved pod-CIDR address
10.244.0.1:53, which netplugin's np_node_setup puts on the node's loopback (driven here by
shoal-netctl), next to the store, the API and the controllers (build/shoal-dnsd: shoald's wiring
for these parts). Queries come from a real pod netns plumbed by netplugin (veth, /32 routes),
with the resolv.conf pods get. Objects are created through the API; Endpoints come from the real
Endpoints controller. Other names go to a fake upstream server (dns_upstream.py) on
10.53.0.53:53 in the node netns.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

import pytest

from shoaltest import BUILD, Netns, Shoald, sh

# SHOAL_DNS_DAEMON=build/shoald runs the same tests against the daemon itself
DNSD = os.environ.get("SHOAL_DNS_DAEMON", os.path.join(BUILD, "shoal-dnsd"))
NETCTL = os.path.join(BUILD, "shoal-netctl")
DNS = "10.244.0.1"
UPSTREAM = "10.53.0.53"
HERE = os.path.dirname(__file__)

pytestmark = pytest.mark.skipif(shutil.which("dig") is None,
                                reason="dig missing: tools/install-deps installs bind9-dnsutils")


class DnsDaemon(Shoald):
    """shoal-dnsd takes shoald's flags."""

    def args(self):
        return [DNSD] + super().args()[1:]

    def teardown(self):
        # shoal-dnsd runs no datapath: it owns no pins, nft table or cgroup to remove
        if self.args()[0] != DNSD:
            super().teardown()


class PodNs:
    """A pod netns made by netplugin (commands run with `ip netns exec`, like Netns.run)."""

    def __init__(self, name, ip):
        self.name = name
        self.ip = ip

    def run(self, cmd, check=True, timeout=60, **kw):
        return sh("ip", "netns", "exec", self.name, *cmd, check=check, timeout=timeout, **kw)


class Answer:
    def __init__(self, out):
        self.out = out
        m = re.search(r"status: (\w+), id: (\d+)", out)
        self.status = m.group(1) if m else None
        self.id = int(m.group(2)) if m else None
        m = re.search(r"flags: ([a-z ]*);", out)
        self.flags = m.group(1).split() if m else []
        self.sections = {}
        cur = None
        for line in out.splitlines():
            m = re.match(r";; (\w+) SECTION:", line)
            if m:
                cur = self.sections.setdefault(m.group(1), [])
            elif line and not line.startswith(";") and cur is not None:
                f = line.split(None, 4)
                cur.append((f[0], int(f[1]), f[3], f[4]))

    def records(self, section="ANSWER", rtype=None):
        return [r for r in self.sections.get(section, []) if rtype is None or r[2] == rtype]

    def data(self, rtype="A", section="ANSWER"):
        return sorted(r[3] for r in self.records(section, rtype))

    def __repr__(self):
        return self.out


@pytest.fixture(scope="module")
def env():
    node = Netns("shoal-dns-" + secrets.token_hex(3))
    d = up = pod = etc = None
    netctl = None
    try:
        d = DnsDaemon(netns=node)
        netctl = [NETCTL, "--in-netns", node.name, "--node", d.node,
                  "--state-dir", os.path.join(d.tmp, "net")]
        sh(*netctl, "node-setup")
        # scope host: pods reach it, the node never uses it as a source address
        assert f"{DNS}/32 scope host" in node.run(["ip", "-4", "addr", "show", "dev", "lo"]).stdout
        res = json.loads(sh(*netctl, "pod-setup", "dns-client").stdout)
        pod = PodNs(res["netnsName"], res["ip"])
        node.run(["ip", "addr", "add", f"{UPSTREAM}/32", "dev", "lo"])
        uplog = os.path.join(d.tmp, "upstream.log")
        up = node.popen([sys.executable, os.path.join(HERE, "dns_upstream.py"), UPSTREAM, "53",
                         uplog])
        # the server itself is listed first: it must be skipped, never queried
        resolv = os.path.join(d.tmp, "upstream.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver {DNS}\nnameserver {UPSTREAM}\n")
        d.extra_args = ["--dns-resolv-conf", resolv]
        d.start()
        deadline = time.time() + 10
        while not (os.path.exists(uplog) and "ready" in open(uplog).read()):
            assert time.time() < deadline, "fake upstream did not start"
            time.sleep(0.05)
        # what the pod sees: `ip netns exec` mounts this over /etc/resolv.conf
        etc = f"/etc/netns/{pod.name}"
        os.makedirs(etc, exist_ok=True)
        with open(f"{etc}/resolv.conf", "w") as f:
            f.write(f"search default.svc.cluster.local svc.cluster.local cluster.local\n"
                    f"nameserver {DNS}\noptions ndots:5 attempts:1 timeout:5\n")
        d.uplog = uplog
        yield pod, d
    finally:
        if up:
            up.kill()
            up.wait()
        if d:
            d.stop()
        if etc:
            shutil.rmtree(etc, ignore_errors=True)
        # the pod's plumbing first: its lease database lives in the daemon's temp dir
        if netctl:
            sh(*netctl, "pod-teardown", "dns-client", check=False)
            sh(*netctl, "node-teardown", check=False)
            # the node address goes with the node's plumbing
            assert f"{DNS}/32" not in node.run(["ip", "-4", "addr", "show", "dev", "lo"]).stdout
        if d:
            d.close()
        node.close()


def dig(ns, name, rtype="A", *opts):
    out = ns.run(["dig", f"@{DNS}", name, rtype, "+noall", "+comments", "+answer",
                  "+authority", "+additional", "+tries=1", "+timeout=10"] + list(opts)).stdout
    return Answer(out)


def upstream_queries(d):
    with open(d.uplog) as f:
        return [json.loads(l) for l in f if '"name"' in l]


def create(d, path, obj):
    r = d.post(path, obj)
    assert r.status == 201, r
    return r.json()


def service(d, name, cluster_ip, ports, selector=None, ns="default", **spec):
    spec = dict(spec, ports=ports)
    spec["clusterIP"] = cluster_ip
    if selector:
        spec["selector"] = selector
    return create(d, f"/api/v1/namespaces/{ns}/services",
                  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                   "spec": spec})


def ready_pod(d, name, ip, labels, hostname=None, subdomain=None, ns="default"):
    spec = {"containers": [{"name": "c", "image": "busybox",
                            "ports": [{"name": "pg", "containerPort": 5432}]}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    create(d, f"/api/v1/namespaces/{ns}/pods",
           {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": spec})
    r = d.patch(f"/api/v1/namespaces/{ns}/pods/{name}/status",
                {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                            "conditions": [{"type": "Ready", "status": "True"}]}})
    assert r.status == 200, r


def wait_for(fn, timeout=10):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def test_service_a_srv_and_negative_answers(env):
    ns, d = env
    service(d, "web", "10.96.0.10", [{"name": "http", "port": 80},
                                     {"name": "dns", "port": 53, "protocol": "UDP"}])
    a = dig(ns, "Web.Default.svc.Cluster.Local")
    assert a.status == "NOERROR" and "aa" in a.flags, a
    assert a.records() == [("Web.Default.svc.Cluster.Local.", 5, "A", "10.96.0.10")]

    a = dig(ns, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert a.data("SRV") == ["0 100 80 web.default.svc.cluster.local."], a
    assert a.data("A", "ADDITIONAL") == ["10.96.0.10"]
    a = dig(ns, "_dns._udp.web.default.svc.cluster.local", "SRV")
    assert a.data("SRV") == ["0 100 53 web.default.svc.cluster.local."], a

    # known name, other type: NOERROR, no data, the zone's SOA (negative TTL 5)
    a = dig(ns, "web.default.svc.cluster.local", "AAAA")
    assert a.status == "NOERROR" and a.records() == [], a
    soa = a.records("AUTHORITY", "SOA")
    assert len(soa) == 1 and soa[0][1] == 5 and soa[0][3].split()[-1] == "5", a
    for name in ("nothere.default.svc.cluster.local", "web.other.svc.cluster.local",
                 "_ftp._tcp.web.default.svc.cluster.local", "foo.cluster.local"):
        a = dig(ns, name)
        assert a.status == "NXDOMAIN" and "aa" in a.flags, a
        assert a.records("AUTHORITY", "SOA"), a

    # the index follows the store: a deleted service is gone at once
    assert d.delete("/api/v1/namespaces/default/services/web").status == 200
    assert dig(ns, "web.default.svc.cluster.local").status == "NXDOMAIN"


def test_headless_service_pods_and_srv(env):
    ns, d = env
    service(d, "db", "None", [{"name": "pg", "port": 5432, "targetPort": "pg"}],
            selector={"app": "db"})
    ready_pod(d, "db-0", "10.244.0.5", {"app": "db"}, hostname="db-0", subdomain="db")
    ready_pod(d, "db-1", "10.244.0.6", {"app": "db"})
    # endpoints are written by the controller, asynchronously
    a = wait_for(lambda: (lambda x: x if len(x.records()) == 2 else None)(
        dig(ns, "db.default.svc.cluster.local")))
    assert a, dig(ns, "db.default.svc.cluster.local")
    assert a.data() == ["10.244.0.5", "10.244.0.6"]

    a = dig(ns, "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert a.data("SRV") == ["0 50 5432 10-244-0-6.db.default.svc.cluster.local.",
                             "0 50 5432 db-0.db.default.svc.cluster.local."], a
    assert sorted((r[0], r[3]) for r in a.records("ADDITIONAL", "A")) == [
        ("10-244-0-6.db.default.svc.cluster.local.", "10.244.0.6"),
        ("db-0.db.default.svc.cluster.local.", "10.244.0.5")]

    # <hostname>.<subdomain>.<ns>.svc for the pod with spec.hostname/subdomain
    assert dig(ns, "db-0.db.default.svc.cluster.local").data() == ["10.244.0.5"]
    assert dig(ns, "10-244-0-6.db.default.svc.cluster.local").data() == ["10.244.0.6"]
    assert dig(ns, "db-1.db.default.svc.cluster.local").status == "NXDOMAIN"

    # pod A records, verified against the pods in that namespace
    assert dig(ns, "10-244-0-5.default.pod.cluster.local").data() == ["10.244.0.5"]
    assert dig(ns, "10-244-0-5.other.pod.cluster.local").status == "NXDOMAIN"
    assert dig(ns, "10-244-0-77.default.pod.cluster.local").status == "NXDOMAIN"

    # a pod that stops being ready leaves the headless answer
    r = d.patch("/api/v1/namespaces/default/pods/db-1/status",
                {"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    assert r.status == 200, r
    assert wait_for(lambda: dig(ns, "db.default.svc.cluster.local").data() == ["10.244.0.5"])


def test_forwarding(env):
    ns, d = env
    a = dig(ns, "up.example.test")
    assert a.status == "NOERROR" and "aa" not in a.flags and "ra" in a.flags, a
    assert a.records() == [("up.example.test.", 300, "A", "192.0.2.1")]
    q = [x for x in upstream_queries(d) if x["name"] == "up.example.test"]
    assert len(q) == 1
    # the relay asks with its own id, keeps RD
    assert q[0]["id"] != a.id and q[0]["flags"] & 0x0100

    # names inside rdata that upstream compressed arrive intact
    a = dig(ns, "MX.example.test", "MX")
    assert a.data("MX") == ["10 mail.MX.example.test."], a

    a = dig(ns, "nx.example.test")
    assert a.status == "NXDOMAIN" and a.records() == [], a
    # a forged reply with the wrong id is ignored
    assert dig(ns, "spoof.example.test").data() == ["192.0.2.9"]

    # no answer upstream: SERVFAIL, after both tries (2 x 2 s)
    t = time.time()
    a = dig(ns, "slow.example.test")
    assert a.status == "SERVFAIL", a
    assert 3 < time.time() - t < 8
    # the server never queried itself
    assert "ignoring upstream 10.244.0.1:53" in d.logs()


def test_external_name_is_chased_upstream(env):
    ns, d = env
    create(d, "/api/v1/namespaces/default/services",
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cdn"},
            "spec": {"type": "ExternalName", "externalName": "cdn.example.test"}})
    a = dig(ns, "cdn.default.svc.cluster.local")
    assert a.status == "NOERROR", a
    assert [(r[2], r[3]) for r in a.records()] == [("CNAME", "cdn.example.test."),
                                                   ("A", "192.0.2.7")], a


def test_glibc_resolver_in_a_pod_like_netns(env):
    """getaddrinfo through /etc/resolv.conf with the search path pods get."""
    ns, d = env
    service(d, "api", "10.96.0.20", [{"port": 443}])
    out = ns.run(["getent", "ahostsv4", "api"]).stdout
    assert out.split()[0] == "10.96.0.20", out
    out = ns.run(["getent", "ahostsv4", "api.default"]).stdout
    assert out.split()[0] == "10.96.0.20", out
    out = ns.run(["getent", "ahostsv4", "up.example.test"]).stdout
    assert out.split()[0] == "192.0.2.1", out
    # reverse: a ClusterIP is ours, other addresses go upstream
    out = ns.run(["getent", "hosts", "10.96.0.20"]).stdout
    assert out.split()[:2] == ["10.96.0.20", "api.default.svc.cluster.local"], out
    a = dig(ns, "-x", "10.96.0.20")
    assert a.data("PTR") == ["api.default.svc.cluster.local."] and "aa" in a.flags, a
    a = dig(ns, "-x", "192.0.2.99")
    assert a.status == "NXDOMAIN" and "aa" not in a.flags, a
    assert any(q["name"] == "99.2.0.192.in-addr.arpa" for q in upstream_queries(d))

    r = ns.run(["getent", "ahostsv4", "missing"], check=False)
    assert r.returncode == 2  # not found, answered (not a timeout)

    # the pod's own name, once the replica knows the pod
    ready_pod(d, "client", ns.ip, {"app": "client"})
    dashed = ns.ip.replace(".", "-")
    out = ns.run(["getent", "ahostsv4", f"{dashed}.default.pod"]).stdout
    assert out.split()[0] == ns.ip, out


PIPELINE = r"""
import socket, struct, sys
names = sys.argv[2:]
c = socket.create_connection((sys.argv[1], 53), timeout=10)
def q(i, name):
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    m = struct.pack("!HHHHHH", 0x1000 + i, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", 1, 1)
    return struct.pack("!H", len(m)) + m
# every query in one write: the server must split the stream itself
c.sendall(b"".join(q(i, n) for i, n in enumerate(names)))
def exact(n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        assert chunk, "connection closed early"
        b += chunk
    return b
for _ in names:
    m = exact(struct.unpack("!H", exact(2))[0])
    qid, flags, qd, an = struct.unpack("!HHHH", m[:8])
    print(qid - 0x1000, flags & 0xf, an, "tc" if flags & 0x0200 else "-")
"""


def test_big_answers_tc_over_udp_whole_over_tcp(env):
    """60 ready endpoints: UDP says TC, TCP has them all, glibc falls back to TCP by itself."""
    ns, d = env
    n = 60
    ips = [f"10.244.2.{i + 1}" for i in range(n)]
    service(d, "many", "None", [{"port": 80}], selector={"app": "many"})
    for i, ip in enumerate(ips):
        ready_pod(d, f"many-{i}", ip, {"app": "many"})
    name = "many.default.svc.cluster.local"
    a = wait_for(lambda: (lambda x: x if len(x.records()) == n else None)(
        dig(ns, name, "A", "+tcp")))
    assert a, dig(ns, name, "A", "+tcp")
    assert a.status == "NOERROR" and "aa" in a.flags and "tc" not in a.flags, a
    assert a.data() == sorted(ips)

    # UDP: what fits, whole records, and TC so resolvers retry over TCP
    a = dig(ns, name, "A", "+notcp", "+ignore")
    assert a.status == "NOERROR" and "tc" in a.flags, a
    assert 0 < len(a.records()) < n and set(a.data()) <= set(ips), a

    # glibc's stub resolver: TC over UDP, then the same question over TCP
    out = ns.run(["getent", "ahostsv4", name + "."]).stdout
    assert {line.split()[0] for line in out.splitlines()} == set(ips), out

    # several queries pipelined on one connection, answered in full
    r = ns.run([sys.executable, "-c", PIPELINE, DNS, name, "nothere.default.svc.cluster.local",
                name]).stdout.split("\n")
    got = sorted(tuple(line.split()) for line in r if line)
    assert got == [("0", "0", str(n), "-"), ("1", "3", "0", "-"), ("2", "0", str(n), "-")], r


def test_forwarding_over_tcp(env):
    ns, d = env
    ips = sorted(f"198.51.100.{i + 1}" for i in range(40))
    # over UDP the upstream's 40 records do not fit: TC
    a = dig(ns, "big.example.test", "A", "+notcp", "+ignore")
    assert a.status == "NOERROR" and "tc" in a.flags and len(a.records()) < 40, a
    # over TCP the relay asks upstream over TCP and hands back everything
    a = dig(ns, "big.example.test", "A", "+tcp")
    assert a.status == "NOERROR" and "tc" not in a.flags and "aa" not in a.flags, a
    assert a.data() == ips, a
    q = [x for x in upstream_queries(d) if x["name"] == "big.example.test"]
    assert [x["tcp"] for x in q] == [False, True], q
    assert q[1]["id"] != a.id and q[1]["flags"] & 0x0100
    # glibc follows the TC over to TCP for relayed names too
    out = ns.run(["getent", "ahostsv4", "big.example.test."]).stdout
    assert sorted({line.split()[0] for line in out.splitlines()}) == ips, out
    # small answers and SERVFAIL work over TCP as well
    assert dig(ns, "up.example.test", "A", "+tcp").data() == ["192.0.2.1"]
    assert dig(ns, "nx.example.test", "A", "+tcp").status == "NXDOMAIN"


CONN = r"""
import socket, struct, sys, time
what = sys.argv[2]
c = socket.create_connection((sys.argv[1], 53), timeout=20)
t = time.time()
if what == "zero":
    c.sendall(b"\0\0")  # a zero length prefix: nothing sane follows
if what == "gone":
    # more questions than may wait upstream per connection, then hang up before any answer
    wire = b"\4slow\7example\4test\0" + struct.pack("!HH", 1, 1)
    for i in range(40):
        m = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + wire
        c.sendall(struct.pack("!H", len(m)) + m)
    time.sleep(0.3)
    c.close()
    print("closed", 0)
    sys.exit(0)
print(repr(c.recv(10)), round(time.time() - t))
"""


def test_tcp_connection_hygiene(env):
    ns, d = env
    # garbage framing closes the connection at once
    out = ns.run([sys.executable, "-c", CONN, DNS, "zero"]).stdout.split()
    assert out[0] == "b''" and int(out[1]) <= 1, out
    # an idle connection is closed after 10 s
    out = ns.run([sys.executable, "-c", CONN, DNS, "idle"]).stdout.split()
    assert out[0] == "b''" and 9 <= int(out[1]) <= 12, out
    # a client that hangs up while its questions wait upstream: they are dropped, the server
    # carries on
    before = len([q for q in upstream_queries(d) if q["name"] == "slow.example.test"])
    ns.run([sys.executable, "-c", CONN, DNS, "gone"])
    assert dig(ns, "up.example.test", "A", "+tcp").data() == ["192.0.2.1"]
    # reading paused at 16 in flight: the other 24 never went upstream
    slow = [q for q in upstream_queries(d) if q["name"] == "slow.example.test"][before:]
    assert len(slow) == 16 and all(q["tcp"] for q in slow), slow
