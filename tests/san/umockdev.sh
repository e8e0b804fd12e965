# Sourced by the e2e tests that run a sanitizer build under umockdev-run
# (80-usb, 81-usb-browser); does nothing outside `make check-asan`.
#
# With log_path in ASAN_OPTIONS, ASan's start-up creates the log's parent
# directories through mkdir(), before main and before any constructor of
# the preloaded libumockdev-preload.so has run; umockdev's mkdir wrapper
# then calls its not yet looked-up libc mkdir: a call through NULL, SIGSEGV
# before the program starts.  So such a program gets the options without
# log_path (san_env), its reports go to its stderr, which the test
# captures anyway, and san_keep copies a captured output holding a report
# into the directory tests/run.sh --san checks: it fails the run there like
# any other report (the test itself fails too when the program's exit
# status shows the error).

# the directory of run.sh's reports, "" without --san
san_log_dir=""
case ${ASAN_OPTIONS:-} in
*log_path=*)
	san_log_dir=$(sed -E 's/^(.*:)?log_path=([^:]*).*/\2/' <<<"$ASAN_OPTIONS")
	san_log_dir=${san_log_dir%/*}
	;;
esac

# env "${san_env[@]}" CMD...: CMD with the sanitizer options minus
# log_path (env execs CMD: $! of a background one is CMD's pid).
san_env=(
	"ASAN_OPTIONS=$(sed -E 's/(^|:)log_path=[^:]*//' <<<"${ASAN_OPTIONS:-}")"
	"UBSAN_OPTIONS=$(sed -E 's/(^|:)log_path=[^:]*//' <<<"${UBSAN_OPTIONS:-}")"
)

# san_keep FILE NAME: FILE (a captured stderr) from its first sanitizer
# line on, as NAME.PID in the report directory, if it holds a report.
san_keep() {
	local re='^==[0-9]+==(ERROR|WARNING): [A-Za-z]+Sanitizer|: runtime error: '
	[ -n "$san_log_dir" ] && [ -d "$san_log_dir" ] || return 0
	grep -qE "$re" "$1" 2>/dev/null || return 0
	awk -v re="$re" 'found || $0 ~ re { found = 1; print }' "$1" \
		>"$san_log_dir/$2.$$"
	echo "sanitizer report from $2: $san_log_dir/$2.$$"
}
