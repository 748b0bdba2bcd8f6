"""The architecture holds: the import contracts in pyproject.toml (layers, registries, report), no import
cycle between peftbench modules, and no module over 300 lines."""

from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).parents[1]
SOURCE = ROOT / "src" / "peftbench"
MAX_LINES = 300


def test_import_contracts_hold(capsys):
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


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
