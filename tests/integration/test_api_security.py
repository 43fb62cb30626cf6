# SPDX-License-Identifier: Apache-2.0
"""TLS + bearer tokens on a non-loopback listener; the unix socket is root-only."""
import json
import os
import stat

from shoaltest import Netns, Shoald, sh

TOKEN = "s3cr3t-token-0123456789"


def add_address(ns):
    """A non-loopback address inside the test's netns (a veth pair, both ends inside)."""
    sh("ip", "-n", ns.name, "link", "add", "shoal-api-v0", "type", "veth", "peer", "name",
       "shoal-api-v1")
    sh("ip", "-n", ns.name, "addr", "add", "10.123.0.1/24", "dev", "shoal-api-v0")
    sh("ip", "-n", ns.name, "link", "set", "shoal-api-v0", "up")
    sh("ip", "-n", ns.name, "link", "set", "shoal-api-v1", "up")


def test_unix_socket_is_root_only(shoald):
    st = os.stat(shoald.socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_non_loopback_needs_tokens_file(tmp_path):
    ns = Netns()
    try:
        add_address(ns)
        d = Shoald(netns=ns, extra_args=["--api-listen", "10.123.0.1:6443"])
        try:
            d.start(wait=False)
            assert d.proc.wait(10) != 0
            assert "tokens-file" in d.logs()
        finally:
            d.close()
    finally:
        ns.close()


def test_tls_and_tokens(tmp_path):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{TOKEN},alice,1000,"admins,devs"\n# comment\nother,bob,1001\n')
    ns = Netns()
    try:
        add_address(ns)
        d = Shoald(netns=ns, extra_args=["--api-listen", "10.123.0.1:6443",
                                         "--tokens-file", str(tokens)])
        try:
            d.start()
            ca = os.path.join(d.state_dir, "tls", "ca.crt")
            assert os.path.exists(ca)
            assert stat.S_IMODE(os.stat(os.path.join(d.state_dir, "tls", "server.key"))
                                .st_mode) == 0o600
            url = "https://10.123.0.1:6443/api/v1/namespaces"

            def curl(*args):
                r = ns.run(["curl", "-sS", "--cacert", ca, "-w", "\n%{http_code}", *args],
                           check=False)
                body, _, code = r.stdout.rpartition("\n")
                return int(code or 0), body, r.stderr

            code, body, _ = curl(url)
            assert code == 401
            st = json.loads(body)
            assert st["kind"] == "Status" and st["reason"] == "Unauthorized"
            code, _, _ = curl("-H", "Authorization: Bearer wrong", url)
            assert code == 401
            code, body, err = curl("-H", f"Authorization: Bearer {TOKEN}", url)
            assert code == 200, err
            assert json.loads(body)["kind"] == "NamespaceList"
            # the certificate names the address, so verification passes without -k
            code, _, _ = curl("-H", "Authorization: Bearer other", url)
            assert code == 200
            # plain HTTP on the TLS port is refused, the daemon stays up
            r = ns.run(["curl", "-sS", "-m", "3", "http://10.123.0.1:6443/version"], check=False)
            assert r.returncode != 0 or "Status" not in r.stdout
            # a restart reuses the generated material
            before = open(ca).read()
            d.restart()
            assert open(ca).read() == before
            code, _, _ = curl("-H", f"Authorization: Bearer {TOKEN}", url)
            assert code == 200
            assert d.get("/readyz").status == 200  # unix socket: no credentials
        finally:
            d.close()
    finally:
        ns.close()
