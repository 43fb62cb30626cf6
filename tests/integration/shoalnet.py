# SPDX-License-Identifier: Apache-2.0
"""Helpers for the pod network tests: a throw-away "node" netns wired to a "world" netns,
shoal-netctl invocations inside it, and a tiny TCP echo server that reports the peer address.
Everything created here is named shoal-net-<random> and removed on exit, even on failure."""
import json
import os
import secrets
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
NETCTL = os.path.join(BUILD, "shoal-netctl")
CNI = os.path.join(BUILD, "shoal-cni")
PY = "/usr/bin/python3"

NODE_IP = "198.51.100.1"
WORLD_IP = "198.51.100.2"
POD_CIDR = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"

# Echo server: answers each connection with "<peer ip> <first line received>".
ECHO_SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
print("ready", flush=True)
while True:
    c, a = s.accept()
    data = c.recv(256).decode().strip()
    c.sendall(("%s %s\n" % (a[0], data)).encode()); c.close()
"""

ECHO_CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
c.sendall(b"hello\n"); print(c.recv(256).decode().strip())
"""


def run(*args, check=True, input=None, env=None):
    p = subprocess.run(list(args), capture_output=True, text=True, input=input, env=env,
                       timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s %s" % (" ".join(args), p.returncode,
                                                        p.stdout, p.stderr))
    return p


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def netns_list():
    return [l.split()[0] for l in run("ip", "netns", "list").stdout.splitlines() if l.strip()]


class Node:
    """A node netns with an uplink to a world netns (default route there)."""

    def __init__(self):
        self.tag = secrets.token_hex(3)
        self.name = "net-" + self.tag              # node name: netns shoal-net-<tag>-<pod>
        self.ns = "shoal-net-n" + self.tag
        self.world = "shoal-net-w" + self.tag
        self.table = "shoal-net-" + self.tag
        self.state = "/tmp/shoal-net-" + self.tag
        self.procs = []
        self.extra_netns = []

    def __enter__(self):
        try:
            run("ip", "netns", "add", self.ns)
            run("ip", "netns", "add", self.world)
            run("ip", "-n", self.ns, "link", "set", "lo", "up")
            run("ip", "-n", self.world, "link", "set", "lo", "up")
            run("ip", "-n", self.ns, "link", "add", "uplink", "type", "veth", "peer", "name",
                "eth0", "netns", self.world)
            run("ip", "-n", self.ns, "addr", "add", NODE_IP + "/24", "dev", "uplink")
            run("ip", "-n", self.world, "addr", "add", WORLD_IP + "/24", "dev", "eth0")
            run("ip", "-n", self.ns, "link", "set", "uplink", "up")
            run("ip", "-n", self.world, "link", "set", "eth0", "up")
            run("ip", "-n", self.ns, "route", "add", "default", "via", WORLD_IP)
        except Exception:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        # pods first (through the library, like the daemon), then whatever is left
        if os.path.exists(self.state):
            try:
                for lease in self.leases():
                    self.ctl("pod-teardown", lease["owner"], "--ifname", lease["ifname"],
                             check=False)
                self.ctl("node-teardown", check=False)
            except Exception:
                pass
        for ns in netns_list():
            if ns.startswith("shoal-net-" + self.tag + "-") or ns in self.extra_netns:
                run("ip", "netns", "del", ns, check=False)
        for ns in (self.ns, self.world):
            if ns in netns_list():
                run("ip", "netns", "del", ns, check=False)
        run("rm", "-rf", self.state, check=False)

    # --- shoal-netctl ---
    def ctl(self, *args, check=True, state=None, cidr=POD_CIDR):
        p = run(NETCTL, "--in-netns", self.ns, "--node", self.name, "--state-dir",
                state or self.state, "--pod-cidr", cidr, "--cluster-cidr", CLUSTER_CIDR,
                "--nft-table", self.table, *args, check=check)
        return p

    def ctl_json(self, *args, **kw):
        return json.loads(self.ctl(*args, **kw).stdout)

    def leases(self, **kw):
        return self.ctl_json("leases", **kw)

    # --- inspection ---
    def ip_json(self, *args, ns=None):
        out = run("ip", "-j", "-n", ns or self.ns, *args).stdout
        return json.loads(out) if out.strip() else []

    def nft_ruleset(self):
        return run("ip", "netns", "exec", self.ns, "nft", "list", "ruleset").stdout

    # --- traffic ---
    def serve(self, ns, port):
        p = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-c", ECHO_SERVER, str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        return p

    def connect(self, ns, ip, port, check=True):
        p = run("ip", "netns", "exec", ns, PY, "-c", ECHO_CLIENT, ip, str(port), check=check)
        return p.stdout.strip() if p.returncode == 0 else None

    def ping(self, ns, ip):
        return run("ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "2", ip,
                   check=False).returncode == 0
