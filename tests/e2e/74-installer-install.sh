#!/bin/bash
# 74-installer-install: the full unattended install inside the sandbox's
# namespaces: a Guardian-shaped fake root (tests/data/installer/guardian-root)
# for the files (--root), and --live for the rest: br0 made by the installer
# through libnl, dnsmasq started directly (no systemd as PID 1 here), the
# legacy chain through libiptc, the console rule in Guardian's nftables
# (tests/data/installer/guardian.nft loaded: input policy drop), and the
# libvirt network and pool in the sandbox's libvirtd.  Checked:
#   - the console port (8091) does not answer from br0 before the install
#     and does after it; a LAN host on br0 gets a lease from the pool
#     (.2-.23, shrunk) from the dnsmasq the installer started;
#   - virsh: network guardian (bridge br0) and pool guardian-vms (dir under
#     the fake root) active and autostarted;
#   - the Guardian step (the fake root holds a Guardian-shaped web/ tree):
#     Flask loads the edited registry with our blueprint and without
#     Guardian's vms one, the dashboard renders our tile and no #vm-section;
#     the guardian-webui drop-in names the stylesheet Guardian's base.html
#     links (GUARDIAN_VMS_HOST_CSS=css/main.css, the CDN ones counted), and
#     /vms, served with the drop-in's environment, links it after our
#     design tokens and Flask serves it from Guardian's static folder;
#     --repair twice changes nothing; after a "Guardian update" rewrote
#     both files, --repair edits them again and --uninstall restores the
#     updated files byte for byte;
#   - install run twice -> identical state (iptables-legacy-save, nft list
#     ruleset, ip -d link, the root's files, net-dumpxml, pool-dumpxml);
#   - uninstall with no VM -> identical to the pre-install snapshot;
#   - with a VM made in the pool (a defined domain + a volume + a
#     reservation): plain uninstall keeps them and says so; after another
#     install, --purge -> identical to the pre-install snapshot.
# Not covered here: deploying the test appliance through vmmod (--root does
# not start vmmod; 40-deploy covers deploys).
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/74-installer-install.sh
# Functions below are called through check and traps.
# shellcheck disable=SC2317
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
setup=$build/guardian-vm-setup
data=${TESTDATA:-$top/tests/data}/installer
[ -x "$setup" ] || { echo "FAIL: $setup not built"; exit 1; }
for t in nft iptables-legacy-save dnsmasq busybox virsh python3; do
	command -v $t >/dev/null || { echo "SKIP: $t missing (sudo make deps)"; exit 77; }
done
py=/usr/bin/python3
unset HOOKPROBE_VM_SUPPORT GVM_STORAGE_DIR GVM_BRIDGE GVM_BRIDGE_ADDR GVM_DHCP_RANGE \
	GVM_SHRINK_POOL GVM_CONSOLE_PORT GVM_BLOCK_PORTS GVM_DEPLOY_HA GVM_TRUST_UNPINNED GVM_VM_BLOCK
export GVM_SETUP_SKIP_APT=1
export GVM_SETUP_DATADIR=$top # the blueprint, its templates, web-assets
export PYTHONDONTWRITEBYTECODE=1
web=/opt/hookprobe/guardian/web

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
not() { ! "$@"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

tmp=$(mktemp -d /tmp/gvm-e2e-install.XXXXXX)
root=$tmp/root
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -f /run/guardian-vms/dnsmasq.pid ] && kill "$(cat /run/guardian-vms/dnsmasq.pid)" 2>/dev/null
	ip netns del lan 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
cp -a "$data/guardian-root" "$root"
answers=$tmp/answers
sed "s|^GVM_STORAGE_DIR=.*|GVM_STORAGE_DIR=/srv/guardian-vms|" "$data/guardian.answers" >"$answers"

# tcp ADDR PORT from the LAN host: does a connection open within 2 s?
tcp() { ip netns exec lan "$py" -c 'import socket,sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()' "$1" "$2" 2>/dev/null; }
# lan_up: the LAN host's veth into br0 (removed again by lan_down)
lan_up() {
	ip link add gvm-lan type veth peer name lan0 netns lan &&
		ip link set gvm-lan master br0 up &&
		ip -n lan addr add 192.168.4.5/27 dev lan0 && ip -n lan link set lan0 up || return 1
	for _ in $(seq 50); do
		ip netns exec lan busybox ping -c1 -W1 192.168.4.1 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
lan_down() { ip link del gvm-lan 2>/dev/null; }
run() { # run NAME ARGS...: the installer, output in $tmp/NAME
	local name=$1 rc=0
	shift
	"$setup" "$@" </dev/null >"$tmp/$name" 2>&1 || rc=$?
	[ $rc = 0 ] || { sed 's/^/    /' "$tmp/$name"; echo "    (exit $rc)"; }
	return $rc
}
install() { run "$1" --unattended --root "$root" --live --answers "$answers"; }
# The state compared between runs (counters, timers, MACs and free space out).
snapshot() {
	echo "## iptables"
	iptables-legacy-save | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[0:0]/'
	echo "## nft"
	nft list ruleset
	echo "## links"
	ip -d -o link show | sed -E -e 's/link\/ether [0-9a-f:]+ brd [0-9a-f:]+//' \
		-e 's/ (hello|tcn|topology_change|gc)_timer +[0-9.]+//g' \
		-e 's/ (bridge_id|designated_root|root_id) [0-9a-f.]+//g' -e 's/ state [A-Z]+//' \
		-e 's/(NO-CARRIER,|,LOWER_UP)//g' # a portless br0's carrier settles late
	ip -o addr show | awk '{$1=""; print}' | sed -E -e 's/valid_lft.*//' -e 's/ tentative//'
	echo "## files"
	(cd "$root" && find . -printf '%p %y %m\n' | sort && find . -type f -print0 | sort -z | xargs -0r sha256sum)
	echo "## libvirt"
	local n
	for n in $(virsh -q net-list --all --name); do
		virsh net-dumpxml "$n" | grep -v '<uuid>'
		virsh -q net-list --all | grep -w "$n" # active, autostart
	done
	for n in $(virsh -q pool-list --all --name); do
		virsh pool-dumpxml "$n" | grep -Ev '<(uuid|capacity|allocation|available)'
		virsh -q pool-list --all | grep -w "$n"
	done
	echo "## daemons"
	ls /run/guardian-vms 2>/dev/null
}
same() { # same WHAT FILE1 FILE2
	diff -u "$2" "$3" >"$tmp/diff" && return 0
	head -40 "$tmp/diff" | sed 's/^/    /'
	return 1
}

# --- Guardian's firewall, its console listener, a LAN host
nft -f "$data/guardian.nft" || { echo "FAIL: cannot load guardian.nft"; exit 1; }
"$py" -c 'import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8091)); s.listen(16)
while True: s.accept()[0].close()' &
pids+=($!)
ip netns add lan
ip -n lan link set lo up
iptables-legacy -t filter -S >/dev/null # the table loaded: the "empty" state

# --- before: Guardian's br0 (made here for the check, removed again)
ip link add br0 type bridge && ip addr add 192.168.4.1/27 dev br0 && ip link set br0 up
check "LAN host on br0 before the install" lan_up
check "console port 8091 does not answer from br0 before the install" not tcp 192.168.4.1 8091
lan_down
ip link del br0
snapshot >"$tmp/s0"

# --- install
if install install1; then ok "install (--root --live)"; else bad "install (--root --live)"; fi
cat "$tmp/install1"
check "says there is no systemd and starts dnsmasq directly" \
	grep -q "no systemd as PID 1: started dnsmasq directly" "$tmp/install1"
check "br0 made by the installer, 192.168.4.1/27" \
	bash -c 'ip -d link show br0 | grep -q bridge && ip -o addr show br0 | grep -q "192.168.4.1/27"'
check "network guardian: bridge br0" bash -c 'virsh net-dumpxml guardian | grep -q "<bridge name=.br0./>"'
check "network guardian: active, autostart" bash -c 'virsh net-info guardian | grep -Eq "^Active: +yes" &&
	virsh net-info guardian | grep -Eq "^Autostart: +yes"'
check "pool guardian-vms: dir under the root" \
	bash -c "virsh pool-dumpxml guardian-vms | grep -q '<path>$root/srv/guardian-vms</path>'"
check "pool guardian-vms: running, autostart" bash -c 'virsh pool-info guardian-vms | grep -Eq "^State: +running" &&
	virsh pool-info guardian-vms | grep -Eq "^Autostart: +yes"'
for t in libvirt-network libvirt-pool daemon bridge firewall; do
	check "manifest records $t" grep -q "\"type\": \"$t\"" "$root/var/lib/guardian-vms/install.json"
done
# Guardian's web UI as Flask would load it from the installed tree
flask_check() { # flask_check WEBDIR: prints blueprints, tile, vm-section
	"$py" -B - "$1" <<'EOF'
import os, sys
web = sys.argv[1]
sys.path.insert(0, web)
from flask import Flask
from modules import register_blueprints
app = Flask("guardian", template_folder=os.path.join(web, "templates"))
register_blueprints(app)
with app.test_request_context("/"):
    html = app.jinja_env.get_template("core/dashboard.html").render()
print("blueprints:", " ".join(sorted(app.blueprints)))
print("tile:", 'id="gvm-tile"' in html, "vm-section:", 'id="vm-section"' in html)
print("assets:", "/vms/assets/js/guardian-tile.js" in html)
EOF
}
flask_check "$root$web" >"$tmp/flask1" 2>&1
check "Guardian loads our blueprint, not its vms one" grep -qx "blueprints: core guardian_vms" "$tmp/flask1"
check "the dashboard renders our tile instead of #vm-section" grep -qx "tile: True vm-section: False" "$tmp/flask1"
check "the tile's assets are served by the blueprint" grep -qx "assets: True" "$tmp/flask1"
flask_check "$data/guardian-root$web" >"$tmp/flask0" 2>&1
check "(before: Guardian's own vms blueprint and #vm-section)" bash -c "grep -qx 'blueprints: core vms' '$tmp/flask0' &&
	grep -qx 'tile: False vm-section: True' '$tmp/flask0'"
check "the blueprint installed byte for byte" cmp -s "$top/guardian/guardian_vms.py" "$root$web/modules/guardian_vms/__init__.py"
check "guardian-webui drop-in names vmmod's socket and the assets" \
	grep -qx "Environment=GUARDIAN_VMS_WEB_ASSETS=$top/web-assets" "$root/etc/systemd/system/guardian-webui.service.d/guardian-vms.conf"
dropin=$root/etc/systemd/system/guardian-webui.service.d/guardian-vms.conf
check "guardian-webui drop-in names Guardian's stylesheet (from base.html)" \
	grep -qx "Environment=GUARDIAN_VMS_HOST_CSS=css/main.css" "$dropin"
check "the plan counts the CDN stylesheets it does not take" \
	grep -qx "Guardian's stylesheets from other sites: 2 (not linked by the VM page)" "$tmp/install1"
# /vms as guardian-webui serves it: the drop-in's Environment= lines set
flask_page() { # flask_page WEBDIR DROPIN: prints the page's stylesheets
	"$py" -B - "$1" "$2" <<'EOF'
import os, re, sys
web, dropin = sys.argv[1], sys.argv[2]
for line in open(dropin):
    if line.startswith("Environment="):
        k, v = line[len("Environment="):].rstrip("\n").split("=", 1)
        os.environ[k] = v
sys.path.insert(0, web)
from flask import Flask
from modules import register_blueprints
app = Flask("guardian", template_folder=os.path.join(web, "templates"),
            static_folder=os.path.join(web, "static"))
app.secret_key = b"test"
register_blueprints(app)
c = app.test_client()
with c.session_transaction() as s:
    s["authenticated"] = True  # Guardian's PIN login
r = c.get("/vms")
print("page:", r.status_code)
for href in re.findall(r'<link rel="stylesheet" href="([^"]+)"', r.get_data(as_text=True)):
    print("css:", href)
r = c.get("/static/css/main.css")
print("main.css:", r.status_code, b"--hp-primary" in r.data)
EOF
}
flask_page "$root$web" "$dropin" >"$tmp/page1" 2>&1
sed 's/^/    /' "$tmp/page1"
check "/vms links Guardian's main.css after our design tokens" bash -c "grep -qx 'page: 200' '$tmp/page1' &&
	grep '^css: ' '$tmp/page1' | grep -A9 -x 'css: /vms/assets/css/guardian-vars.css' | grep -qx 'css: /static/css/main.css'"
check "Flask serves it from Guardian's static folder" grep -qx "main.css: 200 True" "$tmp/page1"
check "says guardian-webui is not restarted (no systemd)" grep -q "guardian-webui.service not restarted" "$tmp/install1"
check "manifest records the Guardian files as Guardian's" bash -c "grep -B2 -A8 '\"$web/templates/core/dashboard.html\"' '$root/var/lib/guardian-vms/install.json' | grep -q '\"guardian\": true'"
check "LAN host on br0 after the install" lan_up
check "console port 8091 answers from br0 after the install" tcp 192.168.4.1 8091
lease() { ip netns exec lan timeout 20 busybox udhcpc -i lan0 -n -q -f -t 5 -T 1 -s /bin/true 2>&1; }
out=$(lease)
check "LAN host gets a lease from the shrunk pool (.2-.23)" \
	grep -Eq 'lease of 192\.168\.4\.([2-9]|1[0-9]|2[0-3]) obtained' <<<"$out"
lan_down
snapshot >"$tmp/s1"

if install install2; then ok "second install"; else bad "second install"; fi
snapshot >"$tmp/s2"
check "the snapshot sees the install (br0, network, pool, chain, rule)" bash -c "! cmp -s '$tmp/s0' '$tmp/s1' &&
	grep -q '<name>guardian</name>' '$tmp/s1' && grep -q '<name>guardian-vms</name>' '$tmp/s1' &&
	grep -q 'br0.*bridge' '$tmp/s1' && grep -q GVM-VMS '$tmp/s1' && grep -q 'guardian-vms console' '$tmp/s1'"
check "install twice -> identical state" same "" "$tmp/s1" "$tmp/s2"

# --- uninstall with no VM -> the pre-install state
if run uninstall1 --uninstall --root "$root" --live; then ok "uninstall"; else bad "uninstall"; fi
cat "$tmp/uninstall1"
check "uninstall says VMs are kept (none found)" grep -q "your VMs and their disks were kept (none found" "$tmp/uninstall1"
snapshot >"$tmp/s3"
check "uninstall -> identical to the pre-install snapshot" same "" "$tmp/s0" "$tmp/s3"

# --- a VM made in the pool: plain uninstall keeps it, --purge removes it
make_vm() {
	virsh -q vol-create-as guardian-vms vm1.qcow2 1M --format qcow2 >/dev/null &&
		cat >"$tmp/vm1.xml" <<EOF &&
<domain type='qemu'><name>vm1</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='$root/srv/guardian-vms/vm1.qcow2'/><target dev='vda' bus='virtio'/></disk></devices></domain>
EOF
		virsh -q define "$tmp/vm1.xml" >/dev/null &&
		echo "52:54:00:00:00:01,192.168.4.24,vm1" >"$root/etc/dnsmasq.d/guardian-vms-hosts/vm1"
}
install install3 >/dev/null || bad "third install"
check "a VM (domain, volume, reservation) in the pool" make_vm
if run uninstall2 --uninstall --root "$root" --live; then ok "plain uninstall with a VM"; else bad "plain uninstall with a VM"; fi
check "plain uninstall names the VM it keeps" grep -q "your VMs and their disks were kept: vm1" "$tmp/uninstall2"
check "the VM is still defined" virsh -q dominfo vm1
check "its disk is still there" test -f "$root/srv/guardian-vms/vm1.qcow2"
check "the network and the pool are gone" bash -c '! virsh -q net-info guardian 2>/dev/null && ! virsh -q pool-info guardian-vms 2>/dev/null'
# back to the pre-install state by hand, then the same with --purge
check "the directories it kept stay in the manifest" grep -q "stay in /var/lib/guardian-vms/install.json" "$tmp/uninstall2"
virsh -q undefine vm1 >/dev/null
rm -f "$root/srv/guardian-vms/vm1.qcow2" "$root/etc/dnsmasq.d/guardian-vms-hosts/vm1"
run uninstall3 --uninstall --root "$root" --live || bad "--uninstall again once they are empty"
snapshot >"$tmp/s4"
check "plain uninstall, the VM removed by hand, --uninstall again -> pre-install snapshot" same "" "$tmp/s0" "$tmp/s4"

install install4 >/dev/null || bad "fourth install"
check "a VM again" make_vm
if run purge --uninstall --purge --root "$root" --live; then ok "uninstall --purge"; else bad "uninstall --purge"; fi
cat "$tmp/purge"
check "--purge says what it removed" grep -q "removed VMs made by vmmod (vm1) and 1 disk" "$tmp/purge"
check "the VM is gone" not virsh -q dominfo vm1 2>/dev/null
snapshot >"$tmp/s5"
check "--purge -> identical to the pre-install snapshot" same "" "$tmp/s0" "$tmp/s5"

# --- --repair: a no-op when in place; after a Guardian update, redone
install install5 >/dev/null || bad "fifth install"
snapshot >"$tmp/s6"
run repair1 --repair --root "$root" || bad "--repair"
snapshot >"$tmp/s7"
check "--repair with everything in place changes nothing" same "" "$tmp/s6" "$tmp/s7"
check "--repair restarts nothing then" grep -q "Guardian's files unchanged: guardian-webui.service not restarted" "$tmp/repair1"
# the update: Guardian's own files back (a newer version), our package gone
for f in modules/__init__.py templates/core/dashboard.html; do
	case $f in *.py) v="# Guardian 5.3" ;; *) v="<!-- Guardian 5.3 -->" ;; esac
	{ cat "$data/guardian-root$web/$f"; echo "$v"; } >"$root$web/$f"
	cp "$root$web/$f" "$tmp/updated-${f//\//_}"
done
rm -r "$root$web/modules/guardian_vms"
run repair2 --repair --root "$root" || bad "--repair after the update"
cat "$tmp/repair2"
check "--repair says the files changed and edits them again" bash -c "grep -q 'dashboard.html changed since the install' '$tmp/repair2' &&
	grep -q 'edited $web/modules/__init__.py' '$tmp/repair2' && grep -q 'wrote $web/modules/guardian_vms/__init__.py' '$tmp/repair2'"
flask_check "$root$web" >"$tmp/flask2" 2>&1
check "after --repair: our blueprint and tile again" bash -c "grep -qx 'blueprints: core guardian_vms' '$tmp/flask2' && grep -qx 'tile: True vm-section: False' '$tmp/flask2'"
snapshot >"$tmp/s8"
run repair3 --repair --root "$root" || bad "second --repair"
snapshot >"$tmp/s9"
check "a second --repair changes nothing" same "" "$tmp/s8" "$tmp/s9"
run uninstall5 --uninstall --root "$root" --live || bad "uninstall after the update"
for f in modules/__init__.py templates/core/dashboard.html; do
	check "uninstall restores the updated $f byte for byte" cmp -s "$tmp/updated-${f//\//_}" "$root$web/$f"
	cp "$data/guardian-root$web/$f" "$root$web/$f"
done
snapshot >"$tmp/s10"
check "uninstall after repair (+ Guardian's files put back) -> pre-install snapshot" same "" "$tmp/s0" "$tmp/s10"

[ $fails = 0 ] && echo "PASS: install (live in the namespace) twice identical, console port, lease, uninstall and --purge restore"
exit $((fails > 0))
