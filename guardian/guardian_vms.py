"""Guardian VMs plug-in for Guardian's Flask web UI.

A thin blueprint: it forwards the JSON API of vmmod (shared/API.md: /api/vms,
/api/host, /api/jobs, /api/events) to vmmod's Unix socket, which trusts
whoever can open it -- so this blueprint is the only door from Guardian's
pages to vmmod and adds what Guardian lacks:

* it answers only inside Guardian's login (Guardian's global before_request
  gate, and again here: session["authenticated"]);
* a state change (POST/PUT/DELETE) needs ``Content-Type: application/json``
  and an ``Origin`` equal to the page's own origin (Guardian has no CSRF
  tokens);
* /api/events is relayed as server-sent events, at most SSE_MAX streams per
  worker process, each closed after SSE_LIFETIME_S so EventSource reconnects
  and Guardian's few gunicorn threads (2 workers x 4) are never all held;
  past the cap it answers 429 and the tile polls every 2 s instead.

It also serves the VM page (/vms), the web assets (/vms/assets/...) and the
tile include for templates/core/dashboard.html:
``{% include "vms/tile.html" %}``.  Standard library and Flask only.

Configuration (app.config, or the environment):
  GUARDIAN_VMS_SOCKET      vmmod's Unix socket (/run/vmmod/vmmod.sock)
  GUARDIAN_VMS_WEB_ASSETS  the web-assets directory
                           (/usr/local/share/guardian-vms/web-assets)
  GUARDIAN_VMS_SSE_MAX     open event streams per process (2)
  GUARDIAN_VMS_SSE_LIFETIME_S  seconds before a stream is closed (55)
  GUARDIAN_VMS_HOST_CSS    Guardian's own stylesheets for the VM page, comma-
                           separated files under Guardian's static folder
                           (e.g. "css/style.css"): loaded after vmmod's
                           built-in design tokens, so Guardian's values win
                           and the page looks like the rest of Guardian
"""
import http.client
import json
import os
import socket
import threading
import time
from urllib.parse import quote

from flask import (Blueprint, Response, abort, current_app, render_template,
                   request, send_from_directory, session, url_for)

bp = Blueprint("guardian_vms", __name__, template_folder="templates")

MAX_BODY = 64 * 1024
TIMEOUT_S = 30
# Only these API.md prefixes are forwarded (never /api/login, /api/logout).
_sse_lock = threading.Lock()
_sse_open = 0


def _conf(key, default):
    v = current_app.config.get(key)
    if v is None:
        v = os.environ.get(key, default)
    return v


class _UnixConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX: vmmod's socket is local and trusted."""

    def __init__(self, path, timeout=TIMEOUT_S):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


def _error(status, code, msg, headers=None):
    resp = Response(json.dumps({"error": msg, "code": code}), status=status,
                    mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _upstream_path():
    # request.path is percent-decoded: quote each segment again (a VM named
    # "a b" or "<img>" stays one segment), keep the raw query string.
    segs = request.path.split("/")
    path = "/".join(quote(s, safe="") for s in segs)
    if request.query_string:
        path += "?" + request.query_string.decode("latin-1")
    return path


def _same_origin(origin):
    if not origin or origin == "null":
        return False
    own = request.host_url.rstrip("/")
    extra = _conf("GUARDIAN_VMS_ALLOWED_ORIGINS", "") or ""
    return origin == own or origin in extra.replace(",", " ").split()


@bp.before_request
def _gate():
    # Guardian's own gate runs first; this one holds if it is ever missing.
    if not session.get("authenticated"):
        if request.path.startswith("/api/"):
            return _error(401, "unauthorized", "login required")
        abort(401)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        ctype = (request.headers.get("Content-Type") or "").split(";")[0]
        if ctype.strip().lower() != "application/json":
            return _error(415, "bad_content_type",
                          "state changes need Content-Type: application/json")
        if not _same_origin(request.headers.get("Origin")):
            return _error(403, "bad_origin",
                          "Origin not allowed for this request")
    return None


def _forward():
    body = None
    if request.method not in ("GET", "HEAD"):
        if (request.content_length or 0) > MAX_BODY:
            return _error(413, "body_too_large", "request body too large")
        body = request.get_data(cache=False)
        if len(body) > MAX_BODY:
            return _error(413, "body_too_large", "request body too large")
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn = _UnixConnection(_conf("GUARDIAN_VMS_SOCKET", "/run/vmmod/vmmod.sock"))
    try:
        conn.request(request.method, _upstream_path(), body=body, headers=headers)
        up = conn.getresponse()
        data = up.read()
        status = up.status
        ctype = up.getheader("Content-Type", "application/json")
    except (OSError, http.client.HTTPException):
        return _error(503, "vmmod_down", "the VM service (vmmod) is not reachable")
    finally:
        conn.close()
    resp = Response(data, status=status, content_type=ctype)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.route("/api/vms", methods=["GET"])
@bp.route("/api/vms/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
@bp.route("/api/host", methods=["GET"])
@bp.route("/api/host/<path:rest>", methods=["GET", "POST", "DELETE"])
@bp.route("/api/jobs/<path:rest>", methods=["GET", "DELETE"])
def api_proxy(rest=None):
    return _forward()


def _sse_release(state):
    global _sse_open
    with _sse_lock:
        if not state["released"]:
            state["released"] = True
            _sse_open -= 1


@bp.route("/api/events", methods=["GET"])
def api_events():
    global _sse_open
    cap = int(_conf("GUARDIAN_VMS_SSE_MAX", 2))
    lifetime = float(_conf("GUARDIAN_VMS_SSE_LIFETIME_S", 55))
    with _sse_lock:
        if _sse_open >= cap:
            return _error(429, "too_many_streams",
                          "too many open event streams; poll instead",
                          {"Retry-After": "30"})
        _sse_open += 1
    state = {"released": False}
    conn = _UnixConnection(_conf("GUARDIAN_VMS_SOCKET", "/run/vmmod/vmmod.sock"))
    try:
        conn.request("GET", "/api/events", headers={"Accept": "text/event-stream"})
        up = conn.getresponse()
    except (OSError, http.client.HTTPException):
        conn.close()
        _sse_release(state)
        return _error(503, "vmmod_down", "the VM service (vmmod) is not reachable")
    if up.status != 200:
        data = up.read()
        conn.close()
        _sse_release(state)
        return Response(data, status=up.status,
                        content_type=up.getheader("Content-Type", "application/json"))
    deadline = time.monotonic() + lifetime

    def relay():
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # vmmod sends a keepalive comment every 25 s; never wait
                # past the stream's lifetime
                conn.sock.settimeout(left)
                try:
                    chunk = up.read1(16384)
                except (socket.timeout, TimeoutError):
                    break
                if not chunk:
                    break
                yield chunk
        except OSError:
            pass
        finally:
            conn.close()
            _sse_release(state)

    resp = Response(relay(), status=200, mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Accel-Buffering"] = "no"
    resp.call_on_close(lambda: (conn.close(), _sse_release(state)))
    return resp


def _host_css():
    """URLs of Guardian's stylesheets named by GUARDIAN_VMS_HOST_CSS."""
    names = _conf("GUARDIAN_VMS_HOST_CSS", "") or ""
    return [url_for("static", filename=n.strip())
            for n in names.split(",")
            if n.strip() and ".." not in n and not n.strip().startswith("/")]


@bp.route("/vms", methods=["GET"])
def page():
    return render_template("vms/page.html", host_css=_host_css())


@bp.route("/vms/assets/<path:name>", methods=["GET"])
def assets(name):
    root = _conf("GUARDIAN_VMS_WEB_ASSETS",
                 "/usr/local/share/guardian-vms/web-assets")
    # send_from_directory refuses paths that leave root
    resp = send_from_directory(root, name, max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def open_streams():
    """For tests and metrics: event streams open in this process."""
    with _sse_lock:
        return _sse_open
