# SPDX-License-Identifier: Apache-2.0
"""A fake upstream DNS server for test_dns.py: run inside the test's netns.

    dns_upstream.py ADDR PORT LOGFILE

Answers a few fixed names (below), over UDP and over TCP (2-byte length prefix, several
queries per connection), and logs every query it receives as one JSON line
{"id", "flags", "name", "type", "tcp"} so tests can see what the cluster DNS server relayed.
"""
import json
import socket
import struct
import sys
import threading

LOCK = threading.Lock()


def parse_question(pkt):
    labels, i = [], 12
    while pkt[i]:
        n = pkt[i]
        labels.append(pkt[i + 1:i + 1 + n].decode())
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", pkt[i + 1:i + 5])
    return ".".join(labels), qtype, qclass, i + 5


def reply(pkt, qend, rcode=0, answers=(), qid=None):
    """answers: (type, ttl, rdata) records owned by the question name (pointer 0xc00c)."""
    qid_, flags = struct.unpack("!HH", pkt[:4])
    flags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode
    out = struct.pack("!HHHHHH", qid if qid is not None else qid_, flags, 1, len(answers), 0, 0)
    out += pkt[12:qend]
    for rtype, ttl, rdata in answers:
        out += struct.pack("!HHHIH", 0xC00C, rtype, 1, ttl, len(rdata)) + rdata
    return out


def a(ip):
    return socket.inet_aton(ip)


def answer(pkt, log, send, tcp):
    """The replies to one query, sent with send(bytes)."""
    try:
        name, qtype, qclass, qend = parse_question(pkt)
    except (IndexError, struct.error):
        return
    qid, flags = struct.unpack("!HH", pkt[:4])
    with LOCK, open(log, "a") as f:
        f.write(json.dumps({"id": qid, "flags": flags, "name": name, "type": qtype,
                            "tcp": tcp}) + "\n")
    lname = name.lower()
    if lname == "slow.example.test":
        return  # never answers: the relay must time out with SERVFAIL
    if lname == "big.example.test" and qtype == 1:
        # 40 A records: 700 bytes, more than a classic UDP reply holds (sent whole anyway)
        out = reply(pkt, qend, answers=[(1, 60, a(f"198.51.100.{i + 1}")) for i in range(40)])
    elif lname == "up.example.test" and qtype == 1:
        out = reply(pkt, qend, answers=[(1, 300, a("192.0.2.1"))])
    elif lname == "cdn.example.test" and qtype == 1:
        out = reply(pkt, qend, answers=[(1, 60, a("192.0.2.7"))])
    elif lname == "mx.example.test" and qtype == 15:
        # exchange "mail.<qname>" compressed against the question
        out = reply(pkt, qend, answers=[(15, 60, b"\x00\x0a\x04mail\xc0\x0c")])
    elif lname == "spoof.example.test" and qtype == 1:
        # a forged reply with the wrong id first: the relay must ignore it
        send(reply(pkt, qend, answers=[(1, 60, a("6.6.6.6"))], qid=qid ^ 0x5555))
        out = reply(pkt, qend, answers=[(1, 60, a("192.0.2.9"))])
    elif lname.endswith(".in-addr.arpa"):
        out = reply(pkt, qend, rcode=3)
    elif lname.endswith(".example.test") or lname == "example.test":
        out = reply(pkt, qend, rcode=3 if lname.startswith("nx.") else 0)
    else:
        out = reply(pkt, qend, rcode=5)
    send(out)


def recv_exact(c, n):
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve_tcp_conn(c, log):
    def send(out):
        c.sendall(struct.pack("!H", len(out)) + out)
    with c:
        while True:
            hdr = recv_exact(c, 2)
            pkt = hdr and recv_exact(c, struct.unpack("!H", hdr)[0])
            if not pkt:
                return
            answer(pkt, log, send, True)


def serve_tcp(ls, log):
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_tcp_conn, args=(c, log), daemon=True).start()


def main():
    addr, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(16)
    threading.Thread(target=serve_tcp, args=(ls, log), daemon=True).start()
    with open(log, "a") as f:
        f.write(json.dumps({"ready": True}) + "\n")
    while True:
        pkt, peer = s.recvfrom(4096)
        answer(pkt, log, lambda out: s.sendto(out, peer), False)


if __name__ == "__main__":
    main()
