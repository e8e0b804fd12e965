#!/bin/bash
# 01-sandbox-cleanup: a sandbox started from here (tests/sandbox.sh, nested in
# the one run.sh gives every test) leaves nothing behind:
#   1. --no-pidns, the command exits 3 with a domain still running and a
#      stray background process: exit status 3, and the explicit stop-by-PID
#      cleanup alone (no PID namespace to fall back on) stopped QEMU,
#      libvirtd, virtlogd and the stray process.
#   2. --keep DIR without a command, SIGINT (what Ctrl-C delivers): the
#      sandbox libvirtd answered from outside at qemu:///system?socket=DIR/...,
#      a domain started through it; then exit 130, every process gone, DIR
#      removed again.
#   3. SIGTERM while the command runs (what run.sh's timeout sends): exit
#      143, every process gone.
# In every case no mount leaked into this mount namespace, during or after.
# Also: not root -> exit 77 with a clear message; --help works.
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
sb=$top/tests/sandbox.sh

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
if ! unshare --mount --net --pid --fork --mount-proc true 2>/dev/null; then
	echo "SKIP: cannot create nested namespaces here"
	exit 77
fi

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

work=$(mktemp -d /tmp/gvm-01-sandbox.XXXXXX)
sb1="" sb2="" sb3=""
finish() { # stop sandboxes still running (the test was interrupted), then tidy up
	local p
	for p in $sb1 $sb2 $sb3; do kill -TERM "$p" 2>/dev/null && wait "$p"; done
	rm -rf "$work"
}
trap finish EXIT

mounts() { awk '{print $5, $9, $10}' /proc/self/mountinfo | sort; }
mounts_before=$(mounts)
no_mount_leak() { [ "$(mounts)" = "$mounts_before" ]; }

cat >"$work/probe.xml" <<'XML'
<domain type='qemu'>
  <name>probe</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><serial type='pty'/><memballoon model='none'/></devices>
</domain>
XML

# A live process, not a zombie waiting for its parent to reap it.
alive() {
	local st
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}
# Live processes in the network namespace held open on fd $1.
in_netns() {
	local p out=""
	for p in /proc/[0-9]*; do
		[ "$p/ns/net" -ef "/proc/$$/fd/$1" ] 2>/dev/null && alive "${p#/proc/}" && out+="${p#/proc/} "
	done
	echo "$out"
}
# PIDs (and names) of all descendants of $1, as "pid:comm ...".
descendants() {
	ps -e -o pid=,ppid=,comm= | awk -v root="$1" '
		{ parent[$1] = $2; comm[$1] = $3 }
		END {
			n = 1; set[root] = 1
			while (n) { n = 0
				for (p in parent) if (!(p in set) && (parent[p] in set)) { set[p] = 1; n = 1 } }
			for (p in set) if (p != root) printf "%s:%s ", p, comm[p]
		}'
}
none_alive() { # none_alive "pid:comm ..."
	local e left=""
	for e in $1; do alive "${e%%:*}" && left+="$e "; done
	[ -z "$left" ] || { echo "     still running: $left"; return 1; }
}
wait_for() { # wait_for FILE PID: until FILE exists (30 s), while PID lives
	local i
	for ((i = 0; i < 150; i++)); do
		[ -e "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
has() { case " $1" in *":$2 "* | *":$2"[-_]*) return 0 ;; esac; return 1; }

# ---------------------------------------------------------------- 0. basics
check "--help documents --keep" sh -c "'$sb' --help | grep -q -- --keep"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$sb" -- true 2>&1)
rc=$?
check "not root: exit 77 (got $rc)" [ "$rc" = 77 ]
check "not root: says it needs root ($out)" sh -c "echo '$out' | grep -q root"

# ---------------------------------------------------------------- start all three
# The three sandboxes start in parallel (each needs a few seconds to get
# ready), then each case is checked in turn.
c1=$work/c1
mkdir "$c1"
# shellcheck disable=SC2016
"$sb" --no-pidns -- bash -c '
	set -e
	virsh -q define "$1/probe.xml" >/dev/null
	virsh -q start probe >/dev/null
	q="" l="" v=""
	read -r q </run/libvirt/qemu/probe.pid || true
	read -r l </run/libvirtd.pid || true
	read -r v </run/virtlogd.pid || true
	sleep 1000 &
	echo "$q:qemu $l:libvirtd $v:virtlogd $!:sleep" >"$2/pids.tmp"
	mv "$2/pids.tmp" "$2/pids"
	for _ in $(seq 150); do [ -e "$2/go" ] && exit 3; sleep 0.2; done
	exit 4' _ "$work" "$c1" &
sb1=$!
keep=$work/keep
# A background job of a script ignores SIGINT; give the sandbox the default
# disposition, as a terminal's foreground job has it.
env --default-signal=INT "$sb" --keep "$keep" &
sb2=$!
c3=$work/c3
mkdir "$c3"
# shellcheck disable=SC2016
"$sb" -- bash -c 'touch "$1/ready"; sleep 1000' _ "$c3" &
sb3=$!

# ---------------------------------------------------------------- 1. --no-pidns, command exits 3
echo "-- case 1: --no-pidns, command exits 3 leaving a domain and a stray process"
if wait_for "$c1/pids" "$sb1"; then
	pids=$(cat "$c1/pids")
	lpid=$(echo "$pids" | tr ' ' '\n' | sed -n 's/:libvirtd$//p')
	exec 9<"/proc/$lpid/ns/net"
	check "its libvirtd is in another network namespace" [ ! "/proc/$$/ns/net" -ef /proc/$$/fd/9 ]
	check "no mount leaked while it runs" no_mount_leak
	touch "$c1/go"
	wait "$sb1"
	rc=$?
	check "exit status of the command passed through (3, got $rc)" [ "$rc" = 3 ]
	check "QEMU, libvirtd, virtlogd and the stray process were stopped" none_alive "$pids"
	left=$(in_netns 9)
	check "no process left in its network namespace ($left)" [ -z "$left" ]
	exec 9<&-
else
	bad "case 1: the sandbox did not get ready"
	kill -TERM "$sb1" 2>/dev/null
	wait "$sb1"
fi
check "no mount leaked after it" no_mount_leak

# ---------------------------------------------------------------- 2. --keep, SIGINT
echo "-- case 2: --keep DIR, reached from outside, then SIGINT"
if wait_for "$keep/gvm-sandbox.uri" "$sb2"; then
	uri=$(cat "$keep/gvm-sandbox.uri")
	check "the URI is qemu:///system?socket=DIR/libvirt/libvirt-sock" \
		[ "$uri" = "qemu:///system?socket=$keep/libvirt/libvirt-sock" ]
	check "define a domain from outside" virsh -q -c "$uri" define "$work/probe.xml"
	check "start it from outside" virsh -q -c "$uri" start probe
	check "it runs" [ "$(virsh -c "$uri" domstate probe 2>/dev/null | head -1)" = running ]
	procs=$(descendants "$sb2")
	echo "     sandbox processes: $procs"
	check "libvirtd, virtlogd and QEMU run in it" \
		sh -c "$(declare -f has); has '$procs' libvirtd && has '$procs' virtlogd && has '$procs' qemu-system"
	lpid=$(echo "$procs" | tr ' ' '\n' | sed -n 's/:libvirtd$//p' | head -1)
	exec 8<"/proc/${lpid:-0}/ns/net"
	check "no mount leaked while it runs" no_mount_leak
	kill -INT "$sb2"
	wait "$sb2"
	rc=$?
	check "SIGINT: exit 130 (got $rc)" [ "$rc" = 130 ]
	check "every process of it was stopped" none_alive "$procs"
	left=$(in_netns 8)
	check "no process left in its network namespace ($left)" [ -z "$left" ]
	exec 8<&-
	check "DIR was removed (the sandbox created it)" [ ! -e "$keep" ]
	check "its URI no longer answers" sh -c "! virsh -c '$uri' list >/dev/null 2>&1"
else
	bad "case 2: the sandbox did not get ready"
	kill -TERM "$sb2" 2>/dev/null
	wait "$sb2"
fi
check "no mount leaked after it" no_mount_leak

# ---------------------------------------------------------------- 3. SIGTERM during the command
echo "-- case 3: SIGTERM while the command runs"
if wait_for "$c3/ready" "$sb3"; then
	procs=$(descendants "$sb3")
	echo "     sandbox processes: $procs"
	check "libvirtd, virtlogd and the command run in it" \
		sh -c "$(declare -f has); has '$procs' libvirtd && has '$procs' virtlogd && has '$procs' sleep"
	lpid=$(echo "$procs" | tr ' ' '\n' | sed -n 's/:libvirtd$//p' | head -1)
	exec 7<"/proc/${lpid:-0}/ns/net"
	kill -TERM "$sb3"
	wait "$sb3"
	rc=$?
	check "SIGTERM: exit 143 (got $rc)" [ "$rc" = 143 ]
	check "every process of it was stopped" none_alive "$procs"
	left=$(in_netns 7)
	check "no process left in its network namespace ($left)" [ -z "$left" ]
	exec 7<&-
else
	bad "case 3: the sandbox did not get ready"
	kill -TERM "$sb3" 2>/dev/null
	wait "$sb3"
fi
check "no mount leaked after it" no_mount_leak

[ "$fails" = 0 ] || { echo "01-sandbox-cleanup: $fails check(s) failed"; exit 1; }
echo "01-sandbox-cleanup: all checks passed"
