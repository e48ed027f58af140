#!/usr/bin/env python3
"""A TCP server on 127.0.0.1 that misbehaves on purpose.

Usage: rawserver.py MODE [--lifetime SEC]
  reset    read the first bytes (a ClientHello, a request), then close with a TCP RST
  stall    accept and never answer
  garbage  read the first bytes, answer 64 bytes of junk, close
  eof      read the first bytes, close cleanly
Prints {"port": P} on stdout once listening.
"""
import json
import socket
import struct
import sys
import threading
import time


def main():
    mode = sys.argv[1]
    lifetime = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--lifetime" else 60.0
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    ls.settimeout(0.5)
    print(json.dumps({"port": ls.getsockname()[1]}), flush=True)
    deadline = time.time() + lifetime
    held = []

    def serve(c):
        c.settimeout(5)
        try:
            c.recv(4096)
        except OSError:
            pass
        if mode == "reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        elif mode == "garbage":
            c.sendall(bytes(range(64)))
            c.close()
        elif mode == "eof":
            c.close()

    while time.time() < deadline:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        if mode == "stall":
            held.append(c)
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
