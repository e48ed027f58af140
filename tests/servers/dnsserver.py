#!/usr/bin/env python3
"""A DNS server on 127.0.0.1 (UDP) whose answers the test controls.

Usage: dnsserver.py [--port P] [--lifetime SEC] --zone NAME=BEHAVIOUR[:VALUE] ...
  NAME=a:1.2.3.4[,5.6.7.8]    A answers (AAAA: empty NOERROR)
  NAME=aaaa:::1               AAAA answers
  NAME=nxdomain | servfail | refused | empty
  NAME=slow:MS:1.2.3.4        answer A after MS milliseconds
  NAME=cold:MS:1.2.3.4        a resolver that has to look the name up first: every query of a
                              type until MS milliseconds after its first one is answered then,
                              every later one at once (from the cache)
  NAME=drop                   never answer
  NAME=rebind:1.2.3.4:5.6.7.8 the first A query answers 1.2.3.4, every later one 5.6.7.8
  NAME=cname:TARGET:1.2.3.4   a CNAME to TARGET, and TARGET's A answers
  NAME=cname:T1/T2:1.2.3.4    a CNAME chain NAME -> T1 -> T2 (any number of hops), T2's A answers
  NAME=tc                     an empty answer with the TC bit set (this server has no TCP, as
                              many home routers: the client's TCP retry is refused)
  NAME=tc:1.2.3.4             the same with A records in the truncated answer
--bind ADDR listens there instead of 127.0.0.1; --log FILE appends "NAME TYPE" per query.
Names not in the zone get NXDOMAIN. Prints {"dns": PORT} on stdout once listening.
"""
import argparse
import json
import socket
import struct
import sys
import threading
import time


def parse_question(msg):
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
    qtype, qclass = struct.unpack("!HH", msg[i:i + 4])
    return ".".join(labels), qtype, msg[12:i + 4]


def encode_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"


def reply(query, question, rcode, answers, tc=False):
    """answers: (type, rdata) owned by the question's name, or (type, rdata, owner) with the
    owner's name written out."""
    qid = query[:2]
    flags = 0x8000 | 0x0400 | 0x0100 | 0x0080 | rcode  # QR AA RD RA
    if tc:
        flags |= 0x0200
    hdr = qid + struct.pack("!HHHHH", flags, 1, len(answers), 0, 0)
    body = question
    for ans in answers:
        rtype, data = ans[0], ans[1]
        owner = encode_name(ans[2]) if len(ans) > 2 else b"\xc0\x0c"
        body += owner + struct.pack("!HHIH", rtype, 1, 300, len(data)) + data
    return hdr + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--zone", action="append", default=[])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--log")
    a = ap.parse_args()
    zone = {}
    for z in a.zone:
        name, _, beh = z.partition("=")
        zone[name.lower().rstrip(".")] = beh
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    seen = {}
    cached = {}  # (name, qtype) -> when the "cold" lookup is done
    lock = threading.Lock()
    print(json.dumps({"dns": s.getsockname()[1]}), flush=True)
    deadline = time.time() + a.lifetime

    def answer(data, peer):
        q = parse_question(data)
        if not q:
            return
        name, qtype, question = q
        beh = zone.get(name, "nxdomain")
        kind, _, value = beh.partition(":")
        with lock:
            if a.log:
                with open(a.log, "a") as f:
                    f.write("%s %d\n" % (name, qtype))
            if kind == "rebind":
                first, _, then = value.partition(":")
                n = seen.get(name, 0)
                if qtype == 1:
                    seen[name] = n + 1
                kind, value = "a", first if n == 0 else then
        if kind == "drop":
            return
        if kind == "slow":
            ms, _, value = value.partition(":")
            time.sleep(int(ms) / 1000.0)
            kind = "a"
        if kind == "cold":
            ms, _, value = value.partition(":")
            with lock:
                ready = cached.setdefault((name, qtype), time.time() + int(ms) / 1000.0)
            time.sleep(max(0.0, ready - time.time()))
            kind = "a"
        rcodes = {"nxdomain": 3, "servfail": 2, "refused": 5, "empty": 0}
        if kind == "tc":
            answers = [(1, socket.inet_pton(socket.AF_INET, v)) for v in value.split(",")
                       if v and qtype == 1]
            out = reply(data, question, 0, answers, tc=True)
        elif kind in rcodes:
            out = reply(data, question, rcodes[kind], [])
        else:
            answers = []
            if kind == "cname":  # the name is an alias of TARGET, which has the A answers
                chain, _, addrs = value.partition(":")
                hops = chain.split("/")
                answers = [(5, encode_name(hops[0]))]
                answers += [(5, encode_name(t), o) for o, t in zip(hops, hops[1:])]
                target = hops[-1]
                if qtype == 1:
                    answers += [(1, socket.inet_pton(socket.AF_INET, v), target)
                                for v in addrs.split(",")]
            elif kind == "a" and qtype == 1:
                answers = [(1, socket.inet_pton(socket.AF_INET, v)) for v in value.split(",")]
            elif kind == "aaaa" and qtype == 28:
                answers = [(28, socket.inet_pton(socket.AF_INET6, v)) for v in value.split(",")]
            out = reply(data, question, 0, answers)
        s.sendto(out, peer)

    s.settimeout(0.5)
    while time.time() < deadline:
        try:
            data, peer = s.recvfrom(4096)
        except socket.timeout:
            continue
        threading.Thread(target=answer, args=(data, peer), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
