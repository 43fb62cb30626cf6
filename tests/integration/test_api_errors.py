# SPDX-License-Identifier: Apache-2.0
"""Every failure is a metav1 Status with the right code and reason; bad input never hurts."""
import re
import socket

from apihelp import configmap


def status(r, code, reason):
    assert r.status == code, r
    st = r.json()
    assert st["kind"] == "Status" and st["apiVersion"] == "v1"
    assert st["status"] == "Failure" and st["code"] == code and st["reason"] == reason, st
    return st


def test_not_found_paths(shoald_shared):
    d = shoald_shared
    status(d.get("/api/v1/nopes"), 404, "NotFound")
    status(d.get("/apis/apps/v1/namespaces/default/widgets"), 404, "NotFound")
    status(d.get("/nothing/here"), 404, "NotFound")
    status(d.get("/api/v1/namespaces/default/nodes"), 404, "NotFound")  # cluster-scoped
    status(d.get("/api/v1/namespaces/default/pods/x/logsz"), 404, "NotFound")
    st = status(d.get("/api/v1/namespaces/default/pods/missing"), 404, "NotFound")
    assert st["details"] == {"name": "missing", "kind": "pods"}


def test_method_not_allowed(shoald_shared):
    d = shoald_shared
    status(d.request("PUT", "/api/v1/namespaces/default/configmaps", body={}), 405,
           "MethodNotAllowed")
    status(d.post("/api/v1/namespaces/default/configmaps/x", configmap("x")), 405,
           "MethodNotAllowed")
    status(d.post("/api/v1/pods", {}), 405, "MethodNotAllowed")


def test_malformed_bodies(shoald_shared):
    d = shoald_shared
    base = "/api/v1/namespaces/default/configmaps"
    for body in (b"{", b"not json", b"[1,2]", b"\x00\xff\xfe", b'{"a":', b""):
        status(d.request("POST", base, body=body, headers={"Content-Type": "application/json"}),
               400, "BadRequest")
    status(d.request("POST", base, body=b"a: [", headers={"Content-Type": "application/yaml"}),
           400, "BadRequest")
    status(d.request("POST", base, body=b"x=1",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}),
           415, "UnsupportedMediaType")
    status(d.request("PATCH", base + "/x", body=b"{}",
                     headers={"Content-Type": "application/json"}),
           415, "UnsupportedMediaType")
    assert d.get("/readyz").status == 200


def test_body_url_mismatch(shoald_shared):
    d = shoald_shared
    base = "/api/v1/namespaces/default/configmaps"
    cm = configmap("mm")
    cm["kind"] = "Secret"
    status(d.post(base, cm), 400, "BadRequest")
    cm = configmap("mm")
    cm["apiVersion"] = "apps/v1"
    status(d.post(base, cm), 400, "BadRequest")
    cm = configmap("mm")
    cm["metadata"]["namespace"] = "kube-system"
    status(d.post(base, cm), 400, "BadRequest")
    d.post(base, configmap("mm2"))
    status(d.put(base + "/mm2", configmap("other")), 400, "BadRequest")
    cm = configmap("rv-set")
    cm["metadata"]["resourceVersion"] = "12"
    status(d.post(base, cm), 400, "BadRequest")


def test_invalid_object(shoald_shared):
    d = shoald_shared
    st = status(d.post("/api/v1/namespaces/default/configmaps", configmap("Bad_Name")), 422,
                "Invalid")
    causes = st["details"]["causes"]
    assert any(c["field"] == "metadata.name" for c in causes), causes
    assert st["details"]["kind"] == "ConfigMap"
    assert 'ConfigMap "Bad_Name" is invalid' in st["message"]
    st = status(d.post("/api/v1/namespaces/default/configmaps",
                       {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}), 422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "metadata.name"


def test_bad_selectors_and_params(shoald_shared):
    d = shoald_shared
    status(d.get("/api/v1/pods?labelSelector=a%20in%20(b"), 400, "BadRequest")
    status(d.get("/api/v1/pods?fieldSelector=spec.nope%3Dx"), 400, "BadRequest")
    status(d.get("/api/v1/pods?limit=abc"), 400, "BadRequest")
    status(d.get("/api/v1/pods?limit=1&continue=%%%"), 400, "BadRequest")
    status(d.get("/api/v1/pods?watch=1&resourceVersion=xyz"), 400, "BadRequest")


def test_oversized_body(shoald):
    d = shoald
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
           "data": {"k": "x" * (4 << 20)}}
    try:
        r = d.post("/api/v1/namespaces/default/configmaps", big)
        assert r.status == 413
    except (ConnectionError, OSError):
        pass  # the server may close before reading it all: also a refusal
    assert d.get("/api/v1/namespaces/default/configmaps/big").status == 404
    assert d.get("/readyz").status == 200


def raw(d, data):
    """Send `data` on a new connection and read until the server closes it: (status, reply).

    The server may close before it has read everything (it stops at 64 KiB of headers), so a
    failed send is no failure: its reply is still queued for us. status is None when the
    server closed without answering."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(d.socket)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:  # closed with our unread request in its buffer
                break
            if not b:
                break
            out += b
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", out)
    return (int(m.group(1)) if m else None), out


def test_garbage_requests_do_not_hurt(shoald):
    d = shoald
    # each gets its answer and a close (recv above returns only once the server closed)
    assert raw(d, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n")[0] == 400
    assert raw(d, b"GET " + b"/a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 400
    # headers beyond the 64 KiB limit: the server answers before it has read them all
    assert raw(d, b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"y" * 100000 + b"\r\n\r\n")[0] == 400
    assert raw(d, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 99999999999999999999\r\n\r\n{")[0] == 413
    # libevent reports a malformed chunk size as 413, like an oversized body
    assert raw(d, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")[0] == 413
    # an encoded NUL must not cut the path short (this listed the namespaces)
    code, reply = raw(d, b"GET /api/v1/namespaces/%00/pods/%ff%fe HTTP/1.1\r\nHost: x\r\n"
                           b"Connection: close\r\n\r\n")
    assert code == 400 and b'"reason":"BadRequest"' in reply, reply
    code, reply = raw(d, b"GET /api/v1/namespaces?labelSelector=a%00b HTTP/1.1\r\n"
                           b"Host: x\r\nConnection: close\r\n\r\n")
    assert code == 400 and b'"reason":"BadRequest"' in reply, reply
    # nothing was created by any of them
    assert d.get("/api/v1/namespaces/default/configmaps").json()["items"] == []
    # a half-sent request does not block others
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.socket)
    s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    assert d.get("/api/v1/namespaces").status == 200
    s.close()
    assert d.get("/readyz").status == 200
    assert d.proc.poll() is None
