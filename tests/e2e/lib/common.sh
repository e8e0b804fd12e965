# shellcheck shell=bash
# What the e2e tests that source lib/deploy.sh or lib/console.sh start
# with (that is: 40-deploy, 50-console, 52-console-tls, 61-browser-console,
# 91-profiles, 97-faults-deploy, 98-faults-console).  Needs $top.  Sets
#   vmmod   the vmmod binary of $BUILD (build/<machine> by default)
#   fails   how many checks failed so far
# and defines the report lines (ok, bad, check, rel), the skips (need_tools,
# need_vmmod) and stop_vmmod / vmmod_log_if_failed for $vmmod_pid and
# $d/vmmod.log.

build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
vmmod_pid=""

fails=0 rfails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds, else FAIL
check() { if "${@:2}"; then ok "$1"; else bad "$1"; fi; }
# rel KIND FAULT WHAT-HAPPENED: a docs/RELIABILITY.md row for the test $me
# in $REPORT_DIR/reliability.txt (tools/reliability.sh); its result is FAIL
# when a check failed since the row before
rel() {
	local res=ok
	[ "$fails" = "$rfails" ] || res=FAIL
	rfails=$fails
	[ -z "${REPORT_DIR:-}" ] ||
		echo "RELIABILITY|$1|$2|$3|$me|$res" >>"$REPORT_DIR/reliability.txt"
}

# need_tools COMMAND...: skips the test (77) unless each COMMAND is found
need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
	done
}
# need_vmmod: fails the test unless vmmod is built
need_vmmod() { [ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }; }

# stop_vmmod [SIGNAL]: sends vmmod SIGNAL (TERM) and reaps it; $vmmod_pid
# is empty afterwards
stop_vmmod() {
	[ -n "$vmmod_pid" ] || return 0
	kill -"${1:-TERM}" "$vmmod_pid" 2>/dev/null
	wait "$vmmod_pid" 2>/dev/null
	vmmod_pid=""
}
# vmmod_log_if_failed: the end of vmmod's log once a check failed
vmmod_log_if_failed() {
	[ "$fails" != 0 ] && [ -f "$d/vmmod.log" ] || return 0
	echo "--- vmmod log (last 40 lines)"
	tail -40 "$d/vmmod.log"
}
