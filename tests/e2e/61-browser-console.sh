#!/bin/bash
# 61-browser-console: deploy and consoles in Debian's Chromium (headless,
# playwright-core, tests/browser/console.mjs), inside tests/sandbox.sh:
#   - the standalone VM page deploys the `demo` template (templates/, the
#     x86_64 test appliance over file://{appliance_dir}) and its progress bar
#     reaches done (100 %, job succeeded);
#   - the x86_64 test appliance runs (direct kernel, TCG, pty serial, VNC
#     without a TCP port); its Console button opens the serial console in its
#     own window at the ticket URL; `echo hi-<random>` typed into xterm.js
#     comes back on the xterm screen;
#   - its VNC console page shows the guest's framebuffer (canvas screenshot
#     not of one colour).
#   - /console/assets/<file> serves the page's assets, other /console/ paths 404.
# Screenshots: build/screenshots/console-*.png, deploy-*.png.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/61-browser-console.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/console.sh" # vmmod, boot_appliance, spawn_vmmod, ...
need_vmmod
need_tools curl virsh node
[ -x /usr/bin/chromium ] || { echo "SKIP: no /usr/bin/chromium (apt-get install chromium)"; exit 77; }
[ -d "$top/tests/browser/node_modules/playwright-core" ] ||
	{ echo "SKIP: no playwright-core (make browser-deps)"; exit 77; }
[ -r "$top/web-assets/vendor/xterm/xterm.js" ] ||
	{ echo "SKIP: no web-assets/vendor (make web-vendor)"; exit 77; }
need_appliance vmlinuz initrd.img disk.qcow2.xz

console_dir webcon
run=/run/gvm-e2e-61
port=18193
vm=gvm-webcon
cleanup() {
	console_cleanup
	rm -rf "$run"
}
trap cleanup EXIT

# the console VM: direct kernel (boots in a few seconds under TCG); the
# cleanup removes it and demo-web (the browser deploys it)
boot_appliance $vm "console=tty0 console=ttyS0,115200"
vms+=(demo-web)

mkdir -p "$run/resv" "$run/hosts" "$d/data"
chmod 711 "$d/data"
cat >"$d/vmmod.conf" <<CONF
socket_group =
appliance_dir = $top/build/appliance
reservations_dir = $run/resv
hosts_dir = $run/hosts
lease_file = $run/leases
ram_budget_mb = 1500
CONF
spawn_vmmod -d --data-dir "$d/data" --templates "$top/templates" \
	--web-root "$top/web-assets"
if vmmod_up; then ok "vmmod is up"; else bad "vmmod is up"; exit 1; fi

# the console page's assets under /console/assets/ (what the page loads
# relatively), everything else under /console/ is a 404 (no 501)
u=http://127.0.0.1:$port
st() { curl -s --path-as-is -o /dev/null -D "$d/hdr" -w '%{http_code}' "$u$1"; }
for f in js/console.js vendor/xterm/xterm.js vendor/novnc/core/rfb.js css/console.css; do
	if [ "$(st /console/assets/$f)" = 200 ]; then ok "GET /console/assets/$f"; else bad "GET /console/assets/$f"; fi
done
if grep -qi '^Content-Type: text/javascript' < <(st /console/assets/js/api.js >/dev/null; cat "$d/hdr"); then
	ok "console assets: JS is text/javascript"; else bad "console assets: JS is text/javascript"; fi
for p in /console/assets/nope.js /console/assets/.hidden /console/assets/ /console/a/b \
	/console/assets/js/../console.html /console/assets/%2e%2e/Makefile; do
	c=$(st "$p")
	if [ "$c" = 404 ]; then ok "no file for $p ($c)"; else bad "no file for $p ($c, want 404)"; fi
done

mkdir -p "$top/build/screenshots"
if (cd "$top/tests/browser" && VMMOD_URL=http://127.0.0.1:$port VMMOD_TOKEN=$token \
	VM=$vm SHOTS="$top/build/screenshots" timeout 150 node console.mjs); then
	ok "browser checks (tests/browser/console.mjs)"
else
	bad "browser checks (tests/browser/console.mjs)"
fi
[ "$fails" = 0 ] || { echo "61-browser-console: $fails failed"; exit 1; }
echo "61-browser-console: all passed"
