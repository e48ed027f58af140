#!/usr/bin/env python3
"""The lab censor's in-path middlebox: a transparent TCP proxy that answers for the server.

Usage: middlebox.py --port P --lifetime SEC RULE...
  RULE is NAME=ACTION: a connection whose first bytes (a ClientHello's SNI, or an HTTP request's
  Host header) name NAME gets ACTION; every other connection is passed on to its original
  destination (iptables REDIRECT keeps it: SO_ORIGINAL_DST), byte for byte.
  ACTION:
    alert        a TLS fatal alert (handshake_failure, 40), then the connection is closed
    alert-hold   the same alert, and the connection held open (the censor never closes it)
    302:URL      an HTTP 302 redirect to URL, then closed (Pakistan's, Indonesia's ISPs)
Runs in vt-censor; iptables -t nat ... -j REDIRECT --to-ports P sends it the client's traffic.
Every thread and the process end by --lifetime.
"""
import socket
import struct
import sys
import threading
import time

SO_ORIGINAL_DST = 80
ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40])


def sni_of(data):
    """The server_name of a ClientHello in data (one record), or None."""
    try:
        if data[0] != 0x16 or data[5] != 0x01:
            return None
        p = 9 + 2 + 32  # record header, handshake header, version, random
        p += 1 + data[p]  # session id
        p += 2 + struct.unpack(">H", data[p:p + 2])[0]  # cipher suites
        p += 1 + data[p]  # compression methods
        end = p + 2 + struct.unpack(">H", data[p:p + 2])[0]
        p += 2
        while p + 4 <= end:
            typ, ln = struct.unpack(">HH", data[p:p + 4])
            if typ == 0:  # server_name: list length, type, name length, name
                n = struct.unpack(">H", data[p + 7:p + 9])[0]
                return data[p + 9:p + 9 + n].decode("ascii", "replace").lower()
            p += 4 + ln
    except (IndexError, struct.error):
        return None
    return None


def host_of(data):
    for line in data.split(b"\r\n")[1:]:
        if line.lower().startswith(b"host:"):
            return line[5:].strip().split(b":")[0].decode("ascii", "replace").lower()
    return None


def pipe(a, b, deadline):
    try:
        while time.time() < deadline:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def handle(c, rules, deadline):
    c.settimeout(max(0.1, min(5.0, deadline - time.time())))
    try:
        first = c.recv(16384)
    except OSError:
        first = b""
    if not first:  # a port check (lab_wait_port) or a client that gave up
        c.close()
        return
    name = sni_of(first) or host_of(first)
    action = rules.get(name)
    if action in ("alert", "alert-hold"):
        c.sendall(ALERT)
        if action == "alert-hold":
            while time.time() < deadline:
                try:
                    if not c.recv(4096):
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
        c.close()
        return
    if action and action.startswith("302:"):
        c.sendall(("HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n" % action[4:]).encode())
        c.close()
        return
    raw = c.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, ip = struct.unpack(">H", raw[2:4])[0], socket.inet_ntoa(raw[4:8])
    try:
        s = socket.create_connection((ip, port), timeout=3)
    except OSError:
        c.close()
        return
    s.sendall(first)
    s.settimeout(max(0.1, deadline - time.time()))
    c.settimeout(max(0.1, deadline - time.time()))
    threading.Thread(target=pipe, args=(s, c, deadline), daemon=True).start()
    pipe(c, s, deadline)


def main():
    args = sys.argv[1:]
    port, lifetime, rules = 0, 120.0, {}
    while args:
        a = args.pop(0)
        if a == "--port":
            port = int(args.pop(0))
        elif a == "--lifetime":
            lifetime = float(args.pop(0))
        else:
            name, _, action = a.partition("=")
            rules[name.lower()] = action
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(64)
    ls.settimeout(0.5)
    print("listening", flush=True)
    deadline = time.time() + lifetime
    while time.time() < deadline:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        threading.Thread(target=handle, args=(c, rules, deadline), daemon=True).start()


if __name__ == "__main__":
    main()
