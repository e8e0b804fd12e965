#!/usr/bin/python3
"""A misbehaving HTTP file server for the image pipeline tests (127.0.0.1 only).

Serves the files under --root with GET/HEAD, honours `Range: bytes=N-` (206)
unless --no-range, and logs one line per request to --log:

    GET /img.xz range=bytes=N- status=206 sent=M

Failure modes (each applies to the first --times requests of a file, then
the server behaves):
    --drop-after N    send N body bytes, then close the connection
    --stall-after N   send N body bytes, then send nothing until the client
                      goes away
    --status CODE     answer CODE (e.g. 404, 503) with no body
    --rate BPS        throttle every body to about BPS bytes/s (always)

The chosen port is written to --port-file.  The server exits when its parent
process does (a test that crashes leaves nothing behind).
"""
import argparse
import http.server
import os
import re
import socketserver
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--drop-after", type=int)
ap.add_argument("--stall-after", type=int)
ap.add_argument("--status", type=int)
ap.add_argument("--times", type=int, default=1)
ap.add_argument("--rate", type=int, default=0)
ap.add_argument("--no-range", action="store_true")
opt = ap.parse_args()

lock = threading.Lock()
served = {}  # path -> requests so far
logf = open(opt.log, "a", buffering=1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_req(self, rng, status, sent):
        with lock:
            logf.write("%s %s range=%s status=%d sent=%d\n"
                       % (self.command, self.path, rng or "-", status, sent))

    def do_HEAD(self):
        self.serve(body=False)

    def do_GET(self):
        self.serve(body=True)

    def serve(self, body):
        rel = self.path.split("?", 1)[0].lstrip("/")
        path = os.path.join(opt.root, rel)
        with lock:
            n = served.get(rel, 0)
            served[rel] = n + 1
        misbehave = n < opt.times
        rng = self.headers.get("Range")
        if misbehave and opt.status:
            self.send_response(opt.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.log_req(rng, opt.status, 0)
            return
        if ".." in rel.split("/") or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.log_req(rng, 404, 0)
            return
        size = os.path.getsize(path)
        start, status = 0, 200
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not opt.no_range:
            start = int(m.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.log_req(rng, 416, 0)
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size - start))
        if status == 206:
            self.send_header("Content-Range",
                             "bytes %d-%d/%d" % (start, size - 1, size))
        self.send_header("Accept-Ranges", "none" if opt.no_range else "bytes")
        self.end_headers()
        sent = 0
        limit = None
        if misbehave and opt.drop_after is not None:
            limit = opt.drop_after
        if misbehave and opt.stall_after is not None:
            limit = opt.stall_after
        t0 = time.monotonic()
        try:
            if body:
                with open(path, "rb") as f:
                    f.seek(start)
                    while True:
                        want = 65536
                        if limit is not None:
                            want = min(want, limit - sent)
                        chunk = f.read(want) if want > 0 else b""
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        sent += len(chunk)
                        if opt.rate:
                            ahead = sent / opt.rate - (time.monotonic() - t0)
                            if ahead > 0:
                                time.sleep(ahead)
                self.wfile.flush()
                if limit is not None and misbehave and opt.stall_after is not None:
                    # Keep the connection open and silent until the client quits.
                    self.connection.settimeout(0.2)
                    while True:
                        try:
                            if self.connection.recv(1) == b"":
                                break
                        except TimeoutError:
                            continue
                        except OSError:
                            break
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.log_req(rng, status, sent)
        if limit is not None:
            self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up early are part of the tests


def watch_parent(ppid):
    while os.getppid() == ppid:
        time.sleep(0.2)
    os._exit(0)


srv = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
tmp = opt.port_file + ".tmp"
with open(tmp, "w") as f:
    f.write("%d\n" % srv.server_address[1])
os.rename(tmp, opt.port_file)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
sys.exit(0)
