"""The report lists what the runs ran on once, and warns when the runs pooled in one row differ in it."""

from test_report_verdict import _row

from peftbench.report.collect import RunGroup
from peftbench.report.model import Report
from peftbench.report.provenance import provenance_lines, provenance_warnings
from peftbench.report.render import html, markdown

WEIGHTS = {"source": "local", "sha256": "a" * 64, "files": 1, "bytes": 3 * 2**20}


def _run(seed: int, cell: str = "lora", weights: dict = WEIGHTS, test_ids: str = "c" * 64) -> dict:
    return {
        "run": f"{cell}@seed{seed}",
        "cell": cell,
        "seed": seed,
        "environment": {
            "peftbench": "0.1.0",
            "peftbench_git": {"commit": "d" * 40, "dirty": False},
            "packages": {"torch": "2.13.0", "peft": "0.18.0"},
            "hardware": {"cpu": "AMD EPYC", "cpu_flags": ["avx2"]},
        },
        "model": {"fingerprint": weights},
        "data": {
            "fingerprint": {"source": "local", "files": {"dataset": {**WEIGHTS, "sha256": "b" * 64}}},
            "test_ids_sha256": test_ids,
        },
    }


def test_equal_pooled_runs_give_no_warning_and_one_listing():
    groups = [RunGroup("lora", [_run(1), _run(2)]), RunGroup("full", [_run(1, "full"), _run(2, "full")])]
    assert provenance_warnings(groups) == []
    lines = dict(provenance_lines(groups))
    assert lines["model weights"] == "local: sha256 aaaaaaaaaaaa (1 files, 3.0 MiB)"
    assert lines["peftbench"] == "0.1.0, commit dddddddddddd"
    assert lines["hardware"] == "AMD EPYC (flags: avx2)"
    assert lines["test split"] == "ids sha256 cccccccccccc"
    assert lines["data files"] == "dataset: sha256 bbbbbbbbbbbb (1 files, 3.0 MiB)"
    assert lines["packages"] == "torch 2.13.0, peft 0.18.0"


def test_pooled_runs_with_other_weights_are_warned_about_naming_the_seeds():
    other = {**WEIGHTS, "sha256": "e" * 64}
    groups = [RunGroup("lora", [_run(1), _run(2, weights=other)]), RunGroup("full", [_run(1, "full")])]
    warnings = provenance_warnings(groups)
    assert len(warnings) == 1
    assert warnings[0].startswith("lora: the runs pooled in this row differ in model weights (seed 1: local")
    assert "seed 2: local: sha256 eeeeeeeeeeee" in warnings[0]
    listed = dict(provenance_lines(groups))["model weights"]
    assert listed.startswith("differs across runs: ") and "(full, lora)" in listed and "(lora)" in listed


def test_each_field_is_compared_and_unrecorded_fields_are_left_out():
    dirty = _run(2)
    dirty["environment"]["peftbench_git"] = {"commit": "d" * 40, "dirty": True}
    assert "differ in peftbench" in provenance_warnings([RunGroup("lora", [_run(1), dirty])])[0]
    other_split = _run(2, test_ids="f" * 64)
    assert "differ in test split" in provenance_warnings([RunGroup("lora", [_run(1), other_split])])[0]
    older = {"run": "lora@seed3", "cell": "lora", "seed": 3, "environment": {}, "model": {}, "data": {}}
    assert provenance_warnings([RunGroup("lora", [_run(1), older])]) == []


def test_the_listing_is_rendered_once_in_markdown_and_html():
    lines = provenance_lines([RunGroup("lora", [_run(1)])])
    rows = [_row("full", 0.9), _row("lora", 0.85)]
    report = Report("t", "classification", "full", ["accuracy"], rows, [], [], provenance=lines)
    text = markdown(report, {})
    assert text.count("## Provenance") == 1 and "- **model weights**: local: sha256 aaaaaaaaaaaa" in text
    page = html(report)
    assert page.count("<h2>Provenance</h2>") == 1 and "<strong>test split</strong>" in page
