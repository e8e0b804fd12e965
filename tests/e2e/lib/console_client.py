"""The console client parts the websocket tests share (50-console.py,
52-console-tls.py, 98-faults-console.py), on top of console_ws: HTTP
round trips, a VM's console tickets and websockets (Console), close codes,
and the checks 50 and 52 make alike (the console page, echo through the
guest's shell, the VNC greeting)."""
import http.client
import json
import secrets
import urllib.parse

import websocket  # python3-websocket

from console_ws import bad, check, read_until, send_input, shell_ready

NO_ORIGIN = ""  # Console.connect(org=NO_ORIGIN): no Origin header at all


def roundtrip(c, method, path, body=None, headers=None):
    """One request on the connection c (body: sent as JSON), then closes c:
    (status, headers, data)."""
    h = dict(headers or {})
    if body is not None:
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.headers, data


def bearer_post(host, token):
    """POST over vmmod's TCP listener at host with the API token: a ticket
    source for Console."""
    def post(path, body):
        return roundtrip(http.client.HTTPConnection(host, timeout=20), "POST",
                         path, body, {"Authorization": "Bearer " + token})
    return post


def close_code(data):
    """The status code of a close frame's payload (0: none)."""
    return int.from_bytes(data[:2], "big") if len(data) >= 2 else 0


def wait_close(w, timeout, what):
    """Reads w until its close frame: the code; None, with a FAIL line
    naming what, when reading fails first."""
    w.settimeout(timeout)
    try:
        while True:
            op, data = w.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                return close_code(data)
    except Exception as e:  # noqa: BLE001 - report what happened
        bad("%s: %s" % (what, e))
    return None


class Console:
    """The consoles of the VM vm behind the listener base (http:// or
    https://, whose origin the websockets send); tickets come from
    post(path, body), e.g. bearer_post; sslopt goes to wss connections."""

    def __init__(self, base, vm, post, sslopt=None):
        self.base = base
        self.host = urllib.parse.urlsplit(base).netloc
        self.vm = vm
        self.path = "/api/vms/%s/console" % urllib.parse.quote(vm)
        self.post = post
        self.sslopt = sslopt
        self.ws = "wss" if base.startswith("https:") else "ws"

    def ticket(self, kind="serial"):
        """A ticket answer (ticket, url, expires_s) for kind."""
        st, _, data = self.post(self.path, {"type": kind})
        if st != 200:
            raise RuntimeError("ticket: %d %s" % (st, data[:200]))
        return json.loads(data)

    def connect(self, kind="serial", tk=None, cookie=None, org=None, **opts):
        """The websocket of kind with the ticket tk and/or the console
        cookie (name=value), sending the Origin org (the listener's own by
        default, NO_ORIGIN: none); opts go to create_connection."""
        url = "%s://%s%s/%s" % (self.ws, self.host, self.path, kind)
        if tk:
            url += "?ticket=" + tk
        origin = self.base if org is None else org
        return websocket.create_connection(
            url, timeout=10, origin=origin, suppress_origin=not origin,
            header=["Cookie: " + cookie] if cookie else [],
            sslopt=self.sslopt or {}, **opts)

    def refused(self, kind="serial", tk=None, cookie=None, org=None):
        """The upgrade's HTTP status when it is refused, else None."""
        try:
            w = self.connect(kind, tk, cookie, org)
        except websocket.WebSocketBadStatusException as e:
            return e.status_code
        w.close()
        return None


def page_checks(con, t, get):
    """The console page at the url of the ticket answer t, with
    get(path, headers) a GET on con's listener: the url is on the listener
    itself, the page answers 200 (HTML with a CSP) and sets the console
    cookie (HttpOnly, SameSite=Strict, Path=/, Secure on https only); the
    ticket is then spent (403) and the cookie opens the page, alone or with
    the spent ticket.  Returns the cookie as name=value."""
    u = urllib.parse.urlsplit(t["url"])
    scheme = urllib.parse.urlsplit(con.base).scheme
    check("ticket url is %s on the listener itself" % scheme,
          u.scheme == scheme and u.netloc == con.host and
          u.path == "/console/" + urllib.parse.quote(con.vm), t["url"])
    with_ticket = u.path + "?" + u.query
    st, hdr, page = get(with_ticket, {})
    check("GET the console page with the ticket -> 200", st == 200, str(st))
    cookie = hdr.get("Set-Cookie", "")
    attrs = [a.strip() for a in cookie.split(";")[1:]]
    check("the page sets a console cookie: HttpOnly, SameSite=Strict, "
          "Path=/, %s" % ("Secure" if scheme == "https" else "not Secure"),
          cookie.startswith("vmmod_console_") and "HttpOnly" in attrs and
          "SameSite=Strict" in attrs and "Path=/" in attrs and
          ("Secure" in attrs) == (scheme == "https"), cookie)
    check("page is HTML with a CSP", b"<html" in page.lower() and
          "Content-Security-Policy" in hdr)
    st, _, _ = get(with_ticket, {})
    check("the same ticket again -> 403", st == 403, str(st))
    cookie_kv = cookie.split(";")[0]
    st, _, _ = get(u.path, {"Cookie": cookie_kv})
    check("reload with the console cookie -> 200", st == 200, str(st))
    st, _, _ = get(with_ticket, {"Cookie": cookie_kv})
    check("reload with the cookie and the spent ticket -> 200", st == 200,
          str(st))
    return cookie_kv


def echo_checks(a, b, shell_msg, a_msg, b_msg):
    """Once the guest's shell answers on viewer a (check shell_msg), a
    types `echo hi-<random> | tr a-z A-Z`: a reads the answer (a_msg), so
    does b (b_msg)."""
    check(shell_msg, shell_ready(a))
    word = "hi-" + secrets.token_hex(4)
    send_input(a, "echo %s | tr a-z A-Z\n" % word)
    found, seen = read_until(a, word.upper())
    check(a_msg, found, repr(seen[-200:]))
    found, seen = read_until(b, word.upper())
    check(b_msg, found, repr(seen[-200:]))


def rfb_check(v, msg):
    """The VNC websocket v greets with RFB 003.008 (check msg)."""
    v.settimeout(10)
    op, data = v.recv_data()
    check(msg, op == websocket.ABNF.OPCODE_BINARY and
          data.startswith(b"RFB 003.008"), repr(data[:20]))
