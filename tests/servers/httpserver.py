#!/usr/bin/env python3
"""Loopback HTTP/HTTPS server with misbehaving paths, for the HTTP step and web kind tests.

Starts a plain HTTP server and, when certificates are given, an HTTPS server per certificate,
all on 127.0.0.1 (or --bind ADDR) with ephemeral ports (or --http-port / --https-port), then prints one JSON line {"http":P,"https":[P,...]} on
stdout and serves until killed (or --lifetime seconds pass).

Paths:
  /title             200 text/html with <title>  Hello   Vantage </title>
  /chain/1..3        a redirect chain across two names: /chain/1 on any host -> http://<h2>:P/chain/2
                     -> /chain/3 (relative) -> http://<h1>:P/final  (names from ?h1=&h2=)
  /final             200 "<title>Final</title>"
  /redirect-loop     302 to itself
  /reset             200 with Content-Length 100000, 1000 bytes, then a TCP RST
  /close             200 with Content-Length 100000, 1000 bytes, then a clean close (FIN)
  /stall             accepts, then says nothing for --stall seconds
  /binary            200 application/octet-stream, bytes 0..255 x 16
  /endless           200 without length, writes until the client goes (bounded by --lifetime)
  /bigheaders        200 with about 200 KiB of headers
  /bigheaderline     200 with one 200 KiB header line
  /large?n=BYTES     200 with n bytes of 'x'
  /echo              200, body = method and request body (also for POST)
  /delay?ms=N        200 "<title>Delayed</title>" after waiting N ms (at most 10 s) from the end
                     of the request: a slow server, for the lab's latency accuracy (scenario 15)
  anything else      404 "<title>Not Found</title>"
"""
import argparse
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vantage-test"
    # TCP_NODELAY: without it a small answer can wait ~40 ms for a delayed ACK (Nagle), a delay
    # of the test server's own that would be read as the network's
    disable_nagle_algorithm = True
    stall = 30.0

    def log_message(self, fmt, *args):
        pass

    def send_body(self, code, body, ctype="text/html; charset=utf-8", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def redirect(self, location):
        self.send_body(302, b"<title>Moved</title>", extra=[("Location", location)])

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(min(n, 1 << 20)) if n else b""
        self.send_body(200, b"POST " + data, ctype="text/plain")

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        port = self.server.server_address[1]
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        h1 = q.get("h1", ["a.test"])[0]
        h2 = q.get("h2", ["b.test"])[0]
        qs = "?" + u.query if u.query else ""
        p = u.path
        if p == "/title":
            self.send_body(200, b"<html><head><TITLE lang=en>  Hello \n  Vantage </TITLE></head>"
                           b"<body>hi</body></html>")
        elif p == "/chain/1":
            self.redirect("%s://%s:%d/chain/2%s" % (scheme, h2, port, qs))
        elif p == "/chain/2":
            self.redirect("/chain/3" + qs)
        elif p == "/chain/3":
            self.redirect("%s://%s:%d/final" % (scheme, h1, port))
        elif p == "/final":
            self.send_body(200, b"<html><title>Final</title>done</html>")
        elif p == "/redirect-loop":
            self.redirect("/redirect-loop")
        elif p in ("/reset", "/close"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"<title>Partial</title>" + b"x" * 978)
            self.wfile.flush()
            time.sleep(0.1)
            if p == "/reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            self.close_connection = True
            try:
                self.connection.close()
            except OSError:
                pass
        elif p == "/stall":
            time.sleep(self.stall)
            self.close_connection = True
        elif p == "/binary":
            self.send_body(200, bytes(range(256)) * 16, ctype="application/octet-stream")
        elif p == "/endless":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"y" * 16384
            deadline = time.monotonic() + 20
            try:
                while time.monotonic() < deadline:
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
        elif p in ("/bigheaders", "/bigheaderline"):
            self.send_response(200)
            if p == "/bigheaderline":
                self.send_header("X-Filler", "z" * 200000)
            for i in range(200 if p == "/bigheaders" else 0):
                self.send_header("X-Filler-%d" % i, "z" * 1000)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        elif p == "/large":
            n = min(int(q.get("n", ["1048576"])[0]), 64 << 20)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
        elif p == "/echo":
            self.send_body(200, b"GET", ctype="text/plain")
        elif p == "/delay":
            time.sleep(min(max(int(q.get("ms", ["0"])[0]), 0), 10000) / 1000.0)
            self.send_body(200, b"<html><head><title>Delayed</title></head><body>ok</body></html>")
        else:
            self.send_body(404, b"<title>Not Found</title>")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # failed handshakes and resets are what the tests are about


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", action="append", default=[],
                    help="CERT,KEY for an HTTPS listener (repeatable)")
    ap.add_argument("--stall", type=float, default=30.0)
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--https-port", type=int, default=0, help="of the first --cert")
    args = ap.parse_args()
    Handler.stall = args.stall

    servers = [Server((args.bind, args.http_port), Handler)]
    https_ports = []
    for pair in args.cert:
        cert, key = pair.split(",", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        s = Server((args.bind, 0 if https_ports else args.https_port), Handler)
        # The handshake runs in the handler's thread, on its first read.
        s.socket = ctx.wrap_socket(s.socket, server_side=True, do_handshake_on_connect=False)
        servers.append(s)
        https_ports.append(s.server_address[1])
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(json.dumps({"http": servers[0].server_address[1], "https": https_ports}), flush=True)
    time.sleep(args.lifetime)


if __name__ == "__main__":
    main()
