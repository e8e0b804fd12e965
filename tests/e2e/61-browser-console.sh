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
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
app=$top/build/appliance/x86_64
[ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }
for t in curl virsh node; do
	command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
[ -x /usr/bin/chromium ] || { echo "SKIP: no /usr/bin/chromium (apt-get install chromium)"; exit 77; }
[ -d "$top/tests/browser/node_modules/playwright-core" ] ||
	{ echo "SKIP: no playwright-core (make browser-deps)"; exit 77; }
[ -r "$top/web-assets/vendor/xterm/xterm.js" ] ||
	{ echo "SKIP: no web-assets/vendor (make web-vendor)"; exit 77; }
[ -r "$app/vmlinuz" ] && [ -r "$app/initrd.img" ] && [ -r "$app/disk.qcow2.xz" ] ||
	{ echo "SKIP: no x86_64 appliance (make appliances)"; exit 77; }

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

d=$(mktemp -d /tmp/gvm-e2e-webcon.XXXXXX)
chmod 755 "$d"
run=/run/gvm-e2e-61
port=18193
vm=gvm-webcon
vmmod_pid=""
cleanup() {
	[ -n "$vmmod_pid" ] && kill "$vmmod_pid" 2>/dev/null && wait "$vmmod_pid" 2>/dev/null
	for n in $vm demo-web; do
		virsh -q destroy $n >/dev/null 2>&1
		virsh -q undefine --nvram $n >/dev/null 2>&1
	done
	if [ "$fails" != 0 ]; then
		echo "--- vmmod log (last 30 lines)"; tail -30 "$d/vmmod.log" 2>/dev/null
	fi
	rm -rf "$d" "$run"
}
trap cleanup EXIT

# the console VM: direct kernel (boots in a few seconds under TCG)
cp "$app/vmlinuz" "$app/initrd.img" "$d/"
cat >"$d/dom.xml" <<XML
<domain type='qemu'>
  <name>$vm</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$d/vmlinuz</kernel>
    <initrd>$d/initrd.img</initrd>
    <cmdline>console=tty0 console=ttyS0,115200</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'/>
    <console type='pty'/>
    <graphics type='vnc'><listen type='none'/></graphics>
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
if virsh -q define "$d/dom.xml" >/dev/null && virsh -q start $vm >/dev/null; then
	ok "appliance $vm defined and started (direct kernel, TCG)"
else
	bad "cannot start the appliance"; exit 1
fi

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
"$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod.sock" --listen "127.0.0.1:$port" --token-file "$d/token" \
	--data-dir "$d/data" --templates "$top/templates" --web-root "$top/web-assets" \
	>"$d/vmmod.log" 2>&1 &
vmmod_pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && [ -s "$d/token" ] && break
	sleep 0.1
done
if curl -sf "http://127.0.0.1:$port/healthz" -o /dev/null; then ok "vmmod is up"; else bad "vmmod is up"; exit 1; fi
token=$(cat "$d/token")

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
