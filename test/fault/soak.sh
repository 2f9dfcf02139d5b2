#!/usr/bin/env bash
# soak.sh TEST [TOTAL [PER]]: runs the fault scenario TEST (e.g.
# TestWorkerKilled) TOTAL times (default 200), PER runs (default 20) to a
# `go test` invocation, each invocation on a fresh cluster. A failed run
# ends its invocation (its processes may be in any state); the soak goes on
# with the next one. It prints the runs, the failures and the log of every
# failed invocation. Logs go to $SOAK_LOGS (default: a new temporary
# directory); the logs of invocations without a failure are removed.
#
#   test/fault/soak.sh TestWorkerKilled 200 20
set -u
test=${1:?usage: soak.sh TEST [TOTAL [PER]]}
total=${2:-200}
per=${3:-20}
cd "$(dirname "$0")"
logs=${SOAK_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/cofactor-soak-XXXXXX")}
mkdir -p "$logs"
go test -tags fault -c -o "$logs/fault.test" . || exit 1

ran=0 failed=0 inv=0 start=$(date +%s)
while [ "$ran" -lt "$total" ]; do
  inv=$((inv + 1))
  n=$((total - ran < per ? total - ran : per))
  log="$logs/invocation-$inv.log"
  COFACTOR_FAULT_RUNS=$n "$logs/fault.test" -test.run "^${test}\$" -test.v -test.timeout 90m >"$log" 2>&1
  rc=$?
  # The scenario's tally: "RESULT <name>: P/R runs passed, ..."
  line=$(grep -o 'RESULT [^:]*: [0-9]*/[0-9]* runs passed' "$log" | tail -1)
  if [ -z "$line" ]; then
    echo "invocation $inv: no RESULT line (exit $rc); log kept: $log"
    failed=$((failed + 1)) ran=$((ran + 1))
    continue
  fi
  frac=${line##*: }
  frac=${frac%% *}
  p=${frac%/*} r=${frac#*/}
  ran=$((ran + r)) failed=$((failed + r - p))
  if [ "$p" -ne "$r" ] || [ "$rc" -ne 0 ]; then
    echo "invocation $inv: $p/$r passed (exit $rc); log kept: $log"
  else
    rm -f "$log"
  fi
  echo "SOAK progress: $ran runs, $failed failed, $(( $(date +%s) - start )) s"
done
rm -f "$logs/fault.test"
echo "SOAK $test: $ran runs, $failed failed, $(( $(date +%s) - start )) s; logs in $logs"
