"""Every table the CLI prints, at 80 to 200 columns: each number and name whole, no `…`, no line wider
than the terminal; --json parses and --csv has a header and the same rows. A Llama-3.2-1B-shaped config
(its real dimensions, no weights: inspect reads shapes only) gives ten-digit counts."""

import csv
import importlib
import io
import json

import pytest
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.report.compare import rich_table
from peftbench.results import results, run_folder
from peftbench.results.tables import Column, FitTable, bytes_short, count_short, mib

runner = CliRunner()
WIDTHS = (80, 200)
cli_app = importlib.import_module("peftbench.cli.app")  # the module; `peftbench.cli.app` is the Typer app
LLAMA_METHODS = ("full", "freeze:frozen_layers=8", "lora", "bitfit")


def _llama_1b_total() -> int:
    """Llama-3.2-1B's parameters from its published shapes (tied embeddings), plus a 2-class score head."""
    hidden, inter, vocab, layers, kv = 2048, 8192, 128256, 16, 512
    block = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * inter + 2 * hidden
    return vocab * hidden + layers * block + hidden + hidden * 2


@pytest.fixture(scope="module")
def llama_1b(tmp_path_factory):
    from transformers import LlamaConfig

    folder = tmp_path_factory.mktemp("llama-3.2-1b")
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0}
    rope |= {"high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    LlamaConfig(
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        max_position_embeddings=131072,
        tie_word_embeddings=True,
        bos_token_id=128000,
        eos_token_id=128001,
        rope_parameters=rope,
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def llama_found(llama_1b):
    """inspect's estimate for four methods on the 1B model, computed once for every width."""
    from peftbench.cli.efficiency import _inspect_all
    from peftbench.efficiency.probe_setup import from_flags

    return _inspect_all(from_flags(str(llama_1b), "classification", list(LLAMA_METHODS)), "fp32")


@pytest.fixture
def width(request, monkeypatch):
    monkeypatch.setattr(cli_app.console, "width", request.param)
    return request.param


def assert_whole(output: str, width: int, expected: list[str]) -> None:
    """No line wider than the terminal, no ellipsis, and every expected string unbroken on one line."""
    lines = output.splitlines()
    assert max(cell_len(line) for line in lines) <= width, output
    assert "…" not in output, output
    missing = [text for text in expected if not any(text in line for line in lines)]
    assert not missing, f"not whole at {width} columns: {missing}\n{output}"


def _render(renderable, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def _inspection_cells(found) -> list[str]:
    cells = []
    for row in found:
        memory = (row.memory.weights, row.memory.gradients, row.memory.optimizer, row.memory.activations)
        cells += [f"{row.total_params:,}", f"{row.trainable_params:,}", *row.label.split(), row.artifact]
        cells += [mib(v) for v in (row.artifact_bytes, *memory, row.memory.total)]
    return cells + ["gradients", "activations", "optimizer", "training"]


def test_llama_1b_counts_match_its_published_shapes(llama_found):
    by_method = {row.method: row for row in llama_found}
    assert by_method["full"].total_params == _llama_1b_total() == 1_235_818_496
    assert by_method["full"].trainable_params == by_method["full"].total_params
    # LoRA's default, r=8 on q_proj and v_proj: per layer 8 x (2048 + 2048) and 8 x (2048 + 512)
    assert by_method["lora"].trainable_params == 16 * 8 * (2048 + 2048 + 2048 + 512) + 2048 * 2


@pytest.mark.parametrize("width", [80, 120, 150, 200], indirect=True)
def test_inspect_prints_every_number_and_name_whole(llama_1b, llama_found, width, monkeypatch):
    monkeypatch.setattr("peftbench.cli.efficiency._inspect_all", lambda setup, precision: llama_found)
    arguments = ["inspect", "--model", str(llama_1b), *(f"--method={m}" for m in LLAMA_METHODS)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert_whole(result.output, width, _inspection_cells(llama_found))
    assert result.output.count("MiB") >= 6  # every header whole: six columns are in MiB


def test_inspect_in_shorter_units_between_the_table_and_the_blocks(llama_1b, llama_found):
    from peftbench.efficiency.probe_setup import from_flags
    from peftbench.efficiency.tables import inspection_table

    table = inspection_table(from_flags(str(llama_1b), "classification", ["full"]), llama_found)
    output = _render(table, 135)
    assert "1,235,818,496" not in output  # the full figures do not fit 135 columns, the shorter units do
    assert_whole(output, 135, ["1.24 B", "487 M", "856 K", "4,096", "4.6 GiB", "26.7 GiB", "16 KiB"])


def test_inspect_json_and_csv_carry_the_same_rows(llama_1b, llama_found, monkeypatch):
    monkeypatch.setattr("peftbench.cli.efficiency._inspect_all", lambda setup, precision: llama_found)
    arguments = ["inspect", "--model", str(llama_1b), *(f"--method={m}" for m in LLAMA_METHODS)]
    as_json = runner.invoke(app, [*arguments, "--json", "-"])
    as_csv = runner.invoke(app, [*arguments, "--csv", "-"])
    assert as_json.exit_code == as_csv.exit_code == 0, as_json.output + as_csv.output
    payload = json.loads(as_json.stdout)  # nothing else on stdout: no table, no markup
    records = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert (
        [r["label"] for r in records]
        == [m["label"] for m in payload["methods"]]
        == [r.label for r in llama_found]
    )
    for record, method in zip(records, payload["methods"], strict=True):
        assert int(record["total_params"]) == method["total_params"]
        assert int(record["memory.total"]) == method["memory"]["total"]
    assert payload["methods"][0]["total_params"] == 1_235_818_496
    both = runner.invoke(app, [*arguments, "--json", "-", "--csv", "-"])
    assert both.exit_code == 2 and "both write to stdout" in both.output


@pytest.mark.parametrize("width", WIDTHS, indirect=True)
def test_probe_batch_prints_whole_numbers(llama_1b, width):
    arguments = ["probe-batch", "--model", str(llama_1b), "--method", "lora", "--method", "full"]
    result = runner.invoke(app, [*arguments, "--memory-budget", "64", "--limit", "8", "--seq-len", "16"])
    assert result.exit_code == 0, result.output
    assert_whole(result.output, width, ["lora", "full", "largest", "memory"])
    as_json = runner.invoke(app, [*arguments, "--memory-budget", "64", "--limit", "8", "--json", "-"])
    probes = json.loads(as_json.stdout)["methods"]
    assert [p["method"] for p in probes] == ["lora", "full"] and all(
        p["memory_bytes"] > 2**30 for p in probes
    )


def _write_run(root, name: str, method: str, trainable: int, accuracy: float) -> None:
    folder = root / name
    results.write_json(
        folder / results.RESULT_FILE,
        {
            "run": name,
            "cell": name,
            "method": {"name": method, "options": {}},
            "kind": "method",
            "task": "classification",
            "seed": 1,
            "training": {"learning_rate": 1e-4, "epochs": 1.0},
            "learning_rates": {"body": 1e-4, "head": 1e-4},
            "metrics": {"test": {"accuracy": accuracy, "f1_macro": accuracy - 0.05}},
            "efficiency": {
                "trainable_params": trainable,
                "trainable_percent": 100 * trainable / 1_235_818_496,
                "artifact_bytes": trainable * 4,
                "train_seconds": 12_345.678,
                "peak_rss_above_start_bytes": 23_456 * 2**20,
            },
            "data": {"data_fraction": 1.0, "sizes": {"test": 379}},
        },
    )
    run_folder.write_status(folder, "complete", config_hash="h")


@pytest.fixture
def llama_runs(tmp_path):
    for name, method, trainable, accuracy in (
        ("full", "full", 1_235_818_496, 0.91),
        ("freeze_frozen_layers_8", "freeze", 486_578_176, 0.9),
        ("lora_r16_all_linear", "lora", 11_276_288, 0.89),
    ):
        _write_run(tmp_path, name, method, trainable, accuracy)
    run_folder.write_current(
        tmp_path, dict.fromkeys(("full", "freeze_frozen_layers_8", "lora_r16_all_linear"), "h")
    )
    return tmp_path


COMPARE_CELLS = ["full", "freeze_frozen_layers_8", "lora_r16_all_linear", "1,235,818,496", "486,578,176"]
COMPARE_CELLS += ["11,276,288", "0.9100", "-0.0200", "4,714", "12,346", "23,456"]


@pytest.mark.parametrize("width", WIDTHS, indirect=True)
def test_compare_prints_every_number_and_name_whole(llama_runs, width):
    result = runner.invoke(app, ["compare", str(llama_runs)])
    assert result.exit_code == 0, result.output
    assert_whole(result.output, width, COMPARE_CELLS)


def test_compare_json_and_csv_carry_the_same_rows(llama_runs):
    as_json = runner.invoke(app, ["compare", str(llama_runs), "--json", "-"])
    as_csv = runner.invoke(app, ["compare", str(llama_runs), "--csv", "-"])
    assert as_json.exit_code == as_csv.exit_code == 0, as_json.output + as_csv.output
    payload = json.loads(as_json.stdout)
    records = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(records[0]) == payload["columns"]
    assert [r["run"] for r in records] == [r["run"] for r in payload["rows"]]
    full = payload["rows"][[r["run"] for r in payload["rows"]].index("full")]
    assert full["trainable_params"] == 1_235_818_496 and full["train_seconds"] == 12_345.678


@pytest.mark.parametrize("width", WIDTHS, indirect=True)
def test_methods_prints_every_name_whole(width):
    from peftbench.methods import METHODS

    result = runner.invoke(app, ["methods"])
    assert result.exit_code == 0, result.output
    assert_whole(result.output, width, [*METHODS, "classification", "causal_lm", "generation"])


def test_methods_json_and_csv_carry_the_same_rows():
    payload = json.loads(runner.invoke(app, ["methods", "--json", "-"]).stdout)
    records = list(csv.DictReader(io.StringIO(runner.invoke(app, ["methods", "--csv", "-"]).stdout)))
    assert [r["name"] for r in records] == [r["name"] for r in payload["tasks"] + payload["methods"]]
    assert {"full", "lora", "bitfit"} <= {r["name"] for r in payload["methods"]}


def _inference_report() -> dict:
    variant = {
        "batch_latency_ms_median": 12_345.6789,
        "batch_latency_ms_iqr": [12_001.25, 13_456.75],
        "examples_per_second": 1_234_567.891,
        "weights_bytes": 4_943_257_600,
        "peak_memory_bytes": 29_000_000_000,
        "peak_memory_kind": "process peak RSS",
    }
    merge = {"match": True, "max_abs_logit_difference": 1e-6, "tolerance": {"atol": 1e-4, "rtol": 1e-4}}
    return {
        "run": "runs/llama-3.2-1b/lora_r16_all_linear",
        "device": "cpu",
        "precision": "fp32",
        "variants": [{"variant": v, **variant} for v in ("base", "base + adapter", "merged")],
        "merge": merge | {"compared_on": "4 test examples"},
        "timed_passes": 5,
        "samples": 64,
        "warmup_passes": 1,
    }


@pytest.mark.parametrize("width", WIDTHS, indirect=True)
def test_bench_inference_prints_whole_numbers(tmp_path, width, monkeypatch):
    monkeypatch.setattr("peftbench.efficiency.bench.run_benchmark", lambda *a: _inference_report())
    result = runner.invoke(app, ["bench-inference", str(tmp_path)])
    assert result.exit_code == 0, result.output
    expected = ["12,345.7", "12,001.2–13,456.8", "1,234,567.9", "4,714.3", "27,656.6", "base", "merged"]
    assert_whole(result.output, width, [*expected, "adapter"])
    as_json = runner.invoke(app, ["bench-inference", str(tmp_path), "--json", "-"])
    assert json.loads(as_json.stdout)["variants"][0]["examples_per_second"] == 1_234_567.891
    records = list(
        csv.DictReader(
            io.StringIO(runner.invoke(app, ["bench-inference", str(tmp_path), "--csv", "-"]).stdout)
        )
    )
    assert [r["variant"] for r in records] == ["base", "base + adapter", "merged"]


@pytest.mark.parametrize("width", [80, 100, 150, 200])
def test_the_run_comparison_table_fits_every_width(width):
    """The table `run` and `train` print at the end (compare.rich_table), with every column compare shows."""
    from peftbench.report.compare import columns

    names = columns(["accuracy", "f1_macro"])
    row = {"run": "freeze_frozen_layers_8", "method": "freeze", "accuracy": 0.9, "f1_macro": 0.85}
    row |= {"delta_accuracy": -0.02, "delta_f1_macro": -0.025, "trainable_params": 486_578_176.0}
    row |= {"trainable_percent": 39.4, "fewer_trainable_x": 2.54, "artifact_mb": 1_946.3}
    row |= {"train_seconds": 12_345.6, "peak_rss_above_start_mb": 23_456.0}
    output = _render(rich_table([row], names, "full"), width)
    expected = ["freeze_frozen_layers_8", "0.9000", "-0.0200", "-0.0250", "39.4", "2.54", "1,946", "12,346"]
    assert_whole(output, width, [*expected, "23,456", "486,578,176"])


def test_short_units_read_as_their_values():
    assert [count_short(v) for v in (1_235_818_496, 486_578_176, 856_064, 9_999, 999_700_000)] == [
        "1.24 B",
        "487 M",
        "856 K",
        "9,999",
        "1 B",
    ]
    assert [bytes_short(v) for v in (4_943_257_600, 16_384, 500, None)] == ["4.6 GiB", "16 KiB", "500 B", "–"]
    assert mib(16_384) == "0.016" and mib(0) == "0.0" and mib(4_943_257_600) == "4,714.3"


def test_a_table_too_wide_for_the_terminal_becomes_one_block_per_row():
    columns = [Column("name", ["a long run name"], name=True)]
    columns += [Column(f"column {i}", [f"{10**12 + i:,}"]) for i in range(8)]
    output = _render(FitTable(columns), 80)
    assert_whole(output, 80, ["a long run name", *(f"{10**12 + i:,}" for i in range(8))])
    assert output.count("1,000,000,000,00") == 8 and "column 7" in output


def test_the_console_is_as_wide_as_columns_says_and_150_in_a_pipe(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert cli_app._console().width == 80  # was at least 150 whatever the terminal, so lines overflowed it
    monkeypatch.delenv("COLUMNS")
    assert cli_app._console().width == 150  # under pytest stdout is not a terminal
