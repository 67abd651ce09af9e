#!/usr/bin/env bash
# Runs every test file under Node (tsx) and under Deno, then prints one line: "N passed, N failed".
# Usage: test/run.sh [node|deno|all] [file...]
set -uo pipefail
cd "$(dirname "$0")/.."
which_runtimes=${1:-all}
shift || true
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/*.test.ts)
runtimes=()
[ "$which_runtimes" != deno ] && runtimes+=(node)
[ "$which_runtimes" != node ] && runtimes+=(deno)

# a file that hangs is stopped and counted as failed, so a run always ends with its summary line
FILE_TIMEOUT=${FILE_TIMEOUT:-600}
passed=0
failed=0
for rt in "${runtimes[@]}"; do
  for f in "${files[@]}"; do
    echo "=== $rt $f"
    if [ "$rt" = node ]; then
      out=$(NO_COLOR=1 timeout "$FILE_TIMEOUT" node --import tsx "$f" 2>&1); rc=$?
    else
      out=$(NO_COLOR=1 timeout "$FILE_TIMEOUT" npx --no-install deno run -A "$f" 2>&1); rc=$?
    fi
    printf '%s\n' "$out"
    # uvu's summary: "Total: N" and "Passed: N"
    total=$(printf '%s\n' "$out" | sed -n 's/.*Total: *\([0-9]*\).*/\1/p' | tail -1)
    ok=$(printf '%s\n' "$out" | sed -n 's/.*Passed: *\([0-9]*\).*/\1/p' | tail -1)
    total=${total:-0}; ok=${ok:-0}
    bad=$((total - ok))
    # a file that crashed or reported nothing counts as one failure
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    if [ "$total" -eq 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((passed + ok)); failed=$((failed + bad))
  done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
