"""The architecture holds: the import contracts in pyproject.toml (layers, registries, report), no import
cycle between peftbench modules, no module over 300 lines, and a tree of documented packages with at most
five loose modules beside them."""

import os
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).parents[1]
SOURCE = ROOT / "src" / "peftbench"
MAX_LINES = 300
MAX_LOOSE_MODULES = 5


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


def test_the_top_level_holds_packages_and_few_loose_modules():
    loose = sorted(path.name for path in SOURCE.glob("*.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, f"put these in the package of their concern: {loose}"


def test_every_package_says_what_lives_there():
    packages = [init.parent for init in SOURCE.rglob("__init__.py")]
    assert len(packages) > 1, f"no packages found under {SOURCE}"
    undocumented = sorted(
        str(package.relative_to(ROOT)) for package in packages if not _docstring(package / "__init__.py")
    )
    assert not undocumented, f"give these packages' __init__.py a docstring: {undocumented}"


def _docstring(path: Path) -> str | None:
    import ast

    return ast.get_docstring(ast.parse(path.read_text()))
