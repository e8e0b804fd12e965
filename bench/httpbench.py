#!/usr/bin/python3
"""Small HTTP helpers for bench/run.sh (standard library only: http.client).

  httpbench.py latency  --unix PATH | --tcp HOST:PORT  [--token-file F]
                        --path /api/vms -n N [--new-conn] [--expect-vms K]
      N sequential GETs; prints one line "n=.. p50=.. p99=.. mean=.. min=.. max=.." (ms)
  httpbench.py count    ...same target options... --path P
      prints how many VMs the list answer holds (or -1)
  httpbench.py status   ...same target options... --path P
      prints the HTTP status of one GET
  httpbench.py sse      --unix PATH --vm NAME -n ROUNDS
      SSE client on /api/events; each round POSTs start, waits for the
      `event: vm` with state running, then force-stop and waits for shutoff;
      prints "start_evt=.. start_resp=.. stop_evt=.." lists (ms)
  httpbench.py freeport
      prints a free TCP port on 127.0.0.1

Exit status 0 on success, 1 when an answer was wrong (bad status, bad JSON,
wrong VM count, missing event) -- that is "broken", not "slow".
"""
import argparse
import http.client
import json
import os
import queue
import socket
import sys
import threading
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def make_conn(args, timeout=30):
    if args.unix:
        return UnixHTTPConnection(args.unix, timeout=timeout)
    host, port = args.tcp.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def headers(args):
    h = {"Accept": "application/json"}
    if args.token_file:
        with open(args.token_file) as f:
            h["Authorization"] = "Bearer " + f.read().strip()
    return h


def vm_count(body):
    try:
        doc = json.loads(body)
        return len(doc["vms"])
    except (ValueError, KeyError, TypeError):
        return -1


def die(msg):
    print("httpbench: " + msg, file=sys.stderr)
    sys.exit(1)


def pct(sorted_ms, p):
    """Nearest-rank percentile."""
    if not sorted_ms:
        return float("nan")
    k = max(0, min(len(sorted_ms) - 1, int(-(-p * len(sorted_ms) // 100)) - 1))
    return sorted_ms[k]


def cmd_latency(args):
    h = headers(args)
    conn = None
    times = []
    end = time.monotonic() + args.budget if args.budget else None
    for i in range(args.n):
        if end is not None and i >= 2 and time.monotonic() > end:
            break  # the time budget is spent (at least 2 samples taken)
        t0 = time.perf_counter_ns()
        if conn is None:
            conn = make_conn(args)
        conn.request("GET", args.path, headers=h)
        r = conn.getresponse()
        body = r.read()
        if args.new_conn or r.will_close:
            conn.close()
            conn = None
        t1 = time.perf_counter_ns()
        if r.status != 200:
            die("GET %s: status %d: %r" % (args.path, r.status, body[:200]))
        if i == 0 and args.expect_vms is not None:
            got = vm_count(body)
            if got != args.expect_vms:
                die("GET %s: %d VMs, expected %d" % (args.path, got, args.expect_vms))
        times.append((t1 - t0) / 1e6)
    if conn is not None:
        conn.close()
    s = sorted(times)
    print("n=%d p50=%.3f p99=%.3f mean=%.3f min=%.3f max=%.3f bytes=%d"
          % (len(s), pct(s, 50), pct(s, 99), sum(s) / len(s), s[0], s[-1], len(body)))


def cmd_status(args):
    try:
        conn = make_conn(args, timeout=5)
        conn.request("GET", args.path, headers=headers(args))
        r = conn.getresponse()
        r.read()
        conn.close()
        print(r.status)
    except OSError as e:
        print("error:%s" % e.__class__.__name__)


def cmd_count(args):
    try:
        conn = make_conn(args, timeout=5)
        conn.request("GET", args.path, headers=headers(args))
        r = conn.getresponse()
        body = r.read()
        conn.close()
    except OSError:
        print(-1)
        return
    print(vm_count(body) if r.status == 200 else -1)


def sse_reader(args, q, ready):
    """Parses the event stream; puts (t_ns, name, state) for each `event: vm`."""
    conn = make_conn(args, timeout=None)
    conn.request("GET", "/api/events",
                 headers={"Accept": "text/event-stream", **headers(args)})
    r = conn.getresponse()
    if r.status != 200:
        q.put(("error", "GET /api/events: status %d" % r.status))
        return
    ready.set()
    ev, data = None, []
    while True:
        line = r.fp.readline()
        t = time.perf_counter_ns()
        if not line:
            q.put(("error", "event stream closed"))
            return
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if ev == "vm" and data:
                try:
                    vm = json.loads("\n".join(data))
                    q.put((t, vm.get("name"), vm.get("state"), time.time()))
                except ValueError:
                    q.put(("error", "bad JSON in event: %r" % data))
            ev, data = None, []
        elif line.startswith("event:"):
            ev = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


def post(args, path):
    conn = make_conn(args, timeout=30)
    h = {"Content-Type": "application/json", **headers(args)}
    conn.request("POST", path, body=b"{}", headers=h)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    if r.status // 100 != 2:
        die("POST %s: status %d: %r" % (path, r.status, body[:200]))


def wait_state(q, name, state, timeout_s=20):
    end = time.monotonic() + timeout_s
    while True:
        left = end - time.monotonic()
        if left <= 0:
            die("no `event: vm` with %s %s within %ds" % (name, state, timeout_s))
        try:
            item = q.get(timeout=left)
        except queue.Empty:
            continue
        if item[0] == "error":
            die(item[1])
        if item[1] == name and item[2] == state:
            return item[0], item[3]


def cmd_sse(args):
    q = queue.Queue()
    ready = threading.Event()
    threading.Thread(target=sse_reader, args=(args, q, ready), daemon=True).start()
    if not ready.wait(10):
        die("the event stream did not open")
    time.sleep(0.2)
    start_evt, start_resp, stop_evt, wall = [], [], [], []
    for _ in range(args.n):
        t0 = time.perf_counter_ns()
        post(args, "/api/vms/%s/start" % args.vm)
        t1 = time.perf_counter_ns()
        te, tw = wait_state(q, args.vm, "running")
        start_evt.append((te - t0) / 1e6)
        start_resp.append((t1 - t0) / 1e6)
        wall.append(("Started", tw))
        t0 = time.perf_counter_ns()
        post(args, "/api/vms/%s/force-stop" % args.vm)
        te, tw = wait_state(q, args.vm, "shutoff")
        stop_evt.append((te - t0) / 1e6)
        wall.append(("Stopped", tw))
    fmt = lambda v: ",".join("%.1f" % x for x in v)
    line = "start_evt=%s start_resp=%s stop_evt=%s" % (
        fmt(start_evt), fmt(start_resp), fmt(stop_evt))
    if args.virsh_events:
        time.sleep(0.5)  # let virsh write its last line
        d = virsh_delays(args.virsh_events, args.vm, wall)
        if d:
            line += " virsh_to_sse=" + fmt(d)
    print(line)
    sys.stdout.flush()
    os._exit(0)  # the reader thread blocks on the stream


def virsh_delays(path, vm, wall):
    """ms from virsh's timestamp of each start/stop to the matching SSE event
    (both clients get libvirtd's same broadcast).  libvirt sends a group of
    lifecycle events per transition (Resumed + Started; Shutdown + Stopped):
    the first of each group counts."""
    import datetime
    groups = []  # [kind, first timestamp]
    try:
        with open(path) as f:
            for line in f:
                # 2026-11-24 13:52:01.123+0000: event 'lifecycle' for domain 'x': Started Booted
                if "'lifecycle'" not in line or ("'%s':" % vm) not in line:
                    continue
                ts, _, rest = line.partition(": event ")
                word = rest.rsplit("': ", 1)[-1].split()[0]
                kind = {"Resumed": "Started", "Started": "Started",
                        "Shutdown": "Stopped", "Stopped": "Stopped"}.get(word)
                if kind is None:
                    continue
                if groups and groups[-1][0] == kind:
                    continue
                t = datetime.datetime.strptime(ts.strip(), "%Y-%m-%d %H:%M:%S.%f%z")
                groups.append([kind, t.timestamp()])
    except (OSError, ValueError):
        return []
    if [k for k, _ in groups] != [k for k, _ in wall]:
        return []
    return [(tw - tv) * 1000 for (_, tw), (_, tv) in zip(wall, groups)]


def cmd_freeport(args):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["latency", "count", "status", "sse", "freeport"])
    ap.add_argument("--unix")
    ap.add_argument("--tcp")
    ap.add_argument("--token-file")
    ap.add_argument("--path", default="/api/vms")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--new-conn", action="store_true")
    ap.add_argument("--budget", type=float, help="stop after this many seconds (>= 2 samples)")
    ap.add_argument("--virsh-events", help="file written by `virsh event --timestamp --loop` (sse)")
    ap.add_argument("--expect-vms", type=int)
    ap.add_argument("--vm")
    args = ap.parse_args()
    if args.cmd != "freeport" and not (args.unix or args.tcp):
        ap.error("--unix or --tcp needed")
    {"latency": cmd_latency, "count": cmd_count, "status": cmd_status, "sse": cmd_sse,
     "freeport": cmd_freeport}[args.cmd](args)


if __name__ == "__main__":
    main()
