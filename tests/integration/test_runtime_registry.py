# SPDX-License-Identifier: Apache-2.0
"""Registry pulls against Debian's docker-registry on loopback inside a network namespace this
test creates, with images pushed by skopeo: plain pull, manifest list (linux/amd64 chosen),
Bearer token auth (a small token service issuing registry-signed JWTs), digest references."""
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_runtime import RTCTL, built, busybox_layout  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")

TOKEN_SERVER = r'''
import base64, json, sys, time, secrets, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography import x509
port, key_pem, cert_pem, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
key = serialization.load_pem_private_key(open(key_pem, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(cert_pem, "rb").read())
der = cert.public_bytes(serialization.Encoding.DER)
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        access = []
        for scope in q.get("scope", []):
            typ, name, actions = scope.split(":")
            access.append({"type": typ, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        hdr = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": "shoal-test-issuer", "sub": "anonymous", "aud": q.get("service", [""])[0],
                  "exp": now + 600, "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8),
                  "access": access}
        signing = b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode())
        sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        body = json.dumps({"token": signing + "." + b64u(sig)}).encode()
        with open(log, "a") as f:
            f.write(self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Registry:
    def __init__(self, token=False, tls=False):
        self.id = secrets.token_hex(4)
        self.ns = f"shoal-runtime-reg-{self.id}"
        self.dir = f"/tmp/shoal-runtime-reg-{self.id}"
        os.makedirs(self.dir)
        self.port = free_port()
        self.procs = []
        self.token_log = f"{self.dir}/token.log"
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self.nsexec("ip", "link", "set", "lo", "up")
        auth = ""
        if token:
            self.tport = free_port()
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            f"{self.dir}/key.pem", "-out", f"{self.dir}/cert.pem", "-days", "1",
                            "-subj", "/CN=shoal-test-token"], check=True, capture_output=True)
            with open(f"{self.dir}/shoal_token_server.py", "w") as f:
                f.write(TOKEN_SERVER)
            self.spawn(["/usr/bin/python3", f"{self.dir}/shoal_token_server.py", str(self.tport),
                        f"{self.dir}/key.pem", f"{self.dir}/cert.pem", self.token_log])
            auth = (f"auth:\n  token:\n    realm: http://127.0.0.1:{self.tport}/token\n"
                    f"    service: shoal-test\n    issuer: shoal-test-issuer\n"
                    f"    rootcertbundle: {self.dir}/cert.pem\n")
        scheme, tls_block = "http", ""
        if tls:
            scheme = "https"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            f"{self.dir}/tls.key", "-out", f"{self.dir}/tls.crt", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            tls_block = (f"  tls:\n    certificate: {self.dir}/tls.crt\n"
                         f"    key: {self.dir}/tls.key\n")
        with open(f"{self.dir}/config.yml", "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.dir}/data\n  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n{tls_block}{auth}")
        self.spawn(["docker-registry", "serve", f"{self.dir}/config.yml"])
        deadline = time.time() + 10
        while time.time() < deadline:
            p = subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-sk", "-o", "/dev/null",
                                "-w", "%{http_code}", f"{scheme}://127.0.0.1:{self.port}/v2/"],
                               capture_output=True, text=True)
            ready = p.stdout in ("200", "401")
            if ready and token:
                t = subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-s", "-o",
                                    "/dev/null", "-w", "%{http_code}",
                                    f"http://127.0.0.1:{self.tport}/token?service=x"],
                                   capture_output=True, text=True)
                ready = t.stdout == "200"
            if ready:
                break
            if any(pr.poll() is not None for pr in self.procs):
                break
            time.sleep(0.1)
        else:
            self.close()
            pytest.skip("docker-registry did not start within 10 s")
        if any(pr.poll() is not None for pr in self.procs):
            out = open(f"{self.dir}/proc.log").read()
            self.close()
            pytest.skip(f"docker-registry could not start: {out[-500:]}")

    def spawn(self, argv):
        log = open(f"{self.dir}/proc.log", "a")
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], stdout=log,
                                           stderr=log, start_new_session=True))

    def nsexec(self, *argv, check=True):
        return subprocess.run(["ip", "netns", "exec", self.ns, *argv], check=check,
                              capture_output=True, text=True)

    def push(self, src, repo_tag, all_=False):
        args = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if all_:
            args.append("--all")
        self.nsexec(*args, src, f"docker://127.0.0.1:{self.port}/{repo_tag}")

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        subprocess.run(["ip", "netns", "del", self.ns], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def rt(state, *args, ns=None, check=True):
    argv = [RTCTL, "--state", state, "--run", state + "-run", *args]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: {p.stderr}")
    return p


@pytest.fixture
def store():
    d = f"/tmp/shoal-runtime-pull-{secrets.token_hex(4)}"
    yield d
    shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(d + "-run", ignore_errors=True)


def layout_digest(layout):
    with open(f"{layout}/index.json") as f:
        return json.load(f)["manifests"][0]["digest"]


def test_pull_plain_and_by_digest(built, busybox_layout, store):
    reg = Registry()
    try:
        reg.push(f"oci:{busybox_layout}:latest", "library/busybox:1.0")
        ref = f"127.0.0.1:{reg.port}/library/busybox:1.0"
        p = rt(store, "image", "pull", ref, "--plain-http", ns=reg.ns)
        assert p.stdout.strip() == ref
        img = json.loads(rt(store, "image", "inspect", ref).stdout)
        assert img["config"]["config"]["Cmd"] == ["sh"]
        layer = img["layers"][0]
        assert os.path.isfile(f"{store}/images/layers/{layer[7:]}/bin/busybox")
        # by digest: the registry serves the manifest skopeo pushed, verified against it
        dref = f"127.0.0.1:{reg.port}/library/busybox@{img['digest']}"
        rt(store, "image", "pull", dref, "--plain-http", ns=reg.ns)
        bad = f"127.0.0.1:{reg.port}/library/busybox@sha256:" + "0" * 64
        p = rt(store, "image", "pull", bad, "--plain-http", ns=reg.ns, check=False)
        assert p.returncode != 0 and "ErrImagePull" in p.stderr
        p = rt(store, "image", "pull", f"127.0.0.1:{reg.port}/library/nope:1", "--plain-http",
               ns=reg.ns, check=False)
        assert p.returncode != 0 and "not found" in p.stderr
    finally:
        reg.close()


def test_pull_manifest_list_picks_amd64(built, busybox_layout, store, tmp_path):
    # a layout whose tag names an image index with an arm64 and an amd64 image
    multi = str(tmp_path / "multi")
    shutil.copytree(busybox_layout, multi)
    blobs = f"{multi}/blobs/sha256"
    amd64 = layout_digest(multi)
    with open(f"{blobs}/{amd64[7:]}") as f:
        man = json.load(f)
    with open(f"{blobs}/{man['config']['digest'][7:]}") as f:
        cfg = json.load(f)

    def put(obj):
        b = json.dumps(obj).encode()
        d = hashlib.sha256(b).hexdigest()
        with open(f"{blobs}/{d}", "wb") as f:
            f.write(b)
        return "sha256:" + d, len(b)

    cfg["architecture"] = "arm64"
    cfg["config"]["Cmd"] = ["arm64-cmd"]
    cdig, csize = put(cfg)
    man_arm = dict(man, config=dict(man["config"], digest=cdig, size=csize))
    adig, asize = put(man_arm)
    with open(f"{blobs}/{amd64[7:]}", "rb") as f:
        amd_size = len(f.read())
    mt = "application/vnd.oci.image.manifest.v1+json"
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [
               {"mediaType": mt, "digest": adig, "size": asize,
                "platform": {"os": "linux", "architecture": "arm64"}},
               {"mediaType": mt, "digest": amd64, "size": amd_size,
                "platform": {"os": "linux", "architecture": "amd64"}}]}
    idig, isize = put(idx)
    with open(f"{multi}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idig,
             "size": isize, "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}, f)
    reg = Registry()
    try:
        reg.push(f"oci:{multi}:multi", "team/multi:v1", all_=True)
        ref = f"127.0.0.1:{reg.port}/team/multi:v1"
        rt(store, "image", "pull", ref, "--plain-http", ns=reg.ns)
        img = json.loads(rt(store, "image", "inspect", ref).stdout)
        assert img["digest"] == amd64
        assert img["config"]["architecture"] == "amd64"
        assert img["config"]["config"]["Cmd"] == ["sh"]
    finally:
        reg.close()


def test_pull_with_bearer_token_auth(built, busybox_layout, store):
    reg = Registry(token=True)
    try:
        p = reg.nsexec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                       f"http://127.0.0.1:{reg.port}/v2/")
        assert p.stdout == "401"  # the registry really requires a token
        reg.push(f"oci:{busybox_layout}:latest", "library/busybox:tok")
        open(reg.token_log, "w").close()
        ref = f"127.0.0.1:{reg.port}/library/busybox:tok"
        rt(store, "image", "pull", ref, "--plain-http", ns=reg.ns)
        with open(reg.token_log) as f:
            reqs = f.read().splitlines()
        assert reqs and "scope=repository%3Alibrary%2Fbusybox%3Apull" in reqs[0]
        assert "service=shoal-test" in reqs[0]
        img = json.loads(rt(store, "image", "inspect", ref).stdout)
        assert img["digest"] == layout_digest(busybox_layout)
    finally:
        reg.close()


def test_pull_https_with_ca_file(built, busybox_layout, store):
    reg = Registry(tls=True)
    try:
        reg.push(f"oci:{busybox_layout}:latest", "library/busybox:tls")
        ref = f"127.0.0.1:{reg.port}/library/busybox:tls"
        # an unknown CA is refused, the registry's own certificate as CA file works
        p = rt(store, "image", "pull", ref, ns=reg.ns, check=False)
        assert p.returncode != 0 and "ErrImagePull" in p.stderr
        rt(store, "image", "pull", ref, "--ca-file", f"{reg.dir}/tls.crt", ns=reg.ns)
        img = json.loads(rt(store, "image", "inspect", ref).stdout)
        assert img["digest"] == layout_digest(busybox_layout)
    finally:
        reg.close()
