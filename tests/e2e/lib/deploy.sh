# shellcheck shell=bash
# The setting the deploy tests share (40-deploy, 91-profiles,
# 97-faults-deploy): a real vmmod with its own catalog, reservations and data
# directory under a temp directory $d, asked over its Unix socket, deploying
# the test appliances (build/appliance/<arch>, $appl) onto the sandbox's
# bridge br0.  Needs $top; sources lib/common.sh (report lines, skips,
# $vmmod) and lib/jobs.sh (wait_job, create, jqe).  A test calls deploy_dir,
# then sets `trap deploy_cleanup EXIT` (or a cleanup of its own that ends
# with deploy_cleanup), then vmmod_conf and start_vmmod.

. "$top/tests/e2e/lib/common.sh"
appl=$top/build/appliance
bg_pids=() cons_pids=()

# need_images ARCH...: fails the test unless the appliance of each ARCH is
# built (disk.qcow2.xz and its .sha256)
need_images() {
	local a
	for a in "$@"; do
		[ -f "$appl/$a/disk.qcow2.xz.sha256" ] ||
			{ echo "FAIL: no $appl/$a/disk.qcow2.xz (make appliances)"; exit 1; }
	done
}

# deploy_dir NAME: $d, a new /tmp/gvm-e2e-NAME.XXXXXX, 711 like data/ in
# it (QEMU runs as libvirt-qemu and opens the pool's disks below), with
# templates/ (holding templates/demo.json), resv/, hosts/ and www/
deploy_dir() {
	d=$(mktemp -d "/tmp/gvm-e2e-$1.XXXXXX") || exit 1
	mkdir -p "$d/templates" "$d/resv" "$d/hosts" "$d/www" "$d/data"
	chmod 711 "$d" "$d/data"
	cp "$top/templates/demo.json" "$d/templates/"
	S=(--unix-socket "$d/vmmod.sock")
}

# deploy_cleanup: stops the serial recorders, image servers and vmmod,
# removes every domain of the sandbox, shows vmmod's log when a check
# failed, removes br0 and $d
deploy_cleanup() {
	local p
	for p in "${cons_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
	stop_vmmod
	for p in $(virsh list --all --name 2>/dev/null); do
		virsh -q destroy "$p" >/dev/null 2>&1
		virsh -q undefine --nvram "$p" >/dev/null 2>&1
	done
	vmmod_log_if_failed
	ip link del br0 2>/dev/null
	rm -rf "$d"
}

# br0_up [CIDR]: the VMs' bridge br0 (in the sandbox's network namespace;
# STP off, no forwarding delay), with the address CIDR if given
br0_up() {
	ip link add br0 type bridge &&
		ip link set br0 type bridge forward_delay 0 stp_state 0 &&
		{ [ -z "${1:-}" ] || ip addr add "$1" dev br0; } &&
		ip link set br0 up
}

# httpd NAME [OPTION...]: an image server (tests/tools/fetch-httpd.py with
# OPTIONs, e.g. --rate B/S) for $d/www, its requests logged in $d/NAME.log;
# sets NAME_pid and port_NAME; false if it names no port within 5 s
httpd() {
	local name=$1 pid
	shift
	python3 "$top/tests/tools/fetch-httpd.py" --root "$d/www" \
		--port-file "$d/$name.port" --log "$d/$name.log" "$@" &
	pid=$!
	bg_pids+=("$pid")
	printf -v "${name}_pid" %s "$pid"
	for _ in $(seq 50); do [ -s "$d/$name.port" ] && break; sleep 0.1; done
	[ -s "$d/$name.port" ] && printf -v "port_$name" %s "$(cat "$d/$name.port")"
}

# vmmod_conf [LINE...]: $d/vmmod.conf: the catalog in $d/templates, the
# reservations and hosts files for dnsmasq in $d/resv and $d/hosts, leases
# in $d/leases, the audit log $d/audit.log, then the LINEs
vmmod_conf() {
	cat >"$d/vmmod.conf" <<EOF
socket_group =
templates_dir = $d/templates
appliance_dir = $appl
reservations_dir = $d/resv
hosts_dir = $d/hosts
lease_file = $d/leases
audit_log = $d/audit.log
EOF
	[ $# = 0 ] || printf '%s\n' "$@" >>"$d/vmmod.conf"
}

# start_vmmod [ARCH]: vmmod (-d, log appended to $d/vmmod.log) on
# $d/vmmod.conf with its data in $d/data, TCG, acting as an ARCH host
# (VMMOD_ARCH; none: the build host's own); true once GET /api/vms/status
# says libvirtd runs (10 s at most)
start_vmmod() {
	rm -f "$d/vmmod.sock"
	VMMOD_ARCH=${1:-} "$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system \
		--accel tcg --socket "$d/vmmod.sock" --token-file "$d/token" \
		--data-dir "$d/data" >>"$d/vmmod.log" 2>&1 &
	vmmod_pid=$!
	for _ in $(seq 100); do
		[ -S "$d/vmmod.sock" ] && [ "$(api GET /api/vms/status)" = 200 ] &&
			[ "$(field .libvirtd_running)" = true ] && return 0
		sleep 0.1
	done
	return 1
}

# api METHOD PATH [BODY]: prints the status; the body in $d/out
api() {
	local data=()
	[ -n "${3-}" ] && data=(-H 'Content-Type: application/json' --data-binary "$3")
	curl -sS --max-time 20 "${S[@]}" -o "$d/out" -w '%{http_code}' \
		-X "$1" "${data[@]}" "http://vmmod$2" 2>/dev/null
}
# field JQ: a field of $d/out
field() { jq -r "$1" "$d/out" 2>/dev/null; }

. "$top/tests/e2e/lib/jobs.sh"

# serial NAME: records the guest's serial console into $d/NAME.serial
serial() {
	script -qfec "virsh console --force $1" /dev/null </dev/null >"$d/$1.serial" 2>&1 &
	cons_pids+=($!)
}
# wait_serial NAME REGEX [SECONDS]: true once REGEX is on NAME's serial
# console (within SECONDS, $timeout by default)
wait_serial() {
	local end=$((SECONDS + ${3:-$timeout}))
	until tr -d '\r' <"$d/$1.serial" 2>/dev/null | grep -Eq "$2"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.25
	done
}

# nothing_left NAME: no domain, pool volume or file in the pool of NAME, no
# reservation of it (files, reservations.json), no temp image in the pool;
# says what it found
nothing_left() {
	local n=$1 pool=$d/data/pool f
	virsh -q dominfo "$n" >/dev/null 2>&1 && { echo "     domain $n left"; return 1; }
	virsh -q pool-refresh guardian-vms >/dev/null 2>&1
	if virsh -q vol-list guardian-vms 2>/dev/null | grep -q "^ *${n}[.-]"; then
		echo "     volume of $n left"; return 1
	fi
	for f in "$pool/$n".* "$pool/$n"-*; do
		[ -e "$f" ] && { echo "     file $f left in the pool"; return 1; }
	done
	[ -e "$d/resv/$n" ] && { echo "     reservation file of $n left"; return 1; }
	[ -e "$d/hosts/$n" ] && { echo "     hosts file of $n left"; return 1; }
	grep -qF "\"$n\"" "$d/data/reservations.json" 2>/dev/null &&
		{ echo "     $n still in reservations.json"; return 1; }
	for f in "$pool"/*.tmp-* "$pool"/*tofu*; do
		[ -e "$f" ] && { echo "     temp image $f left in the pool"; return 1; }
	done
	return 0
}
