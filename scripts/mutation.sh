#!/usr/bin/env bash
# Mutation testing of one module with mutmut 3: scripts/mutation.sh stats|measure|text_metrics|data|splits|generation
# or scripts/mutation.sh src/peftbench/<file>.py tests/test_<x>.py [more test files].
# Runs in a scratch copy (mutmut writes mutants/ next to pyproject.toml), one worker, one thread:
# the [tool.mutmut] keys only_mutate and pytest_add_cli_args_test_selection are set for that module.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:?usage: scripts/mutation.sh MODULE | SOURCE.py TEST.py...}" in
  stats) source=src/peftbench/metrics/stats.py tests=(tests/test_stats.py) ;;
  measure) source=src/peftbench/measure/measure.py tests=(tests/test_measure.py) ;;
  text_metrics) source=src/peftbench/metrics/text_metrics.py tests=(tests/test_text_metrics.py) ;;
  data) source=src/peftbench/data/data.py tests=(tests/test_data.py tests/test_data_faults.py) ;;
  splits) source=src/peftbench/data/splits.py tests=(tests/test_data.py tests/test_data_faults.py) ;;
  generation) source=src/peftbench/tasks/generation.py tests=(tests/test_tasks_generation.py) ;;
  *.py) source=$1 tests=("${@:2}") ;;
  *) echo "unknown module '$1': use stats, measure, text_metrics, data, splits, generation or SOURCE.py TEST.py" >&2; exit 2 ;;
esac
scratch="${MUTATION_DIR:-${TMPDIR:-/tmp}/peftbench-mutation-$(basename "$source" .py)}"
rm -rf "$scratch" && mkdir -p "$scratch"
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$scratch"
python=${PYTHON:-$root/.venv/bin/python}
"$python" - "$scratch/pyproject.toml" "$source" "${tests[@]}" <<'PY'
import json, re, sys
path, source, tests = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(path).read()
text = re.sub(r"(?m)^only_mutate = .*$", "only_mutate = " + json.dumps([source]), text)
text = re.sub(r"(?m)^pytest_add_cli_args_test_selection = .*$",
              "pytest_add_cli_args_test_selection = " + json.dumps(tests), text)
open(path, "w").write(text)
PY
cd "$scratch"
export OMP_NUM_THREADS=1 PYTHONPATH="$scratch/src"
"$python" -m mutmut run --max-children "${MUTATION_CHILDREN:-1}" >mutmut-run.log 2>&1 || { tail -20 mutmut-run.log; exit 1; }
"$python" -m mutmut results --all true >results.txt 2>&1 || "$python" -m mutmut results >results.txt 2>&1
for state in killed survived "no tests" timeout suspicious skipped "segfault" "not checked"; do
  count=$(grep -c ": $state\$" results.txt || true)
  [ "$count" = 0 ] || echo "$state: $count"
done
echo "survivors: $scratch/results.txt (mutmut show <name> in $scratch shows the diff)"
