#!/bin/bash
# 71-netlink: installer/nl.c against a real kernel, inside the sandbox's own
# network namespace: the netlink suite of the unit runner registers its
# link-changing cases only there (create br0-like bridge + address + up,
# idempotent second call, an existing down bridge with a port, a non-bridge
# of that name, the default-route interface with two default routes).
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/71-netlink.sh
set -eu
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
unit=$top/${BUILD:-build/$(uname -m)}/unit-tests
case ${BUILD:-} in /*) unit=$BUILD/unit-tests ;; esac
[ -x "$unit" ] || { echo "SKIP: $unit not built (make check-unit)"; exit 77; }

out=$(CK_RUN_SUITE=netlink "$unit" 2>&1) || { echo "$out"; echo "FAIL netlink suite"; exit 1; }
echo "$out"
# 3 read-only + 4 sandbox cases: a smaller count means they were left out.
grep -q '^100%: Checks: 7, Failures: 0, Errors: 0' <<<"$out" ||
	{ echo "FAIL expected 7 passing netlink checks"; exit 1; }
links=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
[ "$links" = "lo " ] || { echo "FAIL links left behind: $links"; exit 1; }
echo "ok   netlink suite: 7 checks, nothing left behind"
