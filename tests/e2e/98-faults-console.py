#!/usr/bin/python3
"""Client side of tests/e2e/98-faults-console.sh: a guest flooding its serial
console while viewers are connected through vmmod's websockets.

usage: 98-faults-console.py BASE TOKEN VM SECONDS OUT-JSON

Viewer A (fast) starts `yes` in the guest's shell and reads everything for
SECONDS; viewer B (slow) connects with a tiny receive buffer and never reads
(vmmod closes it with 1008 once console_queue_kb = 1024 are queued for it,
checked when the flood got that far).
Then A stops the flood (Ctrl-C) and checks that its input still reaches the
guest, and B reads what was held for it, which must end in the close frame.  Prints "ok ..."/"FAIL ..." lines; writes the figures to OUT-JSON;
exits 1 when something failed."""
import json
import os
import secrets
import socket
import sys
import time
import urllib.parse

import websocket  # python3-websocket

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import console_ws as cw  # noqa: E402  (tests/e2e/lib)
from console_ws import check, ok, read_until, send_input, shell_ready  # noqa: E402
from console_client import Console, bearer_post, close_code  # noqa: E402

base, token, vm, seconds, out = sys.argv[1:6]
seconds = float(seconds)
con = Console(base, vm, bearer_post(urllib.parse.urlsplit(base).netloc, token))


def connect(rcvbuf=None):
    """A serial viewer (with a receive buffer of rcvbuf bytes)."""
    opts = ((socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf),) if rcvbuf else ()
    return con.connect(tk=con.ticket()["ticket"], sockopt=opts)


a = connect()
check("viewer A connected; the guest's shell answers", shell_ready(a, 120))
b = connect(rcvbuf=4096)
ok("viewer B connected (4 kB receive buffer, never reads)")
line = "FLOOD-" + secrets.token_hex(24)
send_input(a, "yes %s\n" % line)
t0 = time.monotonic()
total = 0
windows = {}  # second -> bytes
gaps = 0.0
last = t0
closed_a = None
while time.monotonic() - t0 < seconds:
    a.settimeout(5)
    try:
        op, data = a.recv_data(control_frame=True)
    except websocket.WebSocketTimeoutException:
        continue
    now = time.monotonic()
    if op == websocket.ABNF.OPCODE_CLOSE:
        closed_a = close_code(data)
        break
    if op == websocket.ABNF.OPCODE_BINARY and data[:1] == b"1":
        total += len(data) - 1
        gaps = max(gaps, now - last)
        last = now
        k = int(now - t0)
        windows[k] = windows.get(k, 0) + len(data) - 1
dur = time.monotonic() - t0
rate = total / dur
print("     viewer A: %d bytes in %.1f s (%.0f kB/s), longest gap %.2f s"
      % (total, dur, rate / 1024, gaps), flush=True)
check("viewer A was never closed during the flood", closed_a is None,
      "close %s" % closed_a)
check("viewer A got the flood (%d kB)" % (total // 1024), total > 256 * 1024)
check("viewer A never waited more than 3 s for output (longest %.2f s)" % gaps,
      gaps < 3)
empty = [s for s in range(int(dur)) if windows.get(s, 0) == 0]
check("viewer A received data in every second of the flood", not empty,
      "empty seconds %s" % empty[:10])

# stop the flood: Ctrl-C, then the shell must answer
word = "done-" + secrets.token_hex(4)
answered = False
for _ in range(10):
    send_input(a, "\x03")
    time.sleep(0.5)
    send_input(a, "echo %s | tr a-z A-Z\n" % word)
    found, _ = read_until(a, word.upper(), 10)
    if found:
        answered = True
        break
check("Ctrl-C stops the flood; viewer A's input still reaches the guest",
      answered)
# viewer B, once the flood is over: drained without hurry (a Python reader
# on a busy 2-core machine may take longer than a deadline to read the
# megabytes the kernel holds for it), it must end in vmmod's close frame.
b.settimeout(10)
b_state = "open"
b_bytes = 0
try:
    end = time.monotonic() + 180
    while time.monotonic() < end:
        op, data = b.recv_data(control_frame=True)
        if op == websocket.ABNF.OPCODE_CLOSE:
            code = close_code(data)
            b_state = "closed %d" % code
            break
        b_bytes += len(data)
except websocket.WebSocketTimeoutException:
    b_state = "open (drained)"
except Exception as e:  # noqa: BLE001 - report what happened
    b_state = "gone (%s)" % type(e).__name__
print("     viewer B after the flood: %s (%d kB read)" % (b_state, b_bytes // 1024),
      flush=True)
# vmmod queues at most console_queue_kb (1 MB in this test; 8 MB by
# default) for a viewer that does not read; past that plus what the
# kernel's socket buffers hold (tcp_wmem's 4 MB at most on loopback), B
# must have been closed with 1008.  A slower guest (a sanitizer build, a
# busy machine) may not get that far: then an open B is said, not failed.
CAP = 1024 * 1024
SURE = CAP + 4 * 1024 * 1024 + 512 * 1024
if b_state == "closed 1008" or total > SURE:
    check("viewer B (never reads) closed by vmmod with 1008 once %d kB were "
          "queued for it (the flood: %d kB)" % (CAP // 1024, total // 1024),
          b_state == "closed 1008", b_state)
else:
    print("     viewer B's queue cap not surely reached: the flood was %d kB "
          "(not checked)" % (total // 1024), flush=True)

a.close()
try:
    b.close()
except Exception:  # noqa: BLE001
    pass
json.dump({"bytes": total, "seconds": round(dur, 1), "rate_kbs": round(rate / 1024),
           "gap_s": round(gaps, 2), "b_state": b_state}, open(out, "w"))
sys.exit(1 if cw.fails else 0)
