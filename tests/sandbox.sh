#!/bin/bash
# tests/sandbox.sh — run a command next to a private libvirtd, inside fresh
# mount + network (+ PID) namespaces.  See `tests/sandbox.sh --help`.
#
# How it works: this script (the "outer" part, on the host side) checks the
# environment and starts `unshare`, which runs this same script again with
# --inner inside the new namespaces.  The inner part puts private tmpfs mounts
# over /run, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and
# /etc/libvirt (with our own libvirtd.conf, qemu.conf and virtlogd.conf),
# remounts /sys for the new network namespace, brings `lo` up, starts its own
# virtlogd and libvirtd, waits until libvirtd answers, runs the command and
# finally stops everything it started by PID.  Nothing here touches host
# interfaces, the host firewall, the host's /etc or a host libvirtd: every
# mount is made in the private mount namespace (propagation private), every
# packet stays in the private network namespace.

# Functions below are called from traps, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -u
self=$(readlink -f "$0")
me=sandbox

usage() {
	cat <<'EOF'
Usage: tests/sandbox.sh [OPTIONS] [--] [COMMAND [ARG...]]

Runs COMMAND inside fresh mount + network + PID namespaces with its own
virtlogd and libvirtd (QEMU driver, TCG-friendly settings, no host services,
no host /etc), and exits with COMMAND's exit status.  Needs root.

Inside, tmpfs covers /run, /var/lib/libvirt, /var/cache/libvirt,
/var/log/libvirt and /etc/libvirt; only `lo` exists (and is up); and the
environment has:
  LIBVIRT_DEFAULT_URI=qemu:///system   (so plain `virsh` talks to the sandbox)
  GVM_SANDBOX=1
  GVM_SANDBOX_URI      URI of the sandbox libvirtd as seen from inside
  GVM_SANDBOX_KEEP     with --keep: DIR;  GVM_SANDBOX_OUTER_URI: the URI
                       processes outside the sandbox use

Without COMMAND: with --keep, wait until SIGINT/SIGTERM; else run an
interactive shell.

Options:
  --keep DIR     bind-mount DIR (absent or empty; created and removed if
                 absent) onto /run inside the sandbox, so processes outside
                 can reach its libvirtd at
                   qemu:///system?socket=DIR/libvirt/libvirt-sock
                 The URI is printed (stderr) and written to DIR/gvm-sandbox.uri
                 once libvirtd answers.  DIR is emptied on exit.
  --logs DIR     on exit, copy the sandbox's /var/log/libvirt into DIR
                 (DIR must not be under /run, /var/log, /var/lib, /var/cache
                 or /etc/libvirt)
  --group NAME   group owning libvirtd's read-write socket (mode 0770);
                 default libvirt, as on a Debian host (the sandbox adds the
                 groups libvirt, kvm and libvirt-qemu and the user
                 libvirt-qemu to its private /etc/group, /etc/passwd when
                 the host lacks them)
  --timeout SEC  how long to wait for libvirtd to answer (default 30)
  --qemu-cache DIR
                 keep libvirt's QEMU capabilities cache in DIR across
                 sandboxes (saves ~1 s per emulator and sandbox; libvirt
                 re-probes when QEMU or libvirt changed).  Default:
                 $GVM_SANDBOX_QEMU_CACHE, else $TOP/$BUILD/sandbox-qemu-caps
                 when run.sh's TOP and BUILD are set; "none" disables it
  --no-pidns     no PID namespace: only the explicit stop-by-PID cleanup
                 protects against leftovers (used by the cleanup test)
  -v, --verbose  say what is being set up
  -h, --help     this text

Exit status: COMMAND's status; 128+N when stopped by signal N; 77 when not
root or namespaces are unavailable (make check counts it as skipped);
125 when the sandbox itself could not be set up or cleaned up.

Cleanup (normal exit, failure, Ctrl-C, SIGTERM, SIGHUP): the command, every
process libvirtd wrote a pid file for (QEMU, dnsmasq) and then libvirtd and
virtlogd are stopped by PID (TERM, then KILL after a few seconds); any other
process still in the sandbox is killed.  The PID namespace is the safety net:
when the sandbox ends, the kernel kills whatever is left in it.
EOF
}

say() { echo "$me: $*" >&2; }
verbose=0
t0=${EPOCHREALTIME/[.,]/}
log() {
	[ "$verbose" = 0 ] && return
	local t=$(((${EPOCHREALTIME/[.,]/} - t0) / 10000))
	say "[$((t / 100)).$((t / 10 % 10))$((t % 10))s] $*"
}

# ---------------------------------------------------------------- options
inner=0 keep="" logs="" group=libvirt timeout=30 pidns=1 qcache=${GVM_SANDBOX_QEMU_CACHE:-}
if [ -z "$qcache" ] && [ -n "${TOP:-}" ] && [ -n "${BUILD:-}" ]; then
	case $BUILD in /*) qcache=$BUILD/sandbox-qemu-caps ;; *) qcache=$TOP/$BUILD/sandbox-qemu-caps ;; esac
	[ -d "${qcache%/*}" ] || qcache=""
fi
while [ $# -gt 0 ]; do
	case "$1" in
	--inner) inner=1 ;;
	--keep) keep=${2:?--keep needs a directory}; shift ;;
	--keep=*) keep=${1#*=} ;;
	--logs) logs=${2:?--logs needs a directory}; shift ;;
	--logs=*) logs=${1#*=} ;;
	--group) group=${2:?--group needs a name}; shift ;;
	--group=*) group=${1#*=} ;;
	--timeout) timeout=${2:?--timeout needs seconds}; shift ;;
	--timeout=*) timeout=${1#*=} ;;
	--qemu-cache) qcache=${2:?--qemu-cache needs a directory}; shift ;;
	--qemu-cache=*) qcache=${1#*=} ;;
	--no-pidns) pidns=0 ;;
	-v | --verbose) verbose=1 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) say "unknown option $1 (see --help)"; exit 2 ;;
	*) break ;;
	esac
	shift
done
[ "$qcache" = none ] && qcache=""
case $timeout in '' | *[!0-9]*) say "--timeout wants whole seconds"; exit 2 ;; esac

# ================================================================ outer part
outer_main() {
	if [ "$(id -u)" != 0 ]; then
		say "needs root (it creates namespaces and runs its own libvirtd): try sudo; skipping"
		exit 77
	fi
	local t
	for t in unshare mount umount ip virsh libvirtd virtlogd; do
		command -v "$t" >/dev/null 2>&1 ||
			{ say "missing $t (sudo make deps); skipping"; exit 77; }
	done
	local nsopts=(--mount --net --propagation private)
	[ "$pidns" = 1 ] && nsopts+=(--pid --fork --mount-proc --kill-child=TERM)
	if ! unshare "${nsopts[@]}" true 2>/dev/null; then
		say "cannot create the namespaces here (unshare ${nsopts[*]} failed); skipping"
		exit 77
	fi

	local created=0 inner_args=()
	if [ -n "$keep" ]; then
		keep=$(realpath -m -- "$keep")
		case $keep in
		/ | /run | /run/* | /proc* | /sys* | /dev*)
			say "--keep $keep: choose a directory outside /run, /proc, /sys and /dev"; exit 2 ;;
		esac
		if [ -e "$keep" ] || [ -L "$keep" ]; then
			if [ ! -d "$keep" ] || [ -L "$keep" ]; then say "--keep $keep: not a directory"; exit 2; fi
			[ -z "$(ls -A -- "$keep")" ] || { say "--keep $keep: directory is not empty"; exit 2; }
		else
			mkdir -p -- "$keep" || exit 125
			created=1
		fi
	fi
	if [ -n "$logs" ]; then
		logs=$(realpath -m -- "$logs")
		case $logs/ in
		/run/* | /var/log/* | /var/lib/* | /var/cache/* | /etc/libvirt/*)
			say "--logs $logs: choose a directory outside the paths the sandbox mounts over"; exit 2 ;;
		esac
		mkdir -p -- "$logs" || exit 125
	fi
	if [ -n "$qcache" ]; then
		qcache=$(realpath -m -- "$qcache")
		case $qcache/ in
		/run/* | /var/log/* | /var/lib/* | /var/cache/* | /etc/libvirt/*)
			say "--qemu-cache $qcache: choose a directory outside the paths the sandbox mounts over"; exit 2 ;;
		esac
		mkdir -p -- "$qcache" 2>/dev/null || { say "warning: cannot create $qcache; no QEMU capabilities cache"; qcache=""; }
	fi
	# Hand the inner part the normalised options.
	inner_args=(--group "$group" --timeout "$timeout" --qemu-cache "${qcache:-none}")
	[ -n "$keep" ] && inner_args+=(--keep "$keep")
	[ -n "$logs" ] && inner_args+=(--logs "$logs")
	[ "$pidns" = 0 ] && inner_args+=(--no-pidns)
	[ "$verbose" = 1 ] && inner_args+=(--verbose)

	# unshare runs in the background so that this shell can forward signals:
	# unshare --fork blocks SIGINT/SIGTERM itself and only waits for its child.
	# A background job of a non-interactive shell ignores SIGINT, so the inner
	# part is told about SIGINT with SIGUSR1 (and exits 130 as for SIGINT).
	unshare "${nsopts[@]}" -- /bin/bash "$self" --inner "${inner_args[@]}" -- "$@" <&0 &
	upid=$!
	trap 'forward INT' INT
	trap 'forward TERM' TERM
	trap 'forward HUP' HUP
	local rc
	while :; do
		wait "$upid"
		rc=$?
		kill -0 "$upid" 2>/dev/null || break
	done
	trap - INT TERM HUP
	if [ "$created" = 1 ]; then
		rmdir -- "$keep" 2>/dev/null || say "left $keep behind (not empty)"
	fi
	exit "$rc"
}

# PID of the inner part as seen from here: unshare itself without a PID
# namespace (it execs), else unshare's only child.
inner_pid() {
	[ "$pidns" = 1 ] || { echo "$upid"; return; }
	local p st rest
	for p in /proc/[0-9]*; do
		read -r st 2>/dev/null <"$p/stat" || continue
		rest=${st##*) }           # "S PPID ..."
		rest=${rest#* }
		[ "${rest%% *}" = "$upid" ] && { echo "${p#/proc/}"; return; }
	done
}

forward() {
	local sig=$1 target i
	[ "$1" = INT ] && sig=USR1
	for ((i = 0; i < 50; i++)); do
		target=$(inner_pid)
		[ -n "$target" ] && break
		kill -0 "$upid" 2>/dev/null || return
		sleep 0.1
	done
	[ -n "$target" ] && kill -s "$sig" "$target" 2>/dev/null
}

# ================================================================ inner part
# Everything below runs inside the new namespaces.

fail() { say "$*"; exit 125; }

# True when PID is a live (not zombie) process of this sandbox: it shares our
# network namespace, which only processes started in here do.
ours() {
	local st
	[ -n "$1" ] && [ "$1" != "$$" ] && [ "$1" != "$BASHPID" ] || return 1
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ] || return 1
	[ "/proc/$1/ns/net" -ef "/proc/$$/ns/net" ]
}

# Reads a pid file (libvirt writes them without a trailing newline: one read
# per file, never `cat a b`).
pid_of() {
	local p=""
	[ -f "$1" ] || return 1
	read -r p <"$1" || [ -n "$p" ] || return 1
	case $p in '' | *[!0-9]*) return 1 ;; esac
	echo "$p"
}

# Makes directory $1, which does not exist on the host, exist in this mount
# namespace only.  Its parent gets an overlay whose upper layer is a tmpfs
# (one mount), or, when the parent has mounts below it (an overlay would hide
# them) or overlayfs is unavailable, a tmpfs holding bind mounts of all the
# parent's entries.  Either way nothing is written to the host's disk.
made_dirs=" "
make_private_dir() {
	local d=$1 p n st e b mp
	p=$(dirname "$d") n=$(basename "$d")
	if [ ! -d "$p" ]; then make_private_dir "$p" || return; fi
	case $made_dirs in *" $p "*) mkdir "$d" && made_dirs+="$d "; return ;; esac
	st=$(mktemp -d /run/.gvm-stage.XXXXXX) || return
	mount -t tmpfs -o "mode=$(stat -c %a "$p")" gvm-sandbox "$st" || return
	local submounts=0
	while read -r _ _ _ _ mp _; do
		case $mp in "$p"/*) submounts=1 ;; esac
	done </proc/self/mountinfo
	if [ $submounts = 0 ] && mkdir "$st/upper" "$st/work" &&
		chown "$(stat -c %u:%g "$p")" "$st/upper" && chmod "$(stat -c %a "$p")" "$st/upper" &&
		mount -t overlay -o "lowerdir=$p,upperdir=$st/upper,workdir=$st/work" gvm-sandbox "$p" 2>/dev/null; then
		log "overlay on $p to add $n"
		umount -l "$st" # the overlay keeps its layers
		rmdir "$st"
		mkdir -- "$d" || return
		made_dirs+="$d "
		return 0
	fi
	log "shadowing $p with bind mounts to add $n"
	rm -rf "${st:?}"/upper "${st:?}"/work
	chown "$(stat -c %u:%g "$p")" "$st"
	for e in "$p"/* "$p"/.[!.]* "$p"/..?*; do
		[ -e "$e" ] || [ -L "$e" ] || continue
		b=${e##*/}
		if [ -L "$e" ]; then
			cp -P -- "$e" "$st/$b" || return
		elif [ -d "$e" ]; then
			mkdir -- "$st/$b" && mount --rbind -- "$e" "$st/$b" || return
		else
			: >"$st/$b" && mount --bind -- "$e" "$st/$b" || return
		fi
	done
	mkdir -- "$st/$n" || return
	mount --move "$st" "$p" || return
	rmdir "$st"
	made_dirs+="$d "
}

private_tmpfs() { # private_tmpfs DIR MODE
	[ -d "$1" ] || make_private_dir "$1" || fail "cannot create $1 in the sandbox"
	mount -t tmpfs -o "mode=$2,nosuid,nodev" gvm-sandbox "$1" || fail "cannot mount tmpfs on $1"
}

# A fresh sysfs, so /sys/class/net shows this network namespace.  The old
# /sys's submounts come back, except the cgroup hierarchies: without them
# libvirt leaves the host's cgroups alone.
remount_sys() {
	local st mps=() mp m keepit
	while read -r _ _ _ _ mp _; do
		case $mp in /sys/fs/cgroup | /sys/fs/cgroup/*) continue ;; /sys/*) mps+=("$mp") ;; esac
	done </proc/self/mountinfo
	st=$(mktemp -d /run/.gvm-stage.XXXXXX) || return 1
	mount --rbind /sys "$st" || { rmdir "$st"; return 1; }
	umount -R -l /sys 2>/dev/null || umount -l /sys
	if ! mount -t sysfs -o nosuid,nodev,noexec sysfs /sys; then
		say "warning: cannot mount a fresh sysfs; keeping the host's /sys"
		mount --move "$st" /sys && rmdir "$st"
		return 0
	fi
	for mp in "${mps[@]}"; do # top-most submounts only; --rbind brings the rest
		keepit=1
		for m in "${mps[@]}"; do
			case $mp in "$m"/*) keepit=0 ;; esac
		done
		[ $keepit = 1 ] && [ -d "$mp" ] && mount --rbind "$st${mp#/sys}" "$mp" 2>/dev/null
	done
	umount -R -l "$st" 2>/dev/null || umount -l "$st"
	rmdir "$st"
}

write_configs() { # into $1, the future /etc/libvirt
	cat >"$1/libvirtd.conf" <<EOF
# Written by tests/sandbox.sh: unix sockets only, no auth, no TCP/TLS.
unix_sock_group = "$group"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tls = 0
listen_tcp = 0
audit_level = 0
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
	cat >"$1/qemu.conf" <<'EOF'
# Written by tests/sandbox.sh: QEMU as root, no security driver, no
# ownership changes, no cgroups, no per-VM mount namespace.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "logd"
EOF
	cat >"$1/virtlogd.conf" <<'EOF'
# Written by tests/sandbox.sh
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
EOF
}

setup_mounts() {
	mount --make-rprivate / || fail "cannot make mounts private"
	if [ -n "$keep" ]; then
		mount --bind "$keep" /run || fail "cannot bind $keep onto /run"
	else
		mount -t tmpfs -o mode=0755,nosuid,nodev gvm-sandbox /run || fail "cannot mount tmpfs on /run"
	fi
	mkdir -p /run/lock && chmod 1777 /run/lock
	remount_sys || say "warning: /sys not remounted"
	private_tmpfs /var/lib/libvirt 0755
	private_tmpfs /var/cache/libvirt 0755
	private_tmpfs /var/log/libvirt 0700

	# /etc/libvirt: a tmpfs with our daemon configs; from the host only the
	# client configs and nwfilter definitions (never its domains, networks,
	# storage pools, secrets or hooks).
	local st e
	st=$(mktemp -d /run/.gvm-stage.XXXXXX) || fail "mktemp"
	mount -t tmpfs -o mode=0755 gvm-sandbox "$st" || fail "cannot mount tmpfs for /etc/libvirt"
	if [ -d /etc/libvirt ]; then
		for e in libvirt.conf libvirt-admin.conf nwfilter; do
			[ -e "/etc/libvirt/$e" ] && cp -a "/etc/libvirt/$e" "$st/"
		done
	else
		make_private_dir /etc/libvirt || fail "cannot create /etc/libvirt in the sandbox"
	fi
	mkdir -p "$st/qemu" "$st/storage"
	write_configs "$st"
	add_accounts "$st/.sandbox"
	mount --move "$st" /etc/libvirt || fail "cannot mount over /etc/libvirt"
	rmdir "$st"
	[ -f /etc/libvirt/.sandbox/passwd ] && { mount --bind /etc/libvirt/.sandbox/passwd /etc/passwd ||
		fail "cannot bind the sandbox's /etc/passwd"; }
	[ -f /etc/libvirt/.sandbox/group ] && { mount --bind /etc/libvirt/.sandbox/group /etc/group ||
		fail "cannot bind the sandbox's /etc/group"; }
	return 0
}

# libvirtd resolves its compiled-in QEMU user and group (Debian:
# libvirt-qemu) even when qemu.conf says root, and later tests want the
# libvirt and kvm groups: accounts that are missing on the host are added to
# copies of /etc/passwd and /etc/group in DIR, bind-mounted over the
# originals in this mount namespace only.
add_accounts() { # add_accounts DIR
	local dir=$1 g addg=() addu=() id
	for g in libvirt-qemu kvm libvirt; do
		getent group "$g" >/dev/null || addg+=("$g")
	done
	getent passwd libvirt-qemu >/dev/null || addu+=(libvirt-qemu)
	[ ${#addg[@]} = 0 ] && [ ${#addu[@]} = 0 ] && return 0
	{ mkdir -p "$dir" && cp /etc/group /etc/passwd "$dir/"; } || fail "cannot copy /etc/passwd, /etc/group"
	free_id() { # free_id FILE: a free id from 64055 upwards
		local i=64055
		while cut -d: -f3 "$1" | grep -qx "$i"; do i=$((i + 1)); done
		echo "$i"
	}
	for g in "${addg[@]}"; do
		id=$(free_id "$dir/group")
		echo "$g:x:$id:" >>"$dir/group"
	done
	if [ ${#addu[@]} -gt 0 ]; then
		id=$(free_id "$dir/passwd")
		g=$(getent -s files group libvirt-qemu 2>/dev/null | cut -d: -f3)
		[ -n "$g" ] || g=$(grep '^libvirt-qemu:' "$dir/group" | cut -d: -f3)
		echo "libvirt-qemu:x:$id:$g:Libvirt Qemu (sandbox):/var/lib/libvirt:/usr/sbin/nologin" >>"$dir/passwd"
	fi
	log "sandbox-only groups: ${addg[*]}; users: ${addu[*]}"
}

wait_gone() { # wait_gone SECONDS PID...: true when all are gone
	local t=$(($1 * 10)) p left
	shift
	while :; do
		left=0
		for p in "$@"; do ours "$p" && left=1; done
		[ "$left" = 0 ] && return 0
		[ "$t" -le 0 ] && return 1
		t=$((t - 1))
		sleep 0.1
	done
}

stop_pids() { # stop_pids WHAT PID...: TERM, then KILL
	local what=$1 p live=()
	shift
	for p in "$@"; do
		case " ${live[*]} " in *" $p "*) continue ;; esac
		ours "$p" && live+=("$p")
	done
	[ ${#live[@]} = 0 ] && return 0
	log "stopping $what: ${live[*]}"
	kill -TERM "${live[@]}" 2>/dev/null
	wait_gone 5 "${live[@]}" && return 0
	say "$what did not stop on SIGTERM; killing ${live[*]}"
	kill -KILL "${live[@]}" 2>/dev/null
	wait_gone 2 "${live[@]}"
}

cleaned=0
cleanup() {
	local rc=$? f p t others=() daemons=() left=() st
	trap '' INT TERM HUP USR1
	[ "$cleaned" = 1 ] && return
	cleaned=1
	[ -n "${cmd_pid:-}" ] && stop_pids "the command" "$cmd_pid"
	# Everything libvirtd wrote a pid file for (QEMU, dnsmasq, ...) first,
	# then libvirtd (also behind qemu/driver.pid) and virtlogd.
	while IFS= read -r f; do
		p=$(pid_of "$f") || continue
		case " $(pid_of /run/libvirtd.pid) $(pid_of /run/virtlogd.pid) " in
		*" $p "*) ;;
		*) others+=("$p") ;;
		esac
	done < <(find /run/libvirt -name '*.pid' 2>/dev/null)
	stop_pids "processes started by libvirtd" "${others[@]}"
	p=$(pid_of /run/libvirtd.pid) && daemons+=("$p")
	[ -n "${libvirtd_pid:-}" ] && daemons+=("$libvirtd_pid")
	stop_pids libvirtd "${daemons[@]}"
	daemons=()
	p=$(pid_of /run/virtlogd.pid) && daemons+=("$p")
	[ -n "${virtlogd_pid:-}" ] && daemons+=("$virtlogd_pid")
	stop_pids virtlogd "${daemons[@]}"
	# Anything else still in the sandbox (only builtins in this loop).
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		ours "$p" || continue
		read -r st 2>/dev/null <"/proc/$p/stat"
		st=${st#*(}
		say "leftover process $p (${st%)*}); killing it"
		left+=("$p")
	done
	[ ${#left[@]} -gt 0 ] && kill -KILL "${left[@]}" 2>/dev/null && ! wait_gone 2 "${left[@]}" && {
		say "could not stop: ${left[*]}"
		rc=125
	}
	if [ -n "$logs" ]; then
		cp -a /var/log/libvirt/. "$logs/" 2>/dev/null || say "could not copy logs to $logs"
	fi
	if [ -n "$qcache" ]; then # atomically, other sandboxes may read it now
		for f in /var/cache/libvirt/qemu/capabilities/*.xml; do
			[ -f "$f" ] || continue
			cmp -s "$f" "$qcache/${f##*/}" && continue
			t=$(mktemp "$qcache/.caps.XXXXXX") || continue
			if ! { cp -- "$f" "$t" && mv -f -- "$t" "$qcache/${f##*/}"; }; then rm -f -- "$t"; fi
		done
	fi
	if [ -n "$keep" ]; then
		# /run is $keep: empty it, unless something is still mounted below.
		if grep -q ' /run/' /proc/self/mountinfo; then
			say "mounts below /run remain; not emptying $keep"
		else
			find /run -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system -- {} + 2>/dev/null
		fi
	fi
	exit "$rc"
}

on_signal() { # on_signal NAME NUMBER
	trap '' INT TERM HUP USR1
	say "caught SIG$1; cleaning up"
	exit $((128 + $2))
}

start_daemons() {
	local t
	log "starting virtlogd"
	virtlogd -d -f /etc/libvirt/virtlogd.conf -p /run/virtlogd.pid ||
		fail "virtlogd did not start; $(tail -5 /var/log/libvirt/virtlogd.log 2>/dev/null)"
	virtlogd_pid=$(pid_of /run/virtlogd.pid)
	for ((t = 0; t < timeout * 10; t++)); do
		[ -S /run/libvirt/virtlogd-sock ] && break
		ours "$virtlogd_pid" || break
		sleep 0.1
	done
	[ -S /run/libvirt/virtlogd-sock ] || fail "virtlogd did not create its socket;" \
		"log: $(tail -5 /var/log/libvirt/virtlogd.log 2>/dev/null)"

	local caps=/var/cache/libvirt/qemu/capabilities f
	if [ -n "$qcache" ] && mkdir -p "$caps" && chmod 0700 "$caps"; then
		for f in "$qcache"/*.xml; do [ -f "$f" ] && cp -- "$f" "$caps/"; done
	fi
	log "starting libvirtd"
	libvirtd -d -f /etc/libvirt/libvirtd.conf -p /run/libvirtd.pid ||
		fail "libvirtd did not start; log: $(tail -5 /var/log/libvirt/libvirtd.log 2>/dev/null)"
	libvirtd_pid=$(pid_of /run/libvirtd.pid)
	for ((t = 0; t < timeout * 5; t++)); do
		virsh -q -c qemu:///system list >/dev/null 2>&1 && return 0
		ours "$libvirtd_pid" || break
		sleep 0.2
	done
	say "libvirtd did not answer on qemu:///system within ${timeout}s" \
		"(running: $(ours "$libvirtd_pid" && echo yes || echo no)); last lines of its log:"
	tail -15 /var/log/libvirt/libvirtd.log >&2 2>/dev/null
	exit 125
}

inner_main() {
	trap cleanup EXIT
	trap 'on_signal INT 2' INT
	trap 'on_signal TERM 15' TERM
	trap 'on_signal HUP 1' HUP
	trap 'on_signal INT 2' USR1 # SIGINT, forwarded by the outer part
	setup_mounts
	ip link set lo up || fail "cannot bring lo up"
	start_daemons

	export LIBVIRT_DEFAULT_URI=qemu:///system GVM_SANDBOX=1 GVM_SANDBOX_URI=qemu:///system
	unset GVM_SANDBOX_KEEP GVM_SANDBOX_OUTER_URI
	if [ -n "$keep" ]; then
		export GVM_SANDBOX_KEEP=$keep
		export GVM_SANDBOX_OUTER_URI="qemu:///system?socket=$keep/libvirt/libvirt-sock"
		printf '%s\n' "$GVM_SANDBOX_OUTER_URI" >/run/gvm-sandbox.uri.tmp &&
			mv /run/gvm-sandbox.uri.tmp /run/gvm-sandbox.uri
		say "libvirtd is ready; from outside use: virsh -c '$GVM_SANDBOX_OUTER_URI'"
	fi
	if [ $# = 0 ]; then
		if [ -n "$keep" ]; then
			say "no command: running until SIGINT/SIGTERM"
			set -- sleep infinity
		else
			set -- "${SHELL:-/bin/bash}"
		fi
	fi
	log "running: $*"
	# In the background, so that signals reach our traps at once; <&0 keeps
	# the command's stdin (a background job would get /dev/null).
	"$@" <&0 &
	cmd_pid=$!
	wait "$cmd_pid"
	local rc=$?
	cmd_pid=""
	exit "$rc"
}

if [ "$inner" = 1 ]; then
	inner_main "$@"
else
	outer_main "$@"
fi
