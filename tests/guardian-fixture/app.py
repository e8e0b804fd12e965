"""A small Guardian-shaped Flask app for the browser tests of the Guardian
VMs plug-in.  What it copies from the real Guardian (shared/DESIGN.md):
blueprints registered through web/modules/__init__.py, a PIN login setting
session["authenticated"], a global before_request gate that answers 401 JSON
for /api/* (and redirects pages to /login), a dashboard of .nav-tile cards
that includes our tile, a CSP with connect-src 'self', and few server
threads (Guardian: gunicorn, 2 workers x 4 threads) -- here one process with
a pool of THREADS request threads, so a stream that is never let go shows up
as a hung dashboard.

usage: app.py --port 8080 --socket /run/vmmod/vmmod.sock --web-assets DIR
              [--threads 4] [--pin 1234]
"""
import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "guardian"))

from flask import (Flask, jsonify, redirect, render_template, request,  # noqa: E402
                   session, url_for)
from werkzeug.serving import BaseWSGIServer  # noqa: E402

from web.modules import register_blueprints  # noqa: E402

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")


def create_app(pin, socket_path, web_assets):
    app = Flask(__name__, template_folder=os.path.join(HERE, "templates"),
                static_folder=os.path.join(HERE, "static"))
    app.secret_key = os.urandom(32)
    app.config.update(GUARDIAN_VMS_SOCKET=socket_path,
                      GUARDIAN_VMS_WEB_ASSETS=web_assets,
                      GUARDIAN_VMS_HOST_CSS="guardian.css",
                      SESSION_COOKIE_SAMESITE="Lax")
    register_blueprints(app)

    @app.before_request
    def gate():
        if request.endpoint in ("login", "static") or session.get("authenticated"):
            return None
        if request.path.startswith("/api/"):
            return jsonify({"success": False, "error": "Authentication required"}), 401
        return redirect(url_for("login"))

    @app.after_request
    def headers(resp):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error = None
        if request.method == "POST":
            if request.form.get("pin") == pin:
                session["authenticated"] = True
                return redirect(url_for("dashboard"))
            error = "Wrong PIN"
        return render_template("core/login.html", error=error)

    @app.route("/")
    def dashboard():
        return render_template("core/dashboard.html")

    @app.route("/api/status")
    def status():
        return jsonify({"tier": "guardian", "ok": True})

    return app


class PoolServer(BaseWSGIServer):
    """Werkzeug's server with a fixed pool of request threads."""

    def __init__(self, *a, threads=4, **kw):
        super().__init__(*a, **kw)
        self.pool = ThreadPoolExecutor(max_workers=threads)

    def process_request(self, req, addr):
        self.pool.submit(self._handle, req, addr)

    def _handle(self, req, addr):
        try:
            self.finish_request(req, addr)
        except Exception:  # noqa: BLE001 - one broken client, not the server
            self.handle_error(req, addr)
        finally:
            self.shutdown_request(req)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--socket", default="/run/vmmod/vmmod.sock")
    ap.add_argument("--web-assets", default=os.path.join(TOP, "web-assets"))
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--pin", default="1234")
    a = ap.parse_args()
    app = create_app(a.pin, a.socket, a.web_assets)
    srv = PoolServer(a.host, a.port, app, threads=a.threads)
    print(f"guardian-fixture on http://{a.host}:{a.port} ({a.threads} threads)", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
