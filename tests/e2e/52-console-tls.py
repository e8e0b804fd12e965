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
import os
import secrets
import socket
import ssl
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import console_ws as cw  # noqa: E402  (tests/e2e/lib)
from console_ws import bad, check, ok  # noqa: E402
from console_client import (NO_ORIGIN, Console, echo_checks,  # noqa: E402
                            page_checks, rfb_check, roundtrip)

sock_path, base, ca, vm = sys.argv[1:5]
host = urllib.parse.urlsplit(base).netloc
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


def tls_req(method, path, body=None, headers=None):
    return roundtrip(http.client.HTTPSConnection(host, timeout=20,
                                                 context=tls),
                     method, path, body, headers)


# tickets are minted on the Unix socket, the websockets verify the listener
con = Console(base, vm,
              lambda path, body: roundtrip(UnixHTTPConnection(sock_path),
                                           "POST", path, body),
              sslopt={"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": ca})

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

# ---- a ticket minted on the Unix socket points at the console listener;
# the page over TLS sets a Secure cookie
cookie_kv = page_checks(con, con.ticket(),
                        lambda path, h: tls_req("GET", path, headers=h))

# ---- websocket refusals: Origin is the console listener's own
check("wss without ticket or cookie -> 401", con.refused() == 401)
check("wss with a made-up ticket -> 403",
      con.refused(tk=secrets.token_hex(32)) == 403)
check("wss with a foreign Origin -> 403",
      con.refused(tk=con.ticket()["ticket"], org="https://evil.example") == 403)
check("wss with the http:// twin of the Origin -> 403",
      con.refused(tk=con.ticket()["ticket"], org="http://" + host) == 403)
check("wss without Origin -> 403",
      con.refused(tk=con.ticket()["ticket"], org=NO_ORIGIN) == 403)

# ---- serial over wss: echo through the guest's shell, ticket and cookie
a = con.connect(tk=con.ticket()["ticket"])
b = con.connect(cookie=cookie_kv)
ok("two serial viewers over wss (ticket, cookie)")
echo_checks(a, b, "the guest's shell answers over wss",
            "serial over wss: the guest answers our input",
            "the cookie viewer sees the same output")
a.close()
b.close()

# ---- VNC over wss
v = con.connect("vnc", tk=con.ticket("vnc")["ticket"])
rfb_check(v, "VNC over wss answers RFB 003.008")
v.close()
sys.exit(1 if cw.fails else 0)
