#!/bin/bash
# tools/reliability.sh REPORT_DIR [FUZZ_DIR]: writes docs/RELIABILITY.md
# (to stdout) from what a test run left in REPORT_DIR:
#   reliability.txt  "RELIABILITY|kind|fault, load or input|what happened|test|ok or FAIL"
#                    rows the fault and load tests (95-load, 96-98-faults-*)
#                    write with their measured figures;
#   results.txt      "RESULT|test|PASS, FAIL or SKIP|detail" rows tests/run.sh
#                    writes for every e2e test and fuzz corpus it ran.
# Tests that write no rows of their own (25-valgrind-api, the fuzz corpus
# replays) get one row from their RESULT, described below; a fuzz target's
# row also quotes its latest `make fuzz` log in FUZZ_DIR (default
# build/fuzz) when there is one.  `make reliability` runs the tests and this.
# shellcheck disable=SC2016 # backquotes in printf formats are markdown
set -u
dir=${1:?usage: tools/reliability.sh REPORT_DIR [FUZZ_DIR]}
fuzz_dir=${2:-build/fuzz}
rows=$dir/reliability.txt results=$dir/results.txt
[ -s "$rows" ] || [ -s "$results" ] || { echo "reliability.sh: nothing in $dir" >&2; exit 1; }
touch "$rows" "$results"

# cell TEXT: safe inside a markdown table cell
cell() { printf '%s' "${1//|/\\|}"; }
# result TEST: PASS, FAIL, SKIP or "not run" from results.txt (last run)
result() { awk -F'|' -v t="$1" '$2 == t { r = $3 } END { print (r == "" ? "not run" : r) }' "$results"; }

fuzz_what() {
	case $1 in
	fuzz_api) echo "HTTP requests: route, percent-decoded path, query, JSON body" ;;
	fuzz_catalog) echo "template catalog files (templates/ID.json)" ;;
	fuzz_conf) echo "vmmod.conf text (parse, dump, parse again)" ;;
	fuzz_console) echo "console websocket frames and messages (wslay + console_msg_parse)" ;;
	fuzz_domparse) echo "libvirt domain XML read back (facts, disks, USB device tree)" ;;
	fuzz_domxml) echo "VM specs turned into domain XML" ;;
	fuzz_devices) echo "USB/PCI device-tree readers (known-USB file, hostdev XML, a fake sysfs)" ;;
	fuzz_leases) echo "dnsmasq lease files and reservation files" ;;
	*) echo "$1 inputs" ;;
	esac
}

when=$(date -u -r "$results" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- vmmod common tests tools 2>/dev/null || commit="$commit with uncommitted changes"
cat <<EOF
# Reliability

What vmmod did under faults, load and hostile input, one row per case.
**Generated** by \`make reliability\` (tools/reliability.sh) from the rows the
tests wrote during the run of $when (commit $commit, $(uname -m), $(nproc) CPUs,
sandbox libvirtd, TCG guests); do not edit by hand, run it again.  The
figures are that run's measurements.  "Result" is the test's own verdict for
that row (PASS, or FAIL when one of the checks behind it failed).

EOF

section() { # section KIND TITLE
	local kind=$1 n
	n=$(awk -F'|' -v k="$kind" '$1 == "RELIABILITY" && $2 == k' "$rows" | wc -l)
	[ "$n" -gt 0 ] || [ "$kind" = input ] || return 0
	printf '## %s\n\n| %s | What happened | Shown by | Result |\n| --- | --- | --- | --- |\n' "$2" "$3"
	# by test (a test re-run alone appends its rows), each test's in order
	awk -F'|' -v k="$kind" '$1 == "RELIABILITY" && $2 == k' "$rows" | sort -s -t'|' -k5,5 |
		while IFS='|' read -r _ _ what happened test res; do
			printf '| %s | %s | `tests/e2e/%s.sh` | %s |\n' "$(cell "$what")" "$(cell "$happened")" "$test" "${res/#ok/PASS}"
		done
}

section fault Faults Fault
echo
section load Load Load
echo

# ---- hostile input: valgrind and the fuzz corpora (no rows of their own)
printf '## Hostile input and memory safety\n\n| Input | What happened | Shown by | Result |\n| --- | --- | --- | --- |\n'
awk -F'|' -v k=input '$1 == "RELIABILITY" && $2 == k' "$rows" |
	while IFS='|' read -r _ _ what happened test res; do
		printf '| %s | %s | `tests/e2e/%s.sh` | %s |\n' "$(cell "$what")" "$(cell "$happened")" "$test" "${res/#ok/PASS}"
	done
r=$(result 25-valgrind-api)
case $r in
PASS) h="valgrind memcheck: no invalid access, no definite leak; vmmod exited 0 on SIGTERM" ;;
FAIL) h="valgrind reported errors or leaks (see the run's log)" ;;
*) h="not measured in this run" ;;
esac
printf '| %s | %s | `tests/e2e/25-valgrind-api.sh` | %s |\n' \
	"vmmod under valgrind through an API battery: status, list, start, stop, SSE, hostile names, malformed JSON and requests" \
	"$h" "$r"
for f in tests/fuzz/fuzz_*.c; do
	t=$(basename "$f" .c)
	r=$(result "fuzz-regress $t")
	n=$(find "tests/fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
	case $r in
	PASS) h="its $n committed corpus files replayed under ASan + UBSan: no crash, no report" ;;
	FAIL) h="a corpus file crashed the target (see the run's log)" ;;
	*) h="corpus not replayed in this run" ;;
	esac
	log=$fuzz_dir/$t.log
	if [ -f "$log" ]; then
		runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -1)
		if [ -n "$runs" ] && ! grep -qE '^(==[0-9]+==ERROR|SUMMARY: )' "$log"; then
			h="$h; latest \`make fuzz\` ($(date -u -r "$log" '+%Y-%m-%d')): $runs, clean"
		elif grep -qE '^(==[0-9]+==ERROR|SUMMARY: )' "$log"; then
			h="$h; latest \`make fuzz\` ($(date -u -r "$log" '+%Y-%m-%d')) found a crash"
		fi
	fi
	printf '| %s | %s | `tests/fuzz/%s.c` (`make fuzz-regress`) | %s |\n' "fuzzed $(fuzz_what "$t")" "$(cell "$h")" "$t" "$r"
done
echo
echo "Tests of this run without rows above: $(awk -F'|' '$1 == "RESULT" { print $2 " " $3 }' "$results" |
	grep -v '^fuzz-regress' | grep -vE '^(25-valgrind-api|95-load|9[6-8]-faults-[a-z]*) ' |
	sed 's/ /: /' | paste -sd, - | sed 's/,/, /g' | sed 's/^$/none/')."
