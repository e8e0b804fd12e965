#!/usr/bin/python3
"""Client side of tests/e2e/50-console.sh: consoles of a running VM through
vmmod's TCP listener with Debian's python3-websocket (websocket-client).

usage: 50-console.py BASE TOKEN VM [hold]  (BASE like http://127.0.0.1:18091)
Prints "ok ..." / "FAIL ..." lines; exits 1 when something failed.
With "hold": one serial viewer that prints "holding" once connected and
waits for vmmod's close frame (50-console.sh stops vmmod meanwhile)."""
import http.client
import os
import secrets
import subprocess
import sys
import urllib.parse

import websocket  # python3-websocket

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import console_ws as cw  # noqa: E402  (tests/e2e/lib)
from console_ws import check, ok, read_until, send_input  # noqa: E402
from console_client import (NO_ORIGIN, Console, bearer_post,  # noqa: E402
                            close_code, echo_checks, page_checks, rfb_check,
                            roundtrip, wait_close)

base, token, vm = sys.argv[1:4]
hold = sys.argv[4:5] == ["hold"]
host = urllib.parse.urlsplit(base).netloc
con = Console(base, vm, bearer_post(host, token))


def req(method, path, body=None, headers=None):
    return roundtrip(http.client.HTTPConnection(host, timeout=20), method,
                     path, body, headers)


if hold:
    # a serial viewer open while vmmod stops: it gets close 1001
    w = con.connect(tk=con.ticket()["ticket"])
    print("holding", flush=True)
    code = wait_close(w, 60, "held viewer")
    check("vmmod stopping -> the open viewer gets close 1001", code == 1001,
          str(code))
    sys.exit(1 if cw.fails else 0)

# ---- tickets and the page
t = con.ticket()
check("ticket answer has ticket, url, expires_s 30",
      len(t.get("ticket", "")) == 64 and t.get("expires_s") == 30)
cookie_kv = page_checks(con, t, lambda path, h: req("GET", path, headers=h))
st, _, _ = req("GET", "/console/" + urllib.parse.quote(vm))
check("page without ticket or cookie -> 401", st == 401, str(st))
st, _, _ = req("POST", con.path, {"type": "serial"})
check("ticket without credentials -> 401", st == 401, str(st))

# ---- websocket refusals
check("websocket without ticket or cookie -> 401", con.refused() == 401)
check("websocket with a made-up ticket -> 403",
      con.refused(tk=secrets.token_hex(32)) == 403)
t = con.ticket()
w = con.connect(tk=t["ticket"])
w.close()
check("a used ticket is refused (403)", con.refused(tk=t["ticket"]) == 403)
check("wrong Origin -> 403",
      con.refused(tk=con.ticket()["ticket"], org="http://evil.example") == 403)
check("no Origin -> 403",
      con.refused(tk=con.ticket()["ticket"], org=NO_ORIGIN) == 403)
check("a serial ticket does not open VNC",
      con.refused("vnc", tk=con.ticket("serial")["ticket"]) == 403)

# ---- serial: echo through the guest's shell, two viewers
a = con.connect(tk=con.ticket()["ticket"])
b = con.connect(cookie=cookie_kv)
ok("two serial viewers connected (ticket, cookie)")
a.send_binary(b'2{"cols":120,"rows":40}')
echo_checks(a, b, "the guest's shell answers on the serial console",
            "viewer A reads the guest's answer to its input",
            "viewer B sees the same output")
word2 = "hi-" + secrets.token_hex(4)
send_input(b, "echo %s\n" % word2)
found, _ = read_until(a, word2)
check("input from viewer B reaches the guest; A sees it", found)
b.close()
send_input(a, "echo still-here\n")
found, _ = read_until(a, "still-here")
check("one viewer leaving keeps the stream for the other", found)

# bad message -> close 1008
c = con.connect(tk=con.ticket()["ticket"])
c.send_binary(b"9nonsense")
c.settimeout(5)
# guest output already on its way to the new viewer may come first
for _ in range(100):
    op, data = c.recv_data(control_frame=True)
    if not (op == websocket.ABNF.OPCODE_BINARY and data[:1] == b"1"):
        break
code = close_code(data) if op == websocket.ABNF.OPCODE_CLOSE else None
check("unknown message type -> close 1008", op == 8 and code == 1008,
      "op %d code %s" % (op, code))
c.close()

# ---- VNC
v = con.connect("vnc", tk=con.ticket("vnc")["ticket"])
rfb_check(v, "VNC websocket answers RFB 003.008")
v.send_binary(b"RFB 003.008\n")
op, data = v.recv_data()
check("RFB security types arrive after our version",
      op == websocket.ABNF.OPCODE_BINARY and len(data) >= 2, repr(data[:8]))

# ---- the VM goes away: every viewer gets a close frame
subprocess.run(["virsh", "-q", "destroy", vm], check=False,
               stdout=subprocess.DEVNULL)
for name, w in (("serial", a), ("VNC", v)):
    code = wait_close(w, 10, name + " viewer")
    check("VM destroyed -> %s viewer gets close 1001" % name, code == 1001,
          str(code))
    w.close()
st, _, _ = con.post(con.path, {"type": "serial"})
check("no ticket for a stopped VM (409)", st == 409, str(st))
sys.exit(1 if cw.fails else 0)
