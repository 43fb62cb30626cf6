# SPDX-License-Identifier: Apache-2.0
"""Multi-node tests on tools/devcluster: a cluster of real daemons, each in its own network
namespace on one bridge, that is always brought down, even when the test fails.

The fixture imports the tool itself (tools/devcluster), so tests and people drive one
implementation. Every cluster gets a unique name (t + random hex), so tests can run next to a
person's devcluster and to each other: namespaces, node names, cgroups, pins and directories all
carry it.

    from devcluster import cluster_factory  # noqa: F401 (the fixture)

    def test_x(cluster_factory):
        c = cluster_factory(3)            # up, waits until every node sees every other
        c.kill("n2"); ...
"""
import contextlib
import importlib.machinery
import importlib.util
import os
import secrets
import subprocess
import tempfile
import time

import pytest

from shoaltest import ROOT

_TOOL = os.path.join(ROOT, "tools", "devcluster")
_loader = importlib.machinery.SourceFileLoader("devcluster_tool", _TOOL)
_spec = importlib.util.spec_from_loader("devcluster_tool", _loader)
tool = importlib.util.module_from_spec(_spec)
_loader.exec_module(tool)

Cluster = tool.Cluster
DevclusterError = tool.DevclusterError


def unique_name():
    return "t" + secrets.token_hex(4)


def new_cluster(gossip=None):
    """A Cluster object (not up yet) with a unique name and a directory of its own."""
    d = tempfile.mkdtemp(prefix="shoal-dc-")
    c = Cluster(name=unique_name(), directory=os.path.join(d, "cluster"), gossip=gossip,
                quiet=True)
    c.tmp = d
    return c


def down_and_check(c):
    """Bring the cluster down (twice if the first pass left work) and assert nothing is left."""
    try:
        c.down()
    except DevclusterError:
        c.down()
    left = c.leftovers()
    with contextlib.suppress(OSError):
        os.rmdir(c.tmp)  # empty once down removed the cluster directory and its lock
    assert not left, f"devcluster {c.name} left behind: {left}"


def dump_logs(c):
    for nd in c.nodes():
        print(f"===== {nd.name} ({nd.state()}) =====\n{nd.logs()}")


@contextlib.contextmanager
def devcluster(n, gossip=None, extra_args=(), timeout=180):
    """Up n nodes; always down, with the nodes' logs printed when the body fails."""
    c = new_cluster(gossip)
    try:
        c.up(n, timeout=timeout, extra_args=extra_args)
        yield c
    except BaseException:
        dump_logs(c)
        raise
    finally:
        down_and_check(c)


@pytest.fixture
def cluster_factory():
    """cluster_factory(n, gossip=None, extra_args=()) -> an up Cluster; every cluster made is
    brought down at the end of the test, whatever the outcome (logs printed, pytest shows them
    for a failed test)."""
    made = []

    def make(n, gossip=None, extra_args=(), timeout=180):
        c = new_cluster(gossip)
        made.append(c)
        c.up(n, timeout=timeout, extra_args=extra_args)
        return c

    yield make
    errors = []
    for c in made:
        dump_logs(c)
        try:
            down_and_check(c)
        except BaseException as e:  # noqa: BLE001 - bring every other cluster down too
            errors.append(e)
    if errors:
        raise errors[0]


def wait_for(pred, timeout, what, interval=0.05):
    """Poll pred() until it returns a true value (returned) or fail after timeout seconds."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached in {timeout}s (last: {last!r})")


def udp_delivery(src, dst, count=400, port=9999):
    """Send `count` UDP datagrams from node src to node dst (inside their namespaces) and return
    how many arrived. The receiver says when it is bound; it stops after 2 s of silence once
    the sender is done."""
    recv = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{dst.netns}", "python3", "-c",
         "import socket,sys\n"
         "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
         f"s.bind(('{dst.ip}',{port}))\n"
         "print('ready',flush=True)\n"
         "sys.stdin.readline()\n"  # the sender is done
         "s.settimeout(2)\n"
         "n=0\n"
         "try:\n"
         "    while True: s.recv(64); n+=1\n"
         "except socket.timeout: pass\n"
         "print(n,flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout.readline().strip() == "ready"
        subprocess.run(
            ["nsenter", f"--net=/run/netns/{src.netns}", "python3", "-c",
             "import socket,time\n"
             "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             f"for i in range({count}):\n"
             f"    s.sendto(b'x',('{dst.ip}',{port}))\n"
             "    time.sleep(0.0005)\n"], check=True, timeout=60)
        out, _ = recv.communicate("done\n", timeout=60)
        return int(out.strip())
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
