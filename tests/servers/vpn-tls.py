#!/usr/bin/env python3
"""TLS-VPN-like and Tor-like endpoints for the VPN tests and the lab (Python stdlib only).

  vpn-tls.py --cert C --key K [--listen ADDR] --tls-port P --dir-port Q

--tls-port: a TLS server (any SNI) that answers
  SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/  -> "HTTP/1.1 200 OK" with the
      endless Content-Length of MS-SSTP, then keeps the connection open a little;
  POST / with an XML <config-auth ... type="init"> body          -> an OpenConnect-style
      <config-auth type="auth-request"> form;
  anything else                                                  -> 404.
  a Tor VERSIONS cell (00 00 07 ...)                               -> a VERSIONS cell offering
      link protocols 3, 4 and 5, as a relay answers the link handshake.
  A client that only does the handshake is fine too.
--dir-port: plain HTTP; /tor/status-vote/current/consensus.z -> a zlib-compressed document that
  starts like a consensus; anything else -> 404.
Prints "ready" when both listen. Each connection is bounded in time and size.
"""
import argparse
import socket
import ssl
import sys
import threading
import time
import zlib

SSTP_PATH = b"/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/"
OC_REPLY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<config-auth client="vpn" type="auth-request" '
            b'aggregate-auth-version="2"><opaque is-for="sg"><tunnel-group>lab</tunnel-group>'
            b'</opaque><auth id="main"><form><input type="text" name="username" label="Username:"/>'
            b'</form></auth></config-auth>')
CONSENSUS = zlib.compress(b"network-status-version 3\nvote-status consensus\n" + b"r lab\n" * 200)


def read_request(conn, data=b""):
    conn.settimeout(5)
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            try:
                length = int(v.strip())
            except ValueError:
                length = 0
    if length > 65536:
        length = 0  # SSTP's endless length: no body follows the request
    while len(rest) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        rest += chunk
    return head, rest


def respond(conn, status, body, ctype=b"text/plain"):
    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: " +
                 str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def tls_client(raw, ctx):
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        return
    try:
        conn.settimeout(5)
        first = conn.recv(4096)
        if first.startswith(b"\x00\x00\x07"):
            # Tor's link handshake: a VERSIONS cell; answer with ours (3, 4, 5), as a relay does
            # before its CERTS, AUTH_CHALLENGE and NETINFO (not sent: the probe stops here).
            conn.sendall(bytes([0, 0, 7, 0, 6, 0, 3, 0, 4, 0, 5]))
            time.sleep(0.5)
            return
        head, body = read_request(conn, first)
        if head is None:
            return
        line = head.split(b"\r\n")[0].split(b" ")
        method, path = (line + [b"", b""])[:2]
        if method == b"SSTP_DUPLEX_POST" and path == SSTP_PATH:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n"
                         b"Server: Microsoft-HTTPAPI/2.0\r\n\r\n")
            time.sleep(1)
        elif method == b"POST" and b"<config-auth" in body and b'type="init"' in body:
            respond(conn, b"200 OK", OC_REPLY, b"text/xml")
        else:
            respond(conn, b"404 Not Found", b"not here\n")
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def dir_client(conn):
    try:
        head, _ = read_request(conn)
        if head is None:
            return
        line = head.split(b"\r\n")[0].split(b" ")
        if len(line) >= 2 and line[0] == b"GET" and \
                line[1] == b"/tor/status-vote/current/consensus.z":
            respond(conn, b"200 OK", CONSENSUS, b"application/octet-stream")
        else:
            respond(conn, b"404 Not Found", b"not here\n")
    except OSError:
        pass
    finally:
        conn.close()


def serve(sock, handler):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def listen(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--dir-port", type=int, required=True)
    ap.add_argument("--lifetime", type=float, default=300)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    t = listen(a.listen, a.tls_port)
    d = listen(a.listen, a.dir_port)
    threading.Thread(target=serve, args=(t, lambda c: tls_client(c, ctx)), daemon=True).start()
    threading.Thread(target=serve, args=(d, dir_client), daemon=True).start()
    print("ready", flush=True)
    time.sleep(a.lifetime)


if __name__ == "__main__":
    sys.exit(main())
