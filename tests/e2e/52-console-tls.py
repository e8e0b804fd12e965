#!/usr/bin/python3
"""Client side of tests/e2e/52-console-tls.sh: vmmod's console listener
(TLS, consoles only) with Debian's python3-websocket (websocket-client).

usage: 52-console-tls.py SOCKET CONSOLE_BASE CA_FILE VM
  SOCKET        vmmod's Unix socket (tickets are minted there, as by
                Guardian's blueprint)
  CONSOLE_BASE  https://127.0.0.1:PORT, the console listener
  CA_FILE       the self-signed certificate it serves
Prints "ok ..." / "FAIL ..." lines; exits 1 when something failed."""
import http.client
import json
import os
import secrets
import socket
import ssl
import sys
import time
import urllib.parse

import websocket  # python3-websocket

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import console_ws as cw  # noqa: E402  (tests/e2e/lib)
from console_ws import bad, check, ok, read_until, send_input, shell_ready  # noqa: E402

sock_path, base, ca, vm = sys.argv[1:5]
host = urllib.parse.urlsplit(base).netloc
origin = base
tls = ssl.create_default_context(cafile=ca)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over vmmod's Unix socket."""

    def __init__(self, path):
        super().__init__("localhost", timeout=20)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(self.path)


def roundtrip(c, method, path, body=None, headers=None):
    h = dict(headers or {})
    if body is not None:
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.headers, data


def tls_req(method, path, body=None, headers=None):
    return roundtrip(http.client.HTTPSConnection(host, timeout=20,
                                                 context=tls),
                     method, path, body, headers)


def ticket(kind="serial"):
    st, _, data = roundtrip(UnixHTTPConnection(sock_path), "POST",
                            "/api/vms/%s/console" % urllib.parse.quote(vm),
                            {"type": kind})
    if st != 200:
        raise RuntimeError("ticket: %d %s" % (st, data[:200]))
    return json.loads(data)


def ws_url(kind, tk=None):
    u = "wss://%s/api/vms/%s/console/%s" % (host, urllib.parse.quote(vm), kind)
    return u + ("?ticket=" + tk if tk else "")


def connect(kind="serial", tk=None, cookie=None, org=origin):
    hdr = ["Cookie: " + cookie] if cookie else []
    return websocket.create_connection(
        ws_url(kind, tk), timeout=10, origin=org, suppress_origin=org is None,
        header=hdr, sslopt={"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": ca})


def refused(kind="serial", tk=None, cookie=None, org=origin):
    """The upgrade's HTTP status when it is refused, else None."""
    try:
        w = connect(kind, tk, cookie, org)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    w.close()
    return None


# ---- TLS, and only console routes
st, hdr, body = tls_req("GET", "/console/assets/js/console.js")
check("GET /console/assets/js/console.js over verified TLS -> 200",
      st == 200 and len(body) > 0, str(st))
check("the asset is JavaScript",
      hdr.get("Content-Type", "").startswith("text/javascript"),
      hdr.get("Content-Type", ""))
for method, path in (("GET", "/"), ("GET", "/login"), ("GET", "/api/vms"),
                     ("GET", "/api/vms/" + vm), ("GET", "/api/host"),
                     ("GET", "/api/events"), ("GET", "/metrics"),
                     ("GET", "/healthz"), ("GET", "/assets/js/api.js"),
                     ("GET", "/console/assets/../index.html"),
                     ("GET", "/console/assets/%2e%2e/index.html"),
                     ("GET", "/api/vms/%s/console" % vm),
                     ("POST", "/api/login"), ("POST", "/api/logout"),
                     ("POST", "/api/vms/%s/console" % vm),
                     ("POST", "/api/vms/%s/start" % vm),
                     ("DELETE", "/api/vms/" + vm)):
    body = {"token": "x"} if method == "POST" else None
    st, _, _ = tls_req(method, path, body)
    check("%s %s on the console listener -> 404" % (method, path), st == 404,
          str(st))
st, _, _ = tls_req("POST", "/console/%s" % vm, {})
check("POST to the console page -> 405", st == 405, str(st))

# plain HTTP on the TLS port gets no HTTP answer
try:
    c = http.client.HTTPConnection(host, timeout=10)
    c.request("GET", "/console/assets/js/console.js")
    r = c.getresponse()
    bad("plain HTTP on the console listener answered %d" % r.status)
except (http.client.HTTPException, OSError) as e:
    ok("plain HTTP on the console listener fails (%s)" % type(e).__name__)

# ---- a ticket minted on the Unix socket points at the console listener
t = ticket()
u = urllib.parse.urlsplit(t["url"])
check("ticket url is https on the console listener",
      u.scheme == "https" and u.netloc == host and
      u.path == "/console/" + urllib.parse.quote(vm), t["url"])
st, hdr, page = tls_req("GET", u.path + "?" + u.query)
check("console page with the ticket over TLS -> 200", st == 200, str(st))
cookie = hdr.get("Set-Cookie", "")
check("console cookie is HttpOnly, SameSite=Strict and Secure",
      cookie.startswith("vmmod_console_") and "HttpOnly" in cookie and
      "SameSite=Strict" in cookie and "Secure" in cookie, cookie)
check("page is HTML with a CSP", b"<html" in page.lower() and
      "Content-Security-Policy" in hdr)
st, _, _ = tls_req("GET", u.path + "?" + u.query)
check("the same ticket again -> 403", st == 403, str(st))
cookie_kv = cookie.split(";")[0]
st, _, _ = tls_req("GET", u.path, headers={"Cookie": cookie_kv})
check("reload with the console cookie -> 200", st == 200, str(st))

# ---- websocket refusals: Origin is the console listener's own
check("wss without ticket or cookie -> 401", refused() == 401)
check("wss with a made-up ticket -> 403",
      refused(tk=secrets.token_hex(32)) == 403)
check("wss with a foreign Origin -> 403",
      refused(tk=ticket()["ticket"], org="https://evil.example") == 403)
check("wss with the http:// twin of the Origin -> 403",
      refused(tk=ticket()["ticket"], org="http://" + host) == 403)
check("wss without Origin -> 403",
      refused(tk=ticket()["ticket"], org=None) == 403)

# ---- serial over wss: echo through the guest's shell, ticket and cookie
a = connect(tk=ticket()["ticket"])
b = connect(cookie=cookie_kv)
ok("two serial viewers over wss (ticket, cookie)")


check("the guest's shell answers over wss", shell_ready(a))
word = "hi-" + secrets.token_hex(4)
send_input(a, "echo %s | tr a-z A-Z\n" % word)
found, seen = read_until(a, word.upper())
check("serial over wss: the guest answers our input", found,
      repr(seen[-200:]))
found, seen = read_until(b, word.upper())
check("the cookie viewer sees the same output", found, repr(seen[-200:]))
a.close()
b.close()

# ---- VNC over wss
v = connect("vnc", tk=ticket("vnc")["ticket"])
v.settimeout(10)
op, data = v.recv_data()
check("VNC over wss answers RFB 003.008",
      op == websocket.ABNF.OPCODE_BINARY and data.startswith(b"RFB 003.008"),
      repr(data[:20]))
v.close()
sys.exit(1 if cw.fails else 0)
