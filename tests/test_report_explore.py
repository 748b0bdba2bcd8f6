"""The interactive report's data (every metric per seed and per row, Pareto fronts per pair of metrics) and
its page parts (an inline Vega-Lite plot, sortable tables, a CSV link), without a browser."""

import base64
import math
import re

import numpy as np
import pytest

from peftbench.report.collect import RunGroup
from peftbench.report.explore import explore_data, front
from peftbench.report.interactive import chart_spec, csv_link, pareto_section
from peftbench.report.plots import pareto_front


def _run(method: str, seed: int, accuracy: float, params: int, seconds: float, forgetting=None) -> dict:
    return {
        "method": {"name": method},
        "seed": seed,
        "metrics": {"test": {"accuracy": accuracy, "loss": 1 - accuracy}},
        "efficiency": {
            "trainable_params": params,
            "artifact_bytes": params * 4,
            "train_seconds": seconds,
            "cuda_peak_allocated_bytes": None,
        },
        "forgetting": {"value": forgetting, "metric": "loss"},
    }


@pytest.fixture
def groups() -> list[RunGroup]:
    return [
        RunGroup("full", [_run("full", 1, 0.90, 10_000, 8.0, 0.4), _run("full", 2, 0.86, 10_000, 10.0, 0.2)]),
        RunGroup("lora", [_run("lora", 1, 0.84, 100, 4.0), _run("lora", 2, 0.86, 100, 6.0)]),
        RunGroup("head", [_run("head", 1, 0.70, 10, 5.0), _run("head", 2, 0.72, 10, 5.5)]),
    ]


def test_front_takes_each_axis_direction():
    points = [(1.0, 0.9), (2.0, 0.95), (3.0, 0.8), (2.0, 0.9)]
    assert front(points, (False, True)) == [0, 1]
    assert sorted(front(points, (False, True))) == sorted(pareto_front(points, higher=True))
    assert front(points, (True, True)) == [1, 2]  # larger x is better now: (3, 0.8) is undominated
    assert front(points, (False, False)) == [0, 2]
    assert front([(1.0, 1.0), (1.0, 1.0)], (False, True)) == [0, 1]  # equal rows: neither beats the other


def test_points_per_seed_and_per_row(groups):
    data = explore_data(groups, ["accuracy"])
    keys = [m["key"] for m in data["metrics"]]
    assert keys[0] == "accuracy" and "loss" in keys and "trainable_params" in keys
    assert "cuda_peak_allocated_mib" not in keys  # no run recorded it
    assert "forgetting" not in keys  # one row only: nothing to compare
    means = {p["run"]: p for p in data["points"] if p["kind"] == "mean"}
    seeds = [p for p in data["points"] if p["kind"] == "seed"]
    assert len(seeds) == 6 and {p["seed"] for p in seeds} == {"1", "2"}
    assert means["full"]["accuracy"] == pytest.approx(np.mean([0.90, 0.86]))
    assert means["full"]["train_seconds"] == pytest.approx(9.0)
    assert means["lora"]["artifact_mib"] == pytest.approx(400 / 2**20)
    assert means["lora"]["plot_trainable_params"] == pytest.approx(math.log10(100))
    assert means["full"]["seed"] == "mean of 2"
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["loss"]["higher"] is False and metrics["accuracy"]["higher"] is True
    assert metrics["trainable_params"]["log"] and not metrics["train_seconds"]["log"]


def test_front_flags_per_pair(groups):
    means = {p["run"]: p for p in explore_data(groups, ["accuracy"])["points"] if p["kind"] == "mean"}
    # accuracy 0.88 / 0.85 / 0.71 against 10,000 / 100 / 10 parameters: nobody dominates anybody
    assert all("trainable_params|accuracy" in p["front"] for p in means.values())
    # training time 9 / 5 / 5.25 s: lora is faster and more accurate than head; full is the most accurate
    assert [r for r, p in means.items() if "train_seconds|accuracy" in p["front"]] == ["full", "lora"]
    assert [r for r, p in means.items() if "accuracy|train_seconds" in p["front"]] == ["full", "lora"]
    assert [r for r, p in means.items() if "loss|accuracy" in p["front"]] == ["full"]  # loss = 1 − acc


def test_forgetting_is_offered_once_two_rows_measured_it(groups):
    groups[2].runs[0]["forgetting"]["value"] = 0.05
    data = explore_data(groups, ["accuracy"])
    forgetting = next(m for m in data["metrics"] if m["key"] == "forgetting")
    assert forgetting["higher"] is False  # general-text loss after − before: lower is better
    head = next(p for p in data["points"] if p["run"] == "head" and p["kind"] == "mean")
    assert head["forgetting"] == pytest.approx(0.05)  # the seed that measured it


def test_plot_is_valid_vega_lite_and_self_contained(groups):
    data = explore_data(groups, ["accuracy"])
    spec = chart_spec(data, validate=True)
    params = {p["name"]: p for p in spec["params"]}
    assert params["x_metric"]["value"] == "trainable_params" and params["y_metric"]["value"] == "accuracy"
    assert params["x_metric"]["bind"]["options"] == [m["key"] for m in data["metrics"]]
    section = pareto_section(data)
    assert "vegaEmbed(" in section and "window.paretoResult" in section
    assert not re.search(r"<(script|link|img)[^>]*(src|href)\s*=\s*['\"]?https?:", section)
    assert section.count("</script") == 2  # the bundle and the embedding call, nothing closes them early


def test_csv_link_carries_the_summary():
    link = csv_link("run,accuracy\nlora,0.9\n")
    encoded = re.search(r"base64,([A-Za-z0-9+/=]+)'", link).group(1)
    assert (
        "download='summary.csv'" in link and base64.b64decode(encoded).decode() == "run,accuracy\nlora,0.9\n"
    )
