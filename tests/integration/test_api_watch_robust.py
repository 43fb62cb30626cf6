# SPDX-License-Identifier: Apache-2.0
"""Watch streams under stress: bookmarks, many watchers, a client that stops reading."""
import json
import socket
import threading
import time

from apihelp import Watch, configmap, pod
from shoaltest import Shoald

PODS = "/api/v1/namespaces/default/pods"
CMS = "/api/v1/namespaces/default/configmaps"


def test_bookmarks(monkeypatch):
    monkeypatch.setenv("SHOAL_API_BOOKMARK_MS", "200")
    d = Shoald()
    try:
        d.start()
        d.post(PODS, pod("b1"))
        rv = d.get(PODS).json()["metadata"]["resourceVersion"]
        w = Watch(d, PODS + f"?watch=1&resourceVersion={rv}&allowWatchBookmarks=true")
        ev = w.next()
        w.close()
        assert ev["type"] == "BOOKMARK"
        assert ev["object"]["kind"] == "Pod"
        assert int(ev["object"]["metadata"]["resourceVersion"]) >= int(rv)
        w = Watch(d, PODS + "?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                  "&resourceVersionMatch=NotOlderThan")
        a, b = w.take(2)
        w.close()
        assert a["type"] == "ADDED" and b["type"] == "BOOKMARK"
        assert b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true"
    finally:
        d.close()


def test_many_watchers_each_get_every_event(shoald):
    d = shoald
    rv = d.get(CMS).json()["metadata"]["resourceVersion"]
    ws = [Watch(d, CMS + f"?watch=1&resourceVersion={rv}") for _ in range(50)]
    for i in range(5):
        d.post(CMS, configmap(f"mw{i}"))
    for w in ws:
        evs = w.take(5)
        assert [e["object"]["metadata"]["name"] for e in evs] == [f"mw{i}" for i in range(5)]
        w.close()


def test_slow_watcher_is_dropped_not_others(monkeypatch):
    monkeypatch.setenv("SHOAL_API_WATCH_MAX_BUFFER", str(1 << 20))
    d = Shoald()
    try:
        d.start()
        rv = d.get(CMS).json()["metadata"]["resourceVersion"]
        slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(d.socket)
        slow.sendall(f"GET {CMS}?watch=1&resourceVersion={rv} HTTP/1.1\r\nHost: x\r\n\r\n"
                     .encode())
        good = Watch(d, CMS + f"?watch=1&resourceVersion={rv}")
        got = []
        reader = threading.Thread(target=lambda: got.extend(good.take(100)), daemon=True)
        reader.start()
        payload = "x" * 60000
        t0 = time.time()
        for i in range(100):
            r = d.post(CMS, configmap(f"big{i}", {"k": payload}))
            assert r.status == 201
        assert time.time() - t0 < 20  # writers never wait for the slow reader
        reader.join(20)
        good.close()
        names = [e["object"]["metadata"]["name"] for e in got]
        assert names == [f"big{i}" for i in range(100)]
        assert "too slow" in d.logs()
        # the slow socket was closed by the server: draining it reaches EOF
        slow.settimeout(5)
        total = 0
        while True:
            b = slow.recv(1 << 20)
            if not b:
                break
            total += len(b)
        slow.close()
        assert total < 100 * 60000
        assert d.get("/readyz").status == 200
    finally:
        d.close()


def test_watch_client_gone_is_cleaned_up(shoald):
    d = shoald
    for _ in range(20):
        w = Watch(d, CMS + "?watch=1")
        w.close()
    for i in range(3):
        d.post(CMS, configmap(f"gone{i}"))
    assert d.get("/readyz").status == 200
    assert json.loads(d.get(CMS).body)["kind"] == "ConfigMapList"
