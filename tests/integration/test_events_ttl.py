# SPDX-License-Identifier: Apache-2.0
"""Events expire: a daemon started with --event-ttl 2 deletes the Events it wrote two seconds
after their last update, and an Event updated meanwhile lives on from that update. (Expiry by
the writing node only, across nodes: test_cluster_controllers.py.)"""
import time

import pytest

from shoaltest import Shoald

EVENTS = "/api/v1/namespaces/default/events"


def event(name):
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
            "reason": "Testing", "message": "hello", "type": "Normal", "count": 1}


@pytest.fixture
def daemon():
    d = Shoald(extra_args=["--event-ttl", "2"])
    try:
        d.start()
        yield d
    finally:
        d.close()


def names(d):
    return {e["metadata"]["name"] for e in d.get(EVENTS).json()["items"]}


def test_events_expire_after_ttl(daemon):
    d = daemon
    t0 = time.time()
    assert d.post(EVENTS, event("old")).status == 201
    assert d.post(EVENTS, event("kept")).status == 201
    # keep "kept" fresh with updates while "old" runs out
    deadline = time.time() + 30
    while "old" in names(d):
        assert time.time() < deadline, "old Event not expired in 30 s"
        cur = d.get(EVENTS + "/kept").json()
        cur["count"] += 1
        assert d.put(EVENTS + "/kept", cur).status == 200
        time.sleep(0.3)
    assert time.time() - t0 >= 2, "expired before its TTL"
    assert "kept" in names(d)
    deadline = time.time() + 30
    while "kept" in names(d):
        assert time.time() < deadline, "kept Event not expired 30 s after its last update"
        time.sleep(0.2)
