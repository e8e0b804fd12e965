#!/usr/bin/python3
"""Client side of tests/e2e/50-console.sh: consoles of a running VM through
vmmod's TCP listener with Debian's python3-websocket (websocket-client).

usage: 50-console.py BASE TOKEN VM [hold]  (BASE like http://127.0.0.1:18091)
Prints "ok ..." / "FAIL ..." lines; exits 1 when something failed.
With "hold": one serial viewer that prints "holding" once connected and
waits for vmmod's close frame (50-console.sh stops vmmod meanwhile)."""
import http.client
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse

import websocket  # python3-websocket

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import console_ws as cw  # noqa: E402  (tests/e2e/lib)
from console_ws import bad, check, ok, read_until, send_input, shell_ready  # noqa: E402

base, token, vm = sys.argv[1:4]
hold = sys.argv[4:5] == ["hold"]
host = urllib.parse.urlsplit(base).netloc
origin = base


def req(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(host, timeout=20)
    h = dict(headers or {})
    if body is not None:
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.headers, data


def ticket(kind="serial"):
    st, _, data = req("POST", "/api/vms/%s/console" % urllib.parse.quote(vm),
                       {"type": kind}, {"Authorization": "Bearer " + token})
    if st != 200:
        raise RuntimeError("ticket: %d %s" % (st, data[:200]))
    return json.loads(data)


def ws_url(kind, tk=None):
    u = "ws://%s/api/vms/%s/console/%s" % (host, urllib.parse.quote(vm), kind)
    return u + ("?ticket=" + tk if tk else "")


def connect(kind="serial", tk=None, cookie=None, org=origin):
    hdr = ["Cookie: " + cookie] if cookie else []
    return websocket.create_connection(ws_url(kind, tk), timeout=10,
                                       origin=org, suppress_origin=org is None,
                                       header=hdr)


def refused(kind="serial", tk=None, cookie=None, org=origin):
    """The upgrade's HTTP status when it is refused, else None."""
    try:
        w = connect(kind, tk, cookie, org)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    w.close()
    return None


def hold_until_closed():
    """A serial viewer open while vmmod stops: it gets close 1001."""
    w = connect(tk=ticket()["ticket"])
    print("holding", flush=True)
    w.settimeout(60)
    code = None
    try:
        while True:
            op, data = w.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
                break
    except Exception as e:  # noqa: BLE001 - report what happened
        bad("held viewer: %s" % e)
    check("vmmod stopping -> the open viewer gets close 1001", code == 1001,
          str(code))
    sys.exit(1 if cw.fails else 0)


if hold:
    hold_until_closed()

# ---- tickets and the page
t = ticket()
check("ticket answer has ticket, url, expires_s 30",
      len(t.get("ticket", "")) == 64 and t.get("expires_s") == 30)
u = urllib.parse.urlsplit(t["url"])
check("url is absolute on vmmod's own origin",
      u.scheme == "http" and u.netloc == host and
      u.path == "/console/" + urllib.parse.quote(vm), t["url"])
st, hdr, page = req("GET", u.path + "?" + u.query)
check("GET the console page with the ticket -> 200", st == 200, str(st))
cookie = hdr.get("Set-Cookie", "")
check("page sets an HttpOnly SameSite=Strict console cookie",
      cookie.startswith("vmmod_console_") and "HttpOnly" in cookie and
      "SameSite=Strict" in cookie and "Path=/" in cookie, cookie)
check("page is HTML with a CSP", b"<html" in page.lower() and
      "Content-Security-Policy" in hdr)
st, _, _ = req("GET", u.path + "?" + u.query)
check("the same ticket again -> 403", st == 403, str(st))
cookie_kv = cookie.split(";")[0]
st, _, _ = req("GET", u.path + "?" + u.query, headers={"Cookie": cookie_kv})
check("reload with the console cookie -> 200", st == 200, str(st))
st, _, _ = req("GET", u.path)
check("page without ticket or cookie -> 401", st == 401, str(st))
st, _, _ = req("POST", "/api/vms/%s/console" % vm, {"type": "serial"})
check("ticket without credentials -> 401", st == 401, str(st))

# ---- websocket refusals
check("websocket without ticket or cookie -> 401", refused() == 401)
check("websocket with a made-up ticket -> 403",
      refused(tk=secrets.token_hex(32)) == 403)
t = ticket()
w = connect(tk=t["ticket"])
w.close()
check("a used ticket is refused (403)", refused(tk=t["ticket"]) == 403)
check("wrong Origin -> 403",
      refused(tk=ticket()["ticket"], org="http://evil.example") == 403)
check("no Origin -> 403", refused(tk=ticket()["ticket"], org=None) == 403)
check("a serial ticket does not open VNC",
      refused("vnc", tk=ticket("serial")["ticket"]) == 403)

# ---- serial: echo through the guest's shell, two viewers
a = connect(tk=ticket()["ticket"])
b = connect(cookie=cookie_kv)
ok("two serial viewers connected (ticket, cookie)")
a.send_binary(b'2{"cols":120,"rows":40}')


check("the guest's shell answers on the serial console", shell_ready(a))
word = "hi-" + secrets.token_hex(4)
send_input(a, "echo %s | tr a-z A-Z\n" % word)
found, seen = read_until(a, word.upper())
check("viewer A reads the guest's answer to its input", found,
      repr(seen[-200:]))
found, seen = read_until(b, word.upper())
check("viewer B sees the same output", found, repr(seen[-200:]))
word2 = "hi-" + secrets.token_hex(4)
send_input(b, "echo %s\n" % word2)
found, _ = read_until(a, word2)
check("input from viewer B reaches the guest; A sees it", found)
b.close()
send_input(a, "echo still-here\n")
found, _ = read_until(a, "still-here")
check("one viewer leaving keeps the stream for the other", found)

# bad message -> close 1008
c = connect(tk=ticket()["ticket"])
c.send_binary(b"9nonsense")
c.settimeout(5)
op, data = c.recv_data(control_frame=True)
code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
check("unknown message type -> close 1008", op == 8 and code == 1008,
      "op %d code %d" % (op, code))
c.close()

# ---- VNC
v = connect("vnc", tk=ticket("vnc")["ticket"])
v.settimeout(10)
op, data = v.recv_data()
check("VNC websocket answers RFB 003.008",
      op == websocket.ABNF.OPCODE_BINARY and data.startswith(b"RFB 003.008"),
      repr(data[:20]))
v.send_binary(b"RFB 003.008\n")
op, data = v.recv_data()
check("RFB security types arrive after our version",
      op == websocket.ABNF.OPCODE_BINARY and len(data) >= 2, repr(data[:8]))

# ---- the VM goes away: every viewer gets a close frame
subprocess.run(["virsh", "-q", "destroy", vm], check=False,
               stdout=subprocess.DEVNULL)
for name, w in (("serial", a), ("VNC", v)):
    w.settimeout(10)
    code = None
    try:
        while True:
            op, data = w.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
                break
    except Exception as e:  # noqa: BLE001 - report what happened
        bad("%s viewer: %s" % (name, e))
    check("VM destroyed -> %s viewer gets close 1001" % name, code == 1001,
          str(code))
    w.close()
st, _, _ = req("POST", "/api/vms/%s/console" % vm, {"type": "serial"},
                {"Authorization": "Bearer " + token})
check("no ticket for a stopped VM (409)", st == 409, str(st))
sys.exit(1 if cw.fails else 0)
