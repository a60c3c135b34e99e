#!/usr/bin/env bash
# Mutation testing of one rlmods module against its own test file (not run in CI).
#
#   tools/mutation.sh qvalue            # or probabilistic, actors, exploration, ...
#
# Copies the committed tree (HEAD) to a temporary folder, configures mutmut 3 there and runs
# it; prints mutmut's summary and leaves the copy for `mutmut results` / `mutmut show <id>`.
# Two settings keep torch usable under mutmut's forking runner (without them most mutants
# time out in a deadlock): mutmut's process_isolation = "forkserver" and single-threaded torch.
# The score reported in the book's closing notes is killed / (total - equivalent).
set -euo pipefail
module=${1:?usage: tools/mutation.sh <module>}
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
"$venv/bin/python" -c "import mutmut" 2>/dev/null || "$venv/bin/pip" install -q "mutmut==3.8.1"
copy=$(mktemp -d "/tmp/mutation_${module}_XXXX")
git -C "$root" archive HEAD | tar -x -C "$copy"
cd "$copy"
"$venv/bin/python" - "$module" <<'PY'
import re, sys
module = sys.argv[1]
text = open("pyproject.toml").read()
text = re.sub(r'testpaths = \[.*?\]', 'testpaths = ["tests"]', text)
text = re.sub(r'addopts = ".*?"', 'addopts = "-p no:cacheprovider -p no:nbval"', text)
text += f'''
[tool.mutmut]
source_paths = ["rlmods/"]
only_mutate = ["rlmods/{module}.py"]
pytest_add_cli_args_test_selection = ["tests/test_{module}.py"]
also_copy = ["tools/", "book/"]
process_isolation = "forkserver"
'''
open("pyproject.toml", "w").write(text)
PY
printf 'import torch\n\ntorch.set_num_threads(1)\n' > tests/conftest.py
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$venv/bin/mutmut" run --max-children 2 | tail -n 3
"$venv/bin/mutmut" results --all true | awk -F': ' '{print $2}' | sort | uniq -c
echo "copy with the results: $copy"
