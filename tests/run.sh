#!/bin/bash
# Test driver for `make check`: runs the Check unit runner, then every
# tests/e2e/*.sh inside its own sandbox (tests/sandbox.sh).  Exit 77 from a
# test means "skipped" and is counted as such, never as a pass.  Ends with
# one summary line: "check: N passed, N failed, N skipped".
# Also verifies that the host's interfaces, firewall and /etc did not change.
set -u
cd "$(dirname "$0")/.."
build=build/$(uname -m) unit=0 sandbox=0 emu="" only="" san=0 fregress=0
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift ;;
	--unit) unit=1 ;;
	--sandbox) sandbox=1 ;;
	--all) unit=1; sandbox=1 ;;
	--emu) emu=$2; shift ;;
	--only) only=$2; shift ;;  # run only e2e tests whose name matches this glob
	--san) san=1 ;;  # sanitizer build: any ASan/UBSan/LSan report fails the run
	--fuzz-regress) fregress=1 ;;  # replay tests/fuzz/corpus only
	-h|--help) sed -n '2,6p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
export BUILD=$build TESTDATA=$PWD/tests/data TOP=$PWD
passed=0 failed=0 skipped=0 failures=()
# REPORT_DIR (env): the fault and load tests append RELIABILITY rows there,
# this script a RESULT row per test; tools/reliability.sh turns them into
# docs/RELIABILITY.md (make reliability).
if [ -n "${REPORT_DIR:-}" ]; then
	mkdir -p "$REPORT_DIR" && REPORT_DIR=$(cd "$REPORT_DIR" && pwd) && export REPORT_DIR
fi
report() { [ -z "${REPORT_DIR:-}" ] || echo "RESULT|$1|$2|${3:-}" >>"$REPORT_DIR/results.txt"; }

# ---- sanitizers and fuzz corpora (issue 9) ------------------------------
# --san: every instrumented process (unit runner, a daemon an e2e test runs
# in the background, its children) writes its report to a file under
# $build/san/ instead of a stderr nobody reads; after the run any such
# file is a failure.  LSan suppressions: tests/san/lsan.supp (third-party
# libraries' one-time allocations only).
# 05-units is skipped: its `make install` rebuilds into $BUILD without
# SAN=1 (overwriting the sanitizer objects), and it tests install paths.
san_dir="" san_skip=""
if [ $san = 1 ]; then
	san_skip="05-units"
	san_dir=$PWD/$build/san
	rm -rf "$san_dir" && mkdir -p "$san_dir" && chmod 1777 "$san_dir"
	# verify_asan_link_order=0: 80-usb and 81-usb-browser preload umockdev
	# ahead of the runtime (and drop log_path there: tests/san/umockdev.sh)
	export ASAN_OPTIONS="detect_leaks=1:exitcode=86:log_path=$san_dir/asan:strict_string_checks=1:verify_asan_link_order=0"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$san_dir/ubsan"
	export LSAN_OPTIONS="suppressions=$PWD/tests/san/lsan.supp:print_suppressions=0"
fi
# Each fuzz target once over its committed corpus (crash regressions); the
# binaries come from `make fuzz-build`.  Fast: a second or two in all.
fuzz_regress() {
	local t bin rc
	for bin in build/fuzz/fuzz_*; do
		[ -x "$bin" ] || continue
		t=$(basename "$bin")
		[ -d "tests/fuzz/corpus/$t" ] || continue
		if out=$("$bin" -runs=0 "tests/fuzz/corpus/$t" 2>&1); then
			echo "PASS fuzz-regress $t"; passed=$((passed + 1))
			report "fuzz-regress $t" PASS
		else
			rc=$?
			echo "$out" | tail -30
			echo "FAIL fuzz-regress $t (exit $rc)"
			report "fuzz-regress $t" FAIL "exit $rc"
			failed=$((failed + 1)); failures+=("fuzz-$t")
		fi
	done
}
if [ $fregress = 1 ]; then
	fuzz_regress
	echo "check: $passed passed, $failed failed, $skipped skipped"
	[ $failed = 0 ]; exit
fi
# ---- end sanitizers and fuzz corpora -------------------------------------

host_state() {
	ip -o link 2>/dev/null | sed 's/ state [A-Z]*//' | awk '{$1=""; print}' | sed -E 's/link\/ether [^ ]+//' | sort
	ip -o addr 2>/dev/null | awk '{$1=""; print}' | sort
	iptables-legacy-save 2>/dev/null | grep -v '^[#:]' | sed 's/\[[0-9:]*\]//'
	command -v nft >/dev/null && nft list ruleset 2>/dev/null
	ls /run/libvirt 2>/dev/null
}

stamp=$(mktemp /tmp/gvm-check-stamp.XXXXXX)
before=$(host_state)

if [ $unit = 1 ]; then
	echo "== unit tests ($build/unit-tests${emu:+ under $emu})"
	out=$(mktemp)
	$emu "$build/unit-tests" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+%: Checks: ' "$out" | tail -1)
	# Unit cases that cannot run here print "SKIP <what>: <why>" and are
	# not registered with Check: count them as skipped.
	uskip=$(grep -c '^SKIP ' "$out")
	skipped=$((skipped + uskip))
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "unit runner printed no summary (exit $rc)"
		failed=$((failed + 1)); failures+=(unit-runner)
	else
		n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
		f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
		e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
		passed=$((passed + n - f - e)); failed=$((failed + f + e))
		[ $((f + e)) -gt 0 ] && failures+=(unit)
		[ "$rc" != 0 ] && [ $((f + e)) = 0 ] && { failed=$((failed + 1)); failures+=(unit-exit-$rc); }
	fi
	[ -z "$emu" ] && [ $san = 0 ] && fuzz_regress
fi

if [ $sandbox = 1 ]; then
	for t in tests/e2e/*.sh; do
		[ -e "$t" ] || continue
		name=$(basename "$t" .sh)
		# shellcheck disable=SC2254
		if [ -n "$only" ]; then case "$name" in $only) ;; *) continue ;; esac; fi
		case " $san_skip " in *" $name "*) echo "SKIP $name: not under --san"; skipped=$((skipped + 1)); continue ;; esac
		echo "== e2e $name"
		if [ "$(id -u)" != 0 ]; then
			echo "SKIP $name: needs root for its network namespace (sudo make check)"
			skipped=$((skipped + 1)); continue
		fi
		start=$(date +%s)
		timeout --signal=TERM --kill-after=20 900 tests/sandbox.sh -- "$t"
		rc=$?
		dur=$(( $(date +%s) - start ))
		case $rc in
		0) echo "PASS $name (${dur}s)"; passed=$((passed + 1)) ;;
		77) echo "SKIP $name (${dur}s)"; skipped=$((skipped + 1)) ;;
		*) echo "FAIL $name (exit $rc, ${dur}s)"; failed=$((failed + 1)); failures+=("$name") ;;
		esac
		case $rc in 0) report "$name" PASS "${dur}s" ;; 77) report "$name" SKIP ;; *) report "$name" FAIL "exit $rc" ;; esac
	done
fi

after=$(host_state)
if [ "$before" != "$after" ]; then
	echo "FAIL host-safety: host interfaces/firewall changed during the run:"
	diff <(echo "$before") <(echo "$after") | head -20
	failed=$((failed + 1)); failures+=(host-safety)
fi
changed=$(find /etc -xdev -newer "$stamp" 2>/dev/null | head -5)
rm -f "$stamp"
if [ -n "$changed" ]; then
	echo "FAIL host-safety: files under /etc changed during the run:"; echo "$changed"
	failed=$((failed + 1)); failures+=(host-etc)
fi

# ---- sanitizer reports (--san) ----
if [ -n "$san_dir" ]; then
	reports=$(find "$san_dir" -type f -size +0 2>/dev/null)
	if [ -n "$reports" ]; then
		for r in $reports; do
			echo "FAIL sanitizer report $r:"; head -40 "$r"
		done
		failed=$((failed + 1)); failures+=(sanitizer-reports)
	else
		echo "PASS sanitizers: no ASan/UBSan/LSan report in $san_dir"
	fi
fi

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "check: $passed passed, $failed failed, $skipped skipped"
[ $failed = 0 ]
