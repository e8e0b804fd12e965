#!/bin/bash
# 75-installer-deploy: "Deploy Home Assistant now" through the installer,
# in the sandbox's namespaces.  An unattended install (--root --live, the
# Guardian-shaped fake root, as in 74), then vmmod started by this test on
# the installed configuration (its paths under the fake root; templates:
# a "homeassistant" template for the tiny aarch64 test appliance, served
# over HTTP on loopback, its image NOT pinned), then the installer again
# with GVM_DEPLOY_HA=yes:
#   - without consent the deploy step refuses (trust on first use), exit 1;
#   - with --trust-unpinned it deploys through vmmod's socket (libcurl),
#     printing the job's progress lines; a third run keeps the VM;
#   - the VM gets its reservation over DHCP from the dnsmasq the installer
#     started (GUEST-IP on the serial console = the reservation file);
#   - the VM cannot open a TCP connection to the host's port 8080 on br0
#     (a listener there; the appliance's probe prints GUEST-TCP ... closed)
#     while DNS works (GUEST-DNS ok <its reserved name>); control: a LAN
#     host on br0 outside the VM block connects to the same listener, so
#     "closed" is the installer's firewall, and the listener saw no
#     connection from the VM;
#   - the console listener the installer configured (console_listen on
#     br0's address, port 8091; a self-signed certificate from certtool
#     handed over in $CREDENTIALS_DIRECTORY as LoadCredential= would):
#     from the LAN host, https://192.168.4.1:8091 serves the console assets
#     (200) and nothing else (/api/vms 404), through Guardian's nftables
#     (input policy drop) with the installer's console rule;
#   - plain --uninstall keeps the VM and its disk and says so; --purge
#     then returns to the pre-install snapshot.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/75-installer-deploy.sh
# shellcheck disable=SC2317
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
setup=$build/guardian-vm-setup
vmmod=$build/vmmod
data=${TESTDATA:-$top/tests/data}/installer
appl=$top/build/appliance
timeout=${DEPLOY_TIMEOUT:-180}
if [ ! -x "$setup" ] || [ ! -x "$vmmod" ]; then echo "FAIL: build first (make)"; exit 1; fi
for t in nft iptables-legacy-save dnsmasq virsh python3 jq script curl certtool busybox; do
	command -v $t >/dev/null || { echo "SKIP: $t missing (sudo make deps)"; exit 77; }
done
[ -f "$appl/aarch64/disk.qcow2.xz.sha256" ] || { echo "SKIP: no test appliance (make appliances)"; exit 77; }
unset HOOKPROBE_VM_SUPPORT GVM_STORAGE_DIR GVM_BRIDGE GVM_BRIDGE_ADDR GVM_DHCP_RANGE \
	GVM_SHRINK_POOL GVM_CONSOLE_PORT GVM_BLOCK_PORTS GVM_DEPLOY_HA GVM_TRUST_UNPINNED GVM_VM_BLOCK
export GVM_SETUP_SKIP_APT=1 GVM_SETUP_DATADIR=$top PYTHONDONTWRITEBYTECODE=1

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
not() { ! "$@"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

d=$(mktemp -d /tmp/gvm-e2e-setup-deploy.XXXXXX)
chmod 711 "$d"
root=$d/root
vmmod_pid="" srv_pid="" cons_pid="" web_pid=""
cleanup() {
	local p
	[ -n "$cons_pid" ] && kill -KILL "$cons_pid" 2>/dev/null
	for p in $srv_pid $vmmod_pid $web_pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	ip link del gvm-lan 2>/dev/null
	ip netns del lan 2>/dev/null
	for p in $(virsh list --all --name 2>/dev/null); do
		virsh -q destroy "$p" >/dev/null 2>&1
		virsh -q undefine --nvram "$p" >/dev/null 2>&1
	done
	[ -f /run/guardian-vms/dnsmasq.pid ] && kill "$(cat /run/guardian-vms/dnsmasq.pid)" 2>/dev/null
	if [ "$fails" != 0 ]; then
		echo "--- vmmod log (last 30 lines)"
		tail -30 "$d/vmmod.log" 2>/dev/null
	fi
	rm -rf "$d"
}
trap cleanup EXIT
cp -a "$data/guardian-root" "$root"
sed "s|^GVM_STORAGE_DIR=.*|GVM_STORAGE_DIR=/srv/guardian-vms|" "$data/guardian.answers" >"$d/answers"

run() { # run NAME ARGS...: the installer, output in $d/NAME
	local name=$1 rc=0
	shift
	"$setup" "$@" </dev/null >"$d/$name" 2>&1 || rc=$?
	return $rc
}
install() { local n=$1; shift; run "$n" --unattended --root "$root" --live --answers "$d/answers" "$@"; }
snapshot() { # what --purge must give back (as in 74)
	echo "## iptables"
	iptables-legacy-save | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[0:0]/'
	echo "## nft"
	# less libvirt's own empty "bridge nat" table, made by its ebtables
	# (nwfilter clean-traffic) when the first VM starts, not by the installer
	nft list ruleset | awk '/^table bridge nat \{/ { skip = 1 } !skip { print } skip && /^\}/ { skip = 0 }'
	echo "## links"
	ip -o link show | sed -E -e 's/link\/ether [0-9a-f:]+ brd [0-9a-f:]+//' -e 's/ state [A-Z]+//' | grep -v vnet
	echo "## files"
	(cd "$root" && find . -printf '%p %y %m\n' | sort && find . -type f -print0 | sort -z | xargs -0r sha256sum)
	echo "## libvirt"
	virsh -q list --all --name
	virsh -q net-list --all --name
	virsh -q pool-list --all --name
}

nft -f "$data/guardian.nft" || { echo "FAIL: cannot load guardian.nft"; exit 1; }
iptables-legacy -t filter -S >/dev/null
snapshot >"$d/s0"

# --- 1. install (no deploy yet: vmmod runs only after it)
if install install1; then ok "install (--root --live)"; else bad "install"; sed 's/^/    /' "$d/install1"; fi

check "vmmod.conf: the console listener on br0's address, the nftables rule's port" bash -c "
	grep -qx 'console_listen = 192.168.4.1:8091' '$root/etc/vmmod/vmmod.conf' &&
	! grep -q '^console_url_base' '$root/etc/vmmod/vmmod.conf' &&
	nft list chain inet guardian input | grep -q 'iifname \"br0\" tcp dport 8091 accept'"

# --- 2. vmmod on the installed configuration (paths under the root), the
# console listener's certificate where systemd's LoadCredential= puts it
creds=$d/credentials
mkdir -p "$creds"
printf 'cn = "192.168.4.1"\nip_address = "192.168.4.1"\nexpiration_days = 2\ntls_www_server\nsigning_key\nca\n' >"$d/cert.tmpl"
if ! certtool --generate-privkey --key-type=ecdsa --no-text --outfile "$creds/console.key" >/dev/null 2>&1 ||
	! certtool --generate-self-signed --load-privkey "$creds/console.key" --template "$d/cert.tmpl" \
		--outfile "$creds/console.crt" >/dev/null 2>&1; then
	bad "certtool could not make a certificate"
	exit 1
fi
mkdir -p "$d/templates" "$d/www" "$d/data"
cp "$appl/aarch64/disk.qcow2.xz" "$d/www/haos.qcow2.xz"
python3 "$top/tests/tools/fetch-httpd.py" --root "$d/www" --port-file "$d/srv.port" --log "$d/srv.log" &
srv_pid=$!
for _ in $(seq 50); do [ -s "$d/srv.port" ] && break; sleep 0.1; done
jq -n --arg url "http://127.0.0.1:$(cat "$d/srv.port")/haos.qcow2.xz" --argjson size "$(stat -c %s "$d/www/haos.qcow2.xz")" '{
  schema: 1, id: "homeassistant", name: "Home Assistant OS (test appliance)",
  description: "the tiny test appliance shaped like homeassistant",
  kind: "disk-image", firmware: {type: "uefi", secure_boot: false},
  memory_mb: 512, min_memory_mb: 256, vcpus: 1, disk_gb: 2,
  disk_mode: "overlay", web: {scheme: "http", port: 8123, path: "/"},
  dns_name: "homeassistant", wants_devices: [], cloud_init: null,
  images: {aarch64: {url: $url, sha256: null, note: "unpinned for the test",
    size: $size, format: "qcow2", compression: "xz", version: "test"}}}' >"$d/templates/homeassistant.json"
sed -E "s#^(reservations_dir|hosts_dir|pool_dir) = #\\1 = $root#" "$root/etc/vmmod/vmmod.conf" >"$d/vmmod.conf"
cat >>"$d/vmmod.conf" <<EOT
socket_group =
templates_dir = $d/templates
appliance_dir = $appl
audit_log = $d/audit.log
ram_budget_mb = 1500
web_root = $top/web-assets
EOT
CREDENTIALS_DIRECTORY=$creds VMMOD_ARCH=aarch64 "$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod.sock" --token-file "$d/token" --data-dir "$d/data" >>"$d/vmmod.log" 2>&1 &
vmmod_pid=$!
for _ in $(seq 100); do [ -S "$d/vmmod.sock" ] && break; sleep 0.1; done
check "vmmod answers on its socket" [ -S "$d/vmmod.sock" ]
export GVM_SETUP_VMMOD_SOCKET=$d/vmmod.sock

# --- a LAN host on br0 (outside the VM block) and a listener on the host's
# br0 address, port 8080 (Guardian's web UI port), logging its peers
ip netns add lan
ip -n lan link set lo up
ip link add gvm-lan type veth peer name lan0 netns lan &&
	ip link set gvm-lan master br0 up &&
	ip -n lan addr add 192.168.4.5/27 dev lan0 && ip -n lan link set lan0 up
for _ in $(seq 50); do
	ip netns exec lan busybox ping -c1 -W1 192.168.4.1 >/dev/null 2>&1 && break
	sleep 0.1
done
python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.168.4.1", 8080)); s.listen(16)
while True:
    c, a = s.accept()
    with open(sys.argv[1], "a") as f: f.write(a[0] + "\n")
    c.close()' "$d/web-peers" &
web_pid=$!
lan_tcp() { ip netns exec lan busybox timeout 5 busybox nc -w 2 "$1" "$2" </dev/null >/dev/null 2>&1; }
lan_curl() { # lan_curl PATH: the HTTP status from the LAN host
	ip netns exec lan curl -ks --max-time 5 -o /dev/null -w '%{http_code}' "https://192.168.4.1:8091$1"
}
check "console listener from br0 (LAN host): GET /console/assets/js/console.js -> 200" \
	[ "$(lan_curl /console/assets/js/console.js)" = 200 ]
check "... GET /api/vms -> 404 (consoles only there)" [ "$(lan_curl /api/vms)" = 404 ]
check "... it speaks TLS with the certificate handed over" bash -c "ip netns exec lan curl -s --max-time 5 \
	--cacert '$creds/console.crt' -o /dev/null https://192.168.4.1:8091/console/assets/js/console.js"

# --- 3. the deploy step: refused without consent, then with it
rc=0
GVM_DEPLOY_HA=yes install deploy0 || rc=$?
check "unpinned image without consent: the step fails (exit 1)" [ "$rc" = 1 ]
check "... and says how to consent (trust on first use)" grep -q "not pinned by a known SHA-256.*--trust-unpinned" "$d/deploy0"
check "... nothing downloaded, no VM" bash -c "[ ! -s '$d/srv.log' ] && ! virsh -q dominfo homeassistant >/dev/null 2>&1"
t0=$SECONDS
if GVM_DEPLOY_HA=yes install deploy1 --trust-unpinned; then ok "install with the deploy (--trust-unpinned)"; else
	bad "install with the deploy"; sed 's/^/    /' "$d/deploy1"; fi
echo "     (deploy took $((SECONDS - t0)) s)"
grep 'deploy\]' "$d/deploy1" | sed 's/^/    /'
check "progress lines of the job (downloading ... deployed)" bash -c "grep -q 'deploy\\].*%.*downloading' '$d/deploy1' &&
	grep -q 'deploy\\] 100% deployed (image trusted on first use' '$d/deploy1'"
check "the VM is defined, autostarted, running" bash -c 'virsh dominfo homeassistant | grep -q "Autostart: *enable" &&
	virsh domstate homeassistant | grep -q running'
resv=$(cut -d, -f2 "$root/etc/dnsmasq.d/guardian-vms-hosts/homeassistant" 2>/dev/null)
check "its reservation ($resv) is in the installer's VM block .24-.30" \
	grep -Eq '^192\.168\.4\.(2[4-9]|30)$' <<<"$resv"
script -qfec "virsh console --force homeassistant" /dev/null </dev/null >"$d/serial" 2>&1 &
cons_pid=$!
wait_serial() { # wait_serial REGEX
	local end=$((SECONDS + timeout))
	until tr -d '\r' <"$d/serial" | grep -Eq "$1"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.25
	done
}
if wait_serial '^GUEST-IP '; then
	got=$(tr -d '\r' <"$d/serial" | sed -n 's/^GUEST-IP //p' | head -1)
	check "GUEST-IP $got (DHCP from the installer's dnsmasq) = the reservation $resv" [ "$got" = "$resv" ]
else
	bad "no GUEST-IP on the serial console"; tail -20 "$d/serial"
fi
# (not at a line's start: the shell prompt and its escapes may come first)
if wait_serial 'GUEST-DNS (ok|fail)'; then
	tr -d '\r' <"$d/serial" | grep -E 'GUEST-(TCP|DNS) ' | sed 's/^/    /'
	check "the VM cannot open tcp 192.168.4.1:8080 on br0 (GUEST-TCP ... closed)" \
		bash -c "tr -d '\r' <'$d/serial' | grep -Eq 'GUEST-TCP 192\.168\.4\.1:8080 closed$'"
	check "... while DNS works (GUEST-DNS ok homeassistant.guardian.local)" \
		bash -c "tr -d '\r' <'$d/serial' | grep -Eq 'GUEST-DNS ok homeassistant\.guardian\.local$'"
	[ "$fails" = 0 ] || { echo "    --- serial console"; tr -d '\r' <"$d/serial" | tail -15 | sed 's/^/    /'; }
else
	bad "no GUEST-TCP/GUEST-DNS probe lines on the serial console"; tail -20 "$d/serial"
fi
check "control: the LAN host (192.168.4.5, not a VM) connects to 192.168.4.1:8080" lan_tcp 192.168.4.1 8080
check "... the listener saw the LAN host and never the VM ($resv)" bash -c "grep -qx 192.168.4.5 '$d/web-peers' &&
	! grep -qx '$resv' '$d/web-peers'"
kill -KILL "$cons_pid" 2>/dev/null
cons_pid=""
kill "$web_pid" && wait "$web_pid" 2>/dev/null
web_pid=""
ip link del gvm-lan
ip netns del lan
n0=$(wc -l <"$d/srv.log")
if GVM_DEPLOY_HA=yes install deploy2 --trust-unpinned; then ok "install again with the deploy"; else bad "install again"; fi
check "... keeps the VM, downloads nothing" bash -c "grep -q 'exists already: kept' '$d/deploy2' && [ \$(wc -l <'$d/srv.log') = $n0 ]"

# --- 4. plain uninstall keeps the VM and its disk; --purge removes all
kill "$vmmod_pid" && wait "$vmmod_pid" 2>/dev/null
vmmod_pid=""
if run uninstall --uninstall --root "$root" --live; then ok "plain uninstall"; else bad "plain uninstall"; sed 's/^/    /' "$d/uninstall"; fi
check "it names the VM it keeps" grep -q "your VMs and their disks were kept: homeassistant" "$d/uninstall"
check "the VM is still defined" virsh -q dominfo homeassistant
check "its disk is still there" bash -c "ls '$root/srv/guardian-vms/' | grep -q '^homeassistant'"
virsh -q destroy homeassistant >/dev/null 2>&1
install install2 || bad "install after the plain uninstall"
if run purge --uninstall --purge --root "$root" --live; then ok "uninstall --purge"; else bad "uninstall --purge"; sed 's/^/    /' "$d/purge"; fi
check "--purge says it removed the VM" grep -q "removed VMs made by vmmod (homeassistant)" "$d/purge"
snapshot >"$d/s1"
if diff -u "$d/s0" "$d/s1" >"$d/diff"; then ok "--purge -> the pre-install snapshot"; else
	bad "--purge -> the pre-install snapshot"; head -30 "$d/diff" | sed 's/^/    /'; fi

[ $fails = 0 ] && echo "PASS: deploy through the installer (TOFU consent, job progress), GUEST-IP = reservation, VM cannot reach tcp 8080 while DNS works, console listener on br0:8091, uninstall keeps, --purge restores"
exit $((fails > 0))
