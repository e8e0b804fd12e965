# shellcheck shell=bash
# Deploy-job helpers shared by the e2e tests that deploy through vmmod
# (40-deploy, 91-profiles, 97-faults-deploy).  Source it after defining
#   api METHOD PATH [BODY]  prints the status, the body in $d/out
#   field JQ                a field of $d/out
# and setting $timeout (seconds a job may take).

# jqe JQ-ARGS... FILE: jq -e on a file, false on an empty file (jq 1.6 -e
# passes on empty input, so an empty answer would pass a check)
jqe() { [ -s "${*: -1}" ] && jq -e "$@" >/dev/null; }

# wait_job ID STATE...: polls GET /api/jobs/ID until its state is one of
# STATE; says where the job stood when it gives up
wait_job() {
	local id=$1 st end=$((SECONDS + timeout))
	shift
	while [ $SECONDS -lt $end ]; do
		api GET "/api/jobs/$id" >/dev/null
		st=$(field .state)
		for w in "$@"; do [ "$st" = "$w" ] && return 0; done
		sleep 0.2
	done
	echo "     job $id: state '$st' phase '$(field .phase)' error '$(field .error)'"
	return 1
}

# create BODY: POST /api/vms/create, expects 202, sets $job (empty if not)
create() {
	job=""
	local got
	got=$(api POST /api/vms/create "$1")
	if [ "$got" = 202 ]; then job=$(field .id); else
		echo "     create -> $got: $(head -c 300 "$d/out")"
	fi
}
