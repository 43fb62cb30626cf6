# SPDX-License-Identifier: Apache-2.0
"""A stale owner's status writes do not win over the new owner's (issue 11 item 8;
docs/consistency.md, "Status register").

The owner O of a Deployment is cut off. The others declare it dead and the Deployment's new
owner N, once the settle window passed, claims the status register above O's ownership term with
its first status write (an edit on the majority side). O, still the owner in its own view, edits
the Deployment too and writes its status at its old term, later by the clock than N. After the
heal every node holds one status register, identical everywhere: O's side's later write lost to
N's higher term, and O — the owner again once it is back in everyone's view — claims above N's
term and reports the status of the spec that won."""
import json
import os
import re

import pytest

from devcluster import cluster_factory, wait_for  # noqa: F401
from shoaltest import ROOT

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "daemon", "repl.c")),
                                reason="no store replication in the daemon yet")

T = 120  # s: generous, the machine is shared
DEPLOY = "/apis/apps/v1/namespaces/default/deployments/web"
LINE = re.compile(r"^deployments\.apps default/web .* status=(?:t(\d+):)?(\d+)@(\S+) ")


def get(nd, path):
    st, body = nd.api("GET", path)
    return json.loads(body) if st == 200 else None


def deployment():
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 0, "revisionHistoryLimit": 10,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c",
                                                           "image": "busybox:latest"}]}}}}


def status_reg(nd):
    """(term, hlc, writer, whole dump line) of web's status register on nd, or None."""
    st, body = nd.api("GET", "/apis/shoal.io/v1/registers/deployments.apps")
    if st != 200:
        return None
    for line in body.decode().splitlines():
        m = LINE.match(line)
        if m:
            return int(m.group(1) or 0), int(m.group(2)), m.group(3), line
    return None


def edit(nd, limit):
    """Change web's spec on nd (a new generation), as a client of that node."""
    for _ in range(10):
        d = get(nd, DEPLOY)
        d["spec"]["revisionHistoryLimit"] = limit
        st, body = nd.api("PUT", DEPLOY, d)
        if st == 200:
            return json.loads(body)["metadata"]["generation"]
        assert st == 409, body  # the owner's status write raced the read: read again
    raise AssertionError("edit kept conflicting")


def observed(nd):
    d = get(nd, DEPLOY) or {}
    return (d.get("metadata", {}).get("generation"),
            d.get("status", {}).get("observedGeneration"))


def state_of(observer, name):
    v = observer.members() or {}
    return v.get(name, {}).get("state")


def test_stale_owner_status_loses(cluster_factory):
    c = cluster_factory(3)
    nodes = c.nodes()
    st, body = nodes[0].api("POST", "/apis/apps/v1/namespaces/default/deployments",
                            deployment())
    assert st == 201, body
    wait_for(lambda: all(observed(nd) == (1, 1) for nd in nodes), T, "status everywhere")
    wait_for(lambda: len({(status_reg(nd) or (0, 0, "", ""))[3] for nd in nodes}) == 1, T,
             "one status register everywhere")
    term0, _, writer, _ = status_reg(nodes[0])
    old = next(nd for nd in nodes if nd.name == writer)  # the owner
    rest = [nd for nd in nodes if nd is not old]

    c.partition([old.short])
    wait_for(lambda: all(state_of(nd, old.name) == "dead" for nd in rest) and
             all(state_of(old, nd.name) == "dead" for nd in rest), T,
             "the owner dead on the other side, and the others dead in its view")

    # the majority's new owner takes the key over (after the settle window: it cannot catch
    # up with the old owner) and claims the status above the old owner's term
    gen_new = edit(rest[0], 20)
    wait_for(lambda: all(observed(nd) == (gen_new, gen_new) for nd in rest), T,
             "the new owner's status on the majority")
    wait_for(lambda: all((status_reg(nd) or (0,))[0] > term0 for nd in rest), T,
             "the new owner's claim on the majority")
    term_new, hlc_new, new_owner, _ = status_reg(rest[0])
    assert new_owner != old.name

    # the old owner, cut off, still owns the key in its view: two edits there (its generation
    # passes the majority's) and its status at its old term, later by the clock
    edit(old, 30)
    gen_old = edit(old, 40)
    wait_for(lambda: observed(old) == (gen_old, gen_old), T, "the stale owner's status")
    term_old, hlc_old, w, _ = status_reg(old)
    assert w == old.name and term_old < term_new and hlc_old > hlc_new, (term_old, hlc_old, w)

    c.heal()
    c.wait_converged(timeout=T)
    # one status register everywhere: the old owner's, claimed above the new owner's term (it
    # is the owner again with everyone in view), reporting the spec that won (the later edit)
    def settled():
        regs = [status_reg(nd) for nd in nodes]
        if any(r is None for r in regs) or len({r[3] for r in regs}) != 1:
            return False
        term, _, w, _ = regs[0]
        return w == old.name and term > term_new and \
            all(observed(nd) == (gen_old, gen_old) for nd in nodes)
    wait_for(settled, T, "the owner's claimed status, identical on every node")
    d = get(nodes[0], DEPLOY)
    assert d["spec"]["revisionHistoryLimit"] == 40
