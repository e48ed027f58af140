#!/usr/bin/env python3
"""A TLS server on 127.0.0.1 for the TLS handshake step's tests.

Usage: tlsserver.py --cert PEM,KEY [--port P] [--alpn h2,http/1.1] [--require-sni NAME]
                    [--max-version 1.2|1.3] [--reply HEX|close] [--lifetime SEC]
Completes TLS handshakes with the given certificate (ALPN from --alpn when given), then reads
until the client closes. --require-sni NAME fails every handshake whose SNI is not NAME (absent
included) with an unrecognized_name alert, so a test can tell which SNI was sent; an empty NAME
(--require-sni '') accepts only handshakes that send no SNI at all. --reply HEX answers the
client's first read inside TLS with those bytes; --reply close closes the connection instead.
Prints {"tls": PORT} on stdout once listening; serves until killed or --lifetime passes.
"""
import argparse
import json
import socket
import ssl
import sys
import threading
import time


def serve(conn, ctx, reply):
    try:
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as t:
            if reply is not None and t.recv(4096):
                if reply == "close":
                    return
                t.sendall(bytes.fromhex(reply))
            while t.recv(4096):
                pass
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cert", required=True, help="CERT,KEY")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--alpn", default="")
    ap.add_argument("--require-sni", default=None)
    ap.add_argument("--max-version", choices=["1.2", "1.3"], default="1.3")
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--reply", default=None)
    a = ap.parse_args()
    cert, key = a.cert.split(",", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if a.max_version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if a.alpn:
        ctx.set_alpn_protocols(a.alpn.split(","))
    if a.require_sni is not None:
        def check(sock, name, c):
            if name != (a.require_sni or None):
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            return None
        ctx.sni_callback = check
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", a.port))
    s.listen(16)
    s.settimeout(0.5)
    print(json.dumps({"tls": s.getsockname()[1]}), flush=True)
    deadline = time.time() + a.lifetime
    while time.time() < deadline:
        try:
            conn, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn, ctx, a.reply), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
