"""The architecture holds: the import contracts in pyproject.toml (layers, registries, report), no import
cycle between peftbench modules, and no module over 300 lines."""

import os
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).parents[1]
SOURCE = ROOT / "src" / "peftbench"
MAX_LINES = 300


def test_import_contracts_hold():
    # In a child process: import-linter's in-process CLI swaps the interpreter's streams.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    checked = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_no_import_cycles():
    graph = grimp.build_graph("peftbench", cache_dir=None)
    cycles = sorted(
        " -> ".join((importer, *graph.find_shortest_chain(importer=imported, imported=importer)))
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert not cycles, "import cycles (a module importing itself through others):\n" + "\n".join(cycles)


def test_no_module_over_300_lines():
    lines = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in SOURCE.rglob("*.py")}
    assert lines, f"no modules found under {SOURCE}"
    too_long = {path: count for path, count in sorted(lines.items()) if count > MAX_LINES}
    assert not too_long, f"split these modules (at most {MAX_LINES} lines each): {too_long}"
