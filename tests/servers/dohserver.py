#!/usr/bin/env python3
"""A DNS-over-HTTPS server (RFC 8484) on 127.0.0.1 whose answers the test controls.

Usage: dohserver.py --cert PEM --key KEY [--port P] [--lifetime SEC] [--status CODE]
                    --zone NAME=BEHAVIOUR[:VALUE] ...
  NAME=a:1.2.3.4[,5.6.7.8]    A answers (TTL 300; an AAAA question gets an empty NOERROR)
  NAME=aaaa:::1[,::2]         AAAA answers
  NAME=nxdomain | servfail | refused | empty
  NAME=slow:MS:1.2.3.4        A answer after MS milliseconds
  NAME=drop                   read the request, then send nothing until the client goes
  NAME=garbage                200 application/dns-message with a body that is not DNS
  NAME=html                   200 text/html "Blocked by policy" (a blockpage, not DNS)
  NAME=nxhtml                 a DNS NXDOMAIN answer, but sent as text/html
  NAME=echo                   200 application/dns-message: the query itself (QR=0)
  NAME=otherq:OTHER:1.2.3.4   a valid A answer, but to a question for OTHER
Names not in the zone get NXDOMAIN. --status CODE answers every request with that HTTP status
and no DNS message. Serves POST (application/dns-message body) and GET ?dns=base64url on any
path. Prints {"doh": PORT} on stdout once listening; serves until killed or --lifetime passes.
"""
import argparse
import base64
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def parse_question(msg):
    """(name, qtype, question bytes) of a DNS query, or None."""
    if len(msg) < 12:
        return None
    i, labels = 12, []
    while i < len(msg):
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(msg):
            return None
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    if i + 4 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[i:i + 2])[0]
    return ".".join(labels), qtype, msg[12:i + 4]


def dns_reply(query, question, rcode, answers):
    flags = 0x8000 | 0x0100 | 0x0080 | rcode  # QR RD RA
    out = query[:2] + struct.pack("!HHHHH", flags, 1, len(answers), 0, 0) + question
    for rtype, data in answers:
        out += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(data)) + data
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    zone = {}
    status = 0

    def log_message(self, fmt, *args):
        pass

    def send(self, code, body, ctype="application/dns-message"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer(self, query):
        if self.status:
            self.send(self.status, b"no\n", "text/plain")
            return
        q = parse_question(query)
        if not q:
            self.send(400, b"bad dns message\n", "text/plain")
            return
        name, qtype, question = q
        kind, _, value = self.zone.get(name, "nxdomain").partition(":")
        if kind == "drop":
            time.sleep(60)
            return
        if kind == "garbage":
            self.send(200, b"\x01\x02not dns")
            return
        if kind == "html":
            self.send(200, b"Blocked by policy", "text/html")
            return
        if kind == "nxhtml":
            self.send(200, dns_reply(query, question, 3, []), "text/html")
            return
        if kind == "echo":
            self.send(200, query)
            return
        if kind == "otherq":
            other, _, addr = value.partition(":")
            oq = b"".join(bytes([len(l)]) + l.encode() for l in other.split(".")) + b"\0"
            oq += struct.pack("!HH", qtype, 1)
            self.send(200, dns_reply(query, oq, 0, [(1, socket.inet_pton(socket.AF_INET, addr))]))
            return
        if kind == "slow":
            ms, _, value = value.partition(":")
            time.sleep(int(ms) / 1000.0)
            kind = "a"
        rcodes = {"nxdomain": 3, "servfail": 2, "refused": 5, "empty": 0}
        answers = []
        if kind == "a" and qtype == 1:
            answers = [(1, socket.inet_pton(socket.AF_INET, v)) for v in value.split(",")]
        elif kind == "aaaa" and qtype == 28:
            answers = [(28, socket.inet_pton(socket.AF_INET6, v)) for v in value.split(",")]
        self.send(200, dns_reply(query, question, rcodes.get(kind, 0), answers))

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.answer(self.rfile.read(min(n, 65535)))

    def do_GET(self):
        qs = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        b = qs.get("dns", [""])[0]
        try:
            query = base64.urlsafe_b64decode(b + "=" * (-len(b) % 4))
        except ValueError:
            query = b""
        self.answer(query)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--zone", action="append", default=[], metavar="NAME=BEHAVIOUR[:VALUE]")
    a = ap.parse_args()
    for z in a.zone:
        name, _, beh = z.partition("=")
        Handler.zone[name.lower().rstrip(".")] = beh
    Handler.status = a.status
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(json.dumps({"doh": srv.server_address[1]}), flush=True)
    threading.Timer(a.lifetime, srv.shutdown).start()
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
