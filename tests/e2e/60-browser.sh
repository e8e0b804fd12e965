#!/bin/bash
# 60-browser: the web UI in Debian's Chromium (headless, playwright-core from
# tests/browser/, `make browser-deps`), everything on the sandbox's loopback:
# vmmod against the sandbox libvirtd (Unix socket + TCP with token), the
# Guardian-shaped Flask fixture (tests/guardian-fixture, 4 request threads)
# in front of vmmod's socket through our blueprint (guardian/), and Chromium.
# Checks (tests/browser/e2e.mjs): the tile renders inside the fixture and its
# running count follows a start within 10 s; several open dashboards leave
# the fixture's threads free (SSE cap, 2 s polling past it); unauthenticated
# fixture /api/vms is 401; vmmod's own dashboard after token login lists the
# VMs, start/stop/force-stop/delete work; a VM named and titled with markup
# renders as text and fires no dialog; static-file safety with curl.
# Screenshots: build/screenshots/*.png.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/60-browser.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/common.sh"
need_vmmod
need_tools curl virsh node
need_browser
py=/usr/bin/python3
$py -c 'import flask' 2>/dev/null || { echo "SKIP: no python3-flask"; exit 77; }

d=$(mktemp -d /tmp/gvm-e2e-web.XXXXXX)
chmod 755 "$d"
port=18190 fport=18191
fix_pid=""
cleanup() {
	[ -n "$fix_pid" ] && kill "$fix_pid" 2>/dev/null && wait "$fix_pid" 2>/dev/null
	[ -n "$vmmod_pid" ] && kill "$vmmod_pid" 2>/dev/null && wait "$vmmod_pid" 2>/dev/null
	if [ "$fails" != 0 ]; then
		echo "--- vmmod log (last 20 lines)"; tail -20 "$d/vmmod.log" 2>/dev/null
		echo "--- fixture log (last 20 lines)"; tail -20 "$d/fixture.log" 2>/dev/null
	fi
	rm -rf "$d"
}
trap cleanup EXIT

define() { # define NAME-XML [TITLE-XML]: with a serial console
	define_vm "$1" "${2:-}" q35 "<serial type='pty'/><console type='pty'/>"
}
hostile='<img src=x onerror=alert(1)>'
check "define gvm-web-a" define gvm-web-a
check "define gvm-web-b" define gvm-web-b
check "define gvm-web-c" define gvm-web-c
check "define a VM named with markup" define '&lt;img src=x onerror=alert(1)&gt;' \
	"<title>&lt;script&gt;alert('t')&lt;/script&gt; \"q\" &amp;</title>"

cat >"$d/vmmod.conf" <<CONF
socket_group =
socket_mode = 0660
lease_file = $d/leases
reservations_dir = $d/resv
max_conns_per_ip = 64
CONF
mkdir -p "$d/resv" "$d/d2"
"$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod.sock" --listen "127.0.0.1:$port" --token-file "$d/token" \
	--data-dir "$d" --templates "$top/templates" --web-root "$top/web-assets" \
	>"$d/vmmod.log" 2>&1 &
vmmod_pid=$!
check "vmmod is up" wait_vmmod $port "$d/token"
token=$(cat "$d/token")

$py "$top/tests/guardian-fixture/app.py" --port $fport --socket "$d/vmmod.sock" \
	--web-assets "$top/web-assets" --threads 4 --pin 2468 >"$d/fixture.log" 2>&1 &
fix_pid=$!
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:$fport/login" 2>/dev/null && break
	sleep 0.1
done
check "fixture is up" curl -sf "http://127.0.0.1:$fport/login" -o /dev/null

# ------------------------------------------------------------ static files
u=http://127.0.0.1:$port
st() { curl -s --path-as-is -o "$d/out" -D "$d/hdr" -w '%{http_code}' "$@"; }
hdr() { grep -qi "^$1" "$d/hdr"; }
check "GET / without credentials redirects to /login" \
	[ "$(st "$u/")" = 302 -a -n "$(grep -i '^Location: /login' "$d/hdr")" ]
check "GET /login is the login page" [ "$(st "$u/login")" = 200 ]
check "page CSP is strict" hdr "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
check "X-Frame-Options DENY" hdr 'X-Frame-Options: DENY'
check "nosniff" hdr 'X-Content-Type-Options: nosniff'
check "GET / with the token is the dashboard" \
	[ "$(st -H "Authorization: Bearer $token" "$u/")" = 200 -a -n "$(grep gvm-tile "$d/out")" ]
check "JS is text/javascript" [ "$(st "$u/assets/js/api.js")" = 200 -a -n "$(grep -i '^Content-Type: text/javascript' "$d/hdr")" ]
check "CSS is text/css" [ "$(st "$u/assets/css/vms.css")" = 200 -a -n "$(grep -i '^Content-Type: text/css' "$d/hdr")" ]
check "an asset named without a version is revalidated (Cache-Control: no-cache)" hdr 'Cache-Control: no-cache'
etag=$(grep -i '^ETag:' "$d/hdr" | cut -d' ' -f2 | tr -d '\r')
st -H "Authorization: Bearer $token" "$u/" >/dev/null
check "pages are revalidated every time (Cache-Control: no-cache)" hdr 'Cache-Control: no-cache'
check "ETag revalidates to 304" [ "$(st -H "If-None-Match: $etag" "$u/assets/css/vms.css")" = 304 ]
# pages link their assets by version (the web root's files), kept for good
page_ver() { # page_ver BASE: the version the dashboard links its assets with
	curl -s -H "Authorization: Bearer $token" "$1/" >"$d/page.html"
	grep -o '"/assets/v/[0-9a-f]*/css/vms.css"' "$d/page.html" | head -1 | cut -d/ -f4
}
ver=$(page_ver "$u")
check "the dashboard links its assets under /assets/v/<16 hex digits>/ ($ver)" \
	eval "[[ '$ver' =~ ^[0-9a-f]{16}\$ ]] && grep -q '/assets/v/$ver/js/dashboard.js' '$d/page.html' && ! grep -q '\"/assets/[a-uw-z]' '$d/page.html'"
check "the login page too" \
	eval "curl -s '$u/login' | grep -q '\"/assets/v/$ver/js/login.js\"'"
check "a versioned asset is kept for good (immutable)" \
	eval "[ \"\$(st '$u/assets/v/$ver/js/api.js')\" = 200 ] && grep -qi '^Cache-Control: public, max-age=31536000, immutable' '$d/hdr' && grep -qi '^Content-Type: text/javascript' '$d/hdr'"
check "the console's assets by version too" \
	eval "[ \"\$(st '$u/console/assets/v/$ver/js/console.js')\" = 200 ] && grep -qi 'immutable' '$d/hdr'"
check "an old version's URL gets today's file, revalidated" \
	eval "[ \"\$(st '$u/assets/v/0000000000000000/css/vms.css')\" = 200 ] && grep -qi '^Cache-Control: no-cache' '$d/hdr'"
for p in /assets/../Makefile /assets/%2e%2e/Makefile /assets/css/../../Makefile \
	/assets//etc/passwd /assets/.git/config /assets/css /assets/nope.js \
	/assets/v/0123456789abcdeg/css/vms.css /assets/v/0123/css/vms.css /assets/v/$ver/../Makefile \
	/assets/v/$ver//etc/passwd /assets/v/$ver/.git/config; do
	c=$(st -H "Authorization: Bearer $token" "$u$p")
	check "no file for $p ($c)" [ "$c" = 404 ]
done
# a symlink inside web_root that points out is refused (on a copy of it)
mkdir -p "$d/www"
cp -r "$top/web-assets/." "$d/www/"
ln -s /etc/passwd "$d/www/link.txt"
"$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod2.sock" --listen "127.0.0.1:18192" --token-file "$d/token" \
	--data-dir "$d/d2" --templates "$top/templates" --web-root "$d/www" >"$d/vmmod2.log" 2>&1 &
v2=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:18192/healthz -o /dev/null 2>&1 && break; sleep 0.1; done
check "symlink out of web_root is refused" [ "$(st http://127.0.0.1:18192/assets/link.txt)" = 404 ]
# an upgrade replaces a file: the browser's revalidation gets the new one
st http://127.0.0.1:18192/assets/css/vms.css >/dev/null
etag1=$(grep -i '^ETag:' "$d/hdr" | cut -d' ' -f2 | tr -d '\r')
check "the file as it was revalidates to 304" \
	[ "$(st -H "If-None-Match: $etag1" http://127.0.0.1:18192/assets/css/vms.css)" = 304 ]
ver1=$(page_ver http://127.0.0.1:18192)
cp "$d/www/css/vms.css" "$d/vms.css.new"
echo "/* upgraded */" >>"$d/vms.css.new"
mv "$d/vms.css.new" "$d/www/css/vms.css"
new_file_served() {
	[ "$(st -H "If-None-Match: $etag1" http://127.0.0.1:18192/assets/css/vms.css)" = 200 ] &&
		grep -q 'upgraded' "$d/out" && ! grep -qiF "ETag: $etag1" "$d/hdr"
}
check "after an upgrade the same revalidation gets the new file (200, new ETag)" new_file_served
ver2=$(page_ver http://127.0.0.1:18192)
check "and the pages link a new version ($ver1 -> $ver2)" [ -n "$ver2" -a "$ver1" != "$ver2" ]
check "the old version's URL is revalidated now" \
	eval "[ \"\$(st 'http://127.0.0.1:18192/assets/v/$ver1/css/vms.css')\" = 200 ] && grep -qi '^Cache-Control: no-cache' '$d/hdr' && grep -q upgraded '$d/out'"
check "the copy serves its files" [ "$(st http://127.0.0.1:18192/assets/js/api.js)" = 200 ]
kill "$v2"; wait "$v2" 2>/dev/null

# ------------------------------------------------------------ browser
mkdir -p "$top/build/screenshots"
if (cd "$top/tests/browser" && VMMOD_URL=$u VMMOD_TOKEN=$token \
	FIXTURE_URL=http://127.0.0.1:$fport FIXTURE_PIN=2468 HOSTILE="$hostile" \
	SHOTS="$top/build/screenshots" timeout 300 node e2e.mjs); then
	ok "browser checks (tests/browser/e2e.mjs)"
else
	bad "browser checks (tests/browser/e2e.mjs)"
fi

for n in gvm-web-a gvm-web-b gvm-web-c; do virsh -q destroy "$n" >/dev/null 2>&1; done
[ "$fails" = 0 ] || { echo "60-browser: $fails failed"; exit 1; }
echo "60-browser: all passed"
