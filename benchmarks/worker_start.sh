#!/usr/bin/env bash
# The 6-run grid twice in one go: workers forked from a warm server (the default), then every worker a
# fresh interpreter (PEFTBENCH_FRESH_WORKERS=1). Prints each run's time split line, wall time and the
# load average before and after; the results go to runs/benchmarks/worker-{forked,fresh}/.
#   bash benchmarks/worker_start.sh            (from the repository root, after scripts/setup.sh)
set -euo pipefail
peftbench=${PEFTBENCH:-.venv/bin/peftbench}
lscpu | grep -o -w -E 'avx512[a-z_0-9]*|amx[a-z_0-9]*|avx2|fma' | sort -u | tr '\n' ' '; echo
for mode in forked fresh; do
  fresh=0; [ "$mode" = fresh ] && fresh=1
  echo "== $mode workers; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s.%N)
  PEFTBENCH_FRESH_WORKERS=$fresh "$peftbench" run benchmarks/grid6.yaml --force \
    --set "name=worker-$mode" | grep -E '^time:|failed' || true
  end=$(date +%s.%N)
  echo "   wall $(echo "$end - $start" | bc) s; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
