"""A scriptable stand-in for vantage-collector's POST /api/v1/measurements and /api/v1/check-in
(docs/api.md), on loopback, for the probe's upload tests. Python 3 stdlib only.

Each request is answered by the current `behaviour` (a callable) so a test can make the collector
fail, stall, cut connections or acknowledge only some uids, and then inspect what it stored.
"""
import gzip
import http.server
import json
import ssl
import threading
import time
import email.utils


class FakeCollector:
    def __init__(self, certfile=None, keyfile=None):
        self.lock = threading.Lock()
        self.stored = {}  # uid -> measurement (what a real collector would have committed)
        self.store_counts = {}  # uid -> times stored as "accepted" (must stay 1)
        self.requests = []  # (path, headers dict, list of measurements)
        self.behaviour = self.accept_all
        self.checkin_answer = {"probe_cc": "DE", "probe_asn": "AS3320",
                               "probe_network_name": "Deutsche Telekom AG",
                               "targets_version": "7"}
        self.clock_offset = 0  # seconds: the Date its answers carry is this far from ours
        self.date = None  # a Date header sent as is instead (a wrong or absurd one)
        self.checkin_hold = None  # a threading.Event the check-in waits for (at most 30 s)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def date_time_string(self, timestamp=None):
                if outer.date is not None:
                    return outer.date
                return email.utils.formatdate(time.time() + outer.clock_offset, usegmt=True)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                if self.path == "/api/v1/check-in":
                    with outer.lock:
                        outer.requests.append((self.path, hdrs, []))
                    if outer.checkin_hold is not None:
                        outer.checkin_hold.wait(30)
                    return outer.send_json(self, 200, outer.checkin_answer)
                if self.path != "/api/v1/measurements":
                    return outer.send_json(self, 404, {"error": "no such path"})
                ms = [json.loads(l) for l in body.decode().split("\n") if l.strip()]
                with outer.lock:
                    outer.requests.append((self.path, hdrs, ms))
                    k = len(outer.requests)
                outer.behaviour(self, ms, k)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme="http", host="127.0.0.1"):
        return "%s://%s:%d" % (scheme, host, self.port)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # ---- building blocks for behaviours ----
    @staticmethod
    def send_json(h, code, obj, headers=()):
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def store(self, ms, only=None):
        """Stores as a real collector does; returns the per-uid results."""
        results = []
        with self.lock:
            for m in ms:
                uid = m.get("measurement_uid")
                if only is not None and uid not in only:
                    continue
                if uid in self.stored:
                    results.append({"uid": uid, "status": "duplicate"})
                else:
                    self.stored[uid] = m
                    self.store_counts[uid] = self.store_counts.get(uid, 0) + 1
                    results.append({"uid": uid, "status": "accepted"})
        return results

    def accept_all(self, h, ms, k):
        self.send_json(h, 200, {"results": self.store(ms)})
