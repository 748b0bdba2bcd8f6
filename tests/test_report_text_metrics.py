"""The report's paired bootstrap over prompts for every text metric (NIST and CIDEr included)."""

import json

import numpy as np
import pytest

from peftbench.metrics.text_metrics import TEXT_METRICS, cider_segments, meteor_unavailable, text_metrics
from peftbench.report.collect import RunGroup, paired_test
from peftbench.report.summary import headline_metrics, paired_text_tests
from peftbench.report.tables import paired_text_notes

REFERENCES = [
    ["The Vaults is a cheap pub near Café Adriatic.", "Near Café Adriatic, The Vaults pub is cheap."],
    ["Alimentum serves Italian food in the city centre."],
    [
        "The Eagle is a family-friendly coffee shop.",
        "A coffee shop, The Eagle, is family friendly.",
        "Eagle.",
    ],
    ["Green Man is a high-priced restaurant by the river."],
    ["Zizzi is a 5 star pub.", "Zizzi pub has a rating of 5 out of 5."],
    ["Strada is an English restaurant with low prices near the Rainbow Vegetarian Café."],
]
RUN = [
    "The Vaults is a cheap pub near Café Adriatic.",
    "Alimentum serves Italian food.",
    "The Eagle is a coffee shop that is family-friendly.",
    "Green Man is a restaurant by the river.",
    "Zizzi is a pub with a 5 star rating.",
    "Strada is a cheap English restaurant near the Rainbow Vegetarian Café.",
]
REFERENCE_RUN = [
    "The Vaults is a pub.",
    "Alimentum.",
    "The Eagle.",
    "Green Man.",
    "Zizzi.",
    "Strada is a restaurant.",
]


def _cell(root, name: str, texts: list[str], seeds=(0,)) -> RunGroup:
    runs = []
    for seed in seeds:
        folder = root / f"{name}@seed{seed}"
        folder.mkdir()
        rows = [
            {"index": i, "references": r, "generated": t}
            for i, (r, t) in enumerate(zip(REFERENCES, texts, strict=True))
        ]
        (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        decoding = {"report_metrics": ["bleu", "nist", "meteor", "rougeL", "cider"]}
        runs.append({"seed": seed, "_dir": str(folder), "method": {"name": name}, "decoding": decoding})
    return RunGroup(name, runs)


def _metrics():
    return [m for m in TEXT_METRICS if m != "meteor" or meteor_unavailable() is None]


def test_each_text_metric_is_resampled_over_prompts_and_equals_the_tables_value(tmp_path):
    mine, theirs = _cell(tmp_path, "lora", RUN), _cell(tmp_path, "full", REFERENCE_RUN)
    table, reference_table = text_metrics(RUN, REFERENCES)[0], text_metrics(REFERENCE_RUN, REFERENCES)[0]
    for metric in _metrics():
        test = paired_test(mine, theirs, "generation", metric)
        assert test["metric"] == metric and test["test"].startswith("paired bootstrap over 6 prompts")
        assert test[metric] == pytest.approx(table[metric], rel=1e-9)
        assert test[f"reference_{metric}"] == pytest.approx(reference_table[metric], rel=1e-9)
        assert test["difference"] == pytest.approx(table[metric] - reference_table[metric], rel=1e-9)
        assert test["ci95_low"] <= test["difference"] <= test["ci95_high"]


def test_cider_bootstrap_equals_a_bootstrap_by_hand(tmp_path):
    # numpy by hand: the same 1000 resamples of the six prompts (seed 0), each the mean of pycocoevalcap's
    # segment scores minus the reference's
    test = paired_test(
        _cell(tmp_path, "lora", RUN), _cell(tmp_path, "full", REFERENCE_RUN), "generation", "cider"
    )
    segments = cider_segments(RUN, REFERENCES) - cider_segments(REFERENCE_RUN, REFERENCES)
    rng = np.random.default_rng(0)
    differences = np.array([segments[rng.integers(0, 6, 6)].mean() for _ in range(1000)])
    low, high = np.percentile(differences, [2.5, 97.5])
    assert (test["ci95_low"], test["ci95_high"]) == pytest.approx((low, high))
    assert test["p"] == pytest.approx(min(1.0, 2 * np.mean(differences <= 0)))


def test_seeds_resample_prompts_not_prompt_seed_pairs(tmp_path):
    mine = _cell(tmp_path, "lora", RUN, seeds=(0, 1))
    theirs = _cell(tmp_path, "full", REFERENCE_RUN, seeds=(0, 1))
    test = paired_test(mine, theirs, "generation", "nist")
    assert test["seeds"] == 2 and test["examples"] == 6 and "over 6 prompts" in test["test"]
    # the NIST of two identical seeds is the NIST of one (information weights are ratios of counts)
    assert test["nist"] == pytest.approx(text_metrics(RUN, REFERENCES)[0]["nist"], rel=1e-9)


def test_report_rows_and_notes_carry_every_configured_text_metrics_test(tmp_path):
    mine, theirs = _cell(tmp_path, "lora", RUN), _cell(tmp_path, "full", REFERENCE_RUN)
    metrics = headline_metrics([mine, theirs])
    assert metrics == ["bleu", "nist", "meteor", "rougeL", "cider"]
    row = paired_text_tests(mine, theirs, "generation", [*metrics, "perplexity"])
    tested = [m for m in metrics if m in _metrics()]
    assert sorted(k for k in row if k.endswith("_p")) == sorted(f"paired_{m}_p" for m in tested)
    assert paired_text_tests(theirs, theirs, "generation", metrics) == {}
    notes = paired_text_notes([{"run": "lora", "reference": "full", **row}], metrics)
    assert len(notes) == 1 and "NIST +" in notes[0] and "CIDEr +" in notes[0] and "BLEU +" in notes[0]
