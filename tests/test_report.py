"""The report over real (tiny) runs: files, contents, statistics, and the page in headless Chromium."""

import csv
import json
import math
import os
import re
import sys
from pathlib import Path

import pytest
import sacrebleu
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.metrics.text_metrics import text_metrics
from peftbench.report.collect import RunGroup, paired_test
from peftbench.report.plots import pareto_front

runner = CliRunner()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true")  # CI sets CI=true: skipping there is a failure
sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
from report_in_browser import CHROMEDRIVER, CHROMIUM, open_report, probe_report  # noqa: E402


def test_pareto_front_keeps_undominated_points():
    points = [(10, 0.7), (100, 0.9), (50, 0.6), (1000, 0.85)]
    assert pareto_front(points, higher=True) == [0, 1]
    assert pareto_front([(1, 30.0), (10, 20.0), (5, 40.0)], higher=False) == [0, 1]


@pytest.fixture(scope="module")
def classification_runs(tmp_path_factory, tiny_bert):
    from conftest import write_reviews

    root = tmp_path_factory.mktemp("report")
    write_reviews(root / "reviews.csv", count=60)
    experiment = {
        "name": "tiny",
        "model": str(tiny_bert),
        "data": {"dataset": str(root / "reviews.csv"), "max_length": 16},
        "training": {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "logging_steps": 2},
        "methods": [{"method": "full"}, {"method": "lora", "r": 4, "target_modules": ["query", "value"]}],
        "seeds": [1, 2],
        "output_dir": str(root / "runs"),
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(root / "experiment.yaml"), "--inline"])
    assert result.exit_code == 0, result.output
    return root / "runs" / "tiny"


@pytest.mark.slow
def test_report_files_and_contents(classification_runs):
    result = runner.invoke(app, ["report", str(classification_runs)])
    assert result.exit_code == 0, result.output
    text = (classification_runs / "report.md").read_text()
    assert "## Verdict" in text and "Recommendation:" in text and "exact McNemar" in text
    verdict = text.split("## Verdict")[1].split("##")[0]
    assert (
        "- **lora** " in verdict and "Best quality:" in verdict and "Fewest trainable parameters:" in verdict
    )
    assert "| full |" in text and "| lora |" in text
    assert "| run | n | acc | F1 | 95% CI | Δacc | ΔF1 | vs ref | vs base |" in text
    assert "of accuracy against the reference / of f1_macro against the strongest baseline" in text
    # loss per step and per epoch (two epochs), two Pareto plots, training time, confusion matrices, the
    # stability-plasticity curves (the tiny BERT has no MLM head: no forgetting, no plot against it)
    assert text.count("![") == 7 and "## Stability–plasticity curves" in text
    assert "against forgetting" not in text and "| forgetting |" not in text
    rows = list(csv.DictReader((classification_runs / "summary.csv").open()))
    assert {r["run"] for r in rows} == {"full", "lora", "baseline-untrained", "baseline-majority"}
    lora = next(r for r in rows if r["run"] == "lora")
    assert 0 <= float(lora["reference_p"]) <= 1 and float(lora["accuracy"]) >= 0
    assert (
        lora["seeds"] == "2"
        and lora["accuracy_std"] != ""
        and float(lora["accuracy_ci95_low"]) <= float(lora["accuracy"])
    )
    assert float(lora["learning_rate"]) == float(lora["head_learning_rate"]) == 1e-3
    assert "lr body / head" in text and "| 0.001 / 0.001 |" in text
    assert "| lora | 2 |" in text  # two seeds pooled into one row
    page = (classification_runs / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7 and "src='figures/" not in page  # self-contained
    assert not re.search(r"<(script|link|img|iframe)[^>]*(src|href)\s*=\s*['\"]?(https?:)?//", page)
    assert "vegaEmbed(" in page and "download='summary.csv'" in page  # no CDN: the JavaScript is inline


def test_report_on_empty_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no complete runs" in result.output


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None and not IN_CI, reason="needs Debian's chromium (scripts/setup.sh installs it)"
)
def test_report_renders_in_headless_chromium(classification_runs, tmp_path):
    assert CHROMIUM, "CI must render the report: scripts/setup.sh failed to install Debian's chromium"
    runner.invoke(app, ["report", str(classification_runs)])
    seen = probe_report(classification_runs / "report.html", width=1280)
    assert seen["images"] == seen["all-images"] == "7", seen
    assert seen["width"] == "1280"
    assert seen["fits"] == "true", f"the page scrolls sideways at 1280 px: {seen}"
    assert seen["rows"] == "5"  # header + four runs
    assert seen["verdict"] == "true" and seen["step-curves"] == "1"


def _generations_cell(root, name, rows):
    folder = root / name
    folder.mkdir()
    (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return RunGroup(name, [{"seed": 0, "_dir": str(folder), "method": {"name": name}}])


def test_paired_bleu_test_scores_the_tables_bleu_on_a_sparse_corpus(tmp_path):
    # short outputs: no 4-gram matches, so unsmoothed BLEU is 0 while the table's (smoothed) BLEU is not
    references = [["good drug for pain", "works well"], ["bad sleep"], ["great drug", "fine drug ok"]]
    run = ["good drug for sleep", "bad sleep", "great drug ok fine"]
    reference_run = ["drug pain ok good", "sleep bad", "fine"]
    rows = [
        [
            {"index": i, "references": refs, "generated": text}
            for i, (refs, text) in enumerate(zip(references, texts, strict=True))
        ]
        for texts in (run, reference_run)
    ]
    test = paired_test(
        _generations_cell(tmp_path, "lora", rows[0]),
        _generations_cell(tmp_path, "full", rows[1]),
        "generation",
    )
    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(2)]
    for observed, texts in ((test["bleu"], run), (test["reference_bleu"], reference_run)):
        table_bleu = text_metrics(texts, references)[0]["bleu"]
        assert (
            observed
            == pytest.approx(table_bleu)
            == pytest.approx(sacrebleu.corpus_bleu(texts, streams).score)
        )
    assert test["bleu"] > 0 and sacrebleu.corpus_bleu(run, streams, smooth_method="none").score == 0
    assert test["difference"] == pytest.approx(test["bleu"] - test["reference_bleu"])


MEAN_POINTS = """const found = [];
const walk = node => {
  if (node.marktype && node.name === 'means_marks')
    node.items.forEach(i => found.push({run: i.datum.run, px: i.x, py: i.y, x: i.datum.x, y: i.datum.y,
                                        front: i.datum.on_front}));
  (node.items || []).forEach(walk);
};
walk(window.paretoResult.view.scenegraph().root);
return found;"""


def _mean_points(driver) -> dict[str, dict]:
    return {p["run"]: p for p in driver.execute_script(MEAN_POINTS)}


def _test_loss(root: Path, name: str) -> float:
    """The mean over both seeds of result.json's test loss (summary.csv does not carry it)."""
    losses = [json.loads((root / f"{name}@seed{s}" / "result.json").read_text()) for s in (1, 2)]
    return sum(r["metrics"]["test"]["loss"] for r in losses) / 2


def _first_column(driver, table: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        r.find_element(By.TAG_NAME, "td").text
        for r in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    ]


def _shown_numbers(driver, table: str, column: int) -> list[float]:
    """The numbers a column shows, top to bottom, as the page's sort reads them."""
    from selenium.webdriver.common.by import By

    cells = [
        r.find_elements(By.TAG_NAME, "td")[column].text
        for r in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    ]
    found = [re.match(r"^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", c.replace(",", "")) for c in cells]
    return [float(m.group(0)) for m in found if m]


def _dominated(row: dict, rows: list[dict], x: str, y: str) -> bool:
    """Lower x (training seconds) and lower y (test loss) are better."""
    return any(
        o[x] <= row[x] and o[y] <= row[y] and (o[x], o[y]) != (row[x], row[y]) for o in rows if o is not row
    )


@pytest.mark.slow
@pytest.mark.skipif(
    (CHROMIUM is None or CHROMEDRIVER is None) and not IN_CI,
    reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)",
)
def test_report_plot_follows_the_picked_axes_and_tables_sort_in_chromium(classification_runs):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    assert CHROMIUM and CHROMEDRIVER, "CI must drive the report: scripts/setup.sh installs chromium-driver"
    runner.invoke(app, ["report", str(classification_runs)])
    rows = {r["run"]: r for r in csv.DictReader((classification_runs / "summary.csv").open())}
    with open_report(classification_runs / "report.html", width=1280) as driver:
        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return !!window.paretoResult"))
        before = _mean_points(driver)
        assert set(before) == {"full", "lora"}  # the baselines train no parameters: off a log axis
        for name, point in before.items():
            assert point["x"] == pytest.approx(math.log10(float(rows[name]["trainable_params"])))
            assert point["y"] == pytest.approx(float(rows[name]["accuracy"]))

        Select(driver.find_element(By.CSS_SELECTOR, "select[name=x_metric]")).select_by_value("train_seconds")
        Select(driver.find_element(By.CSS_SELECTOR, "select[name=y_metric]")).select_by_value("loss")
        WebDriverWait(driver, 30).until(lambda d: _mean_points(d)["full"]["x"] != before["full"]["x"])
        after = _mean_points(driver)
        expected = {
            name: {
                "seconds": float(rows[name]["train_seconds"]),
                "loss": _test_loss(classification_runs, name),
            }
            for name in ("full", "lora")
        }
        for name, point in after.items():
            assert point["x"] == pytest.approx(expected[name]["seconds"])
            assert point["y"] == pytest.approx(expected[name]["loss"])
        assert {n: p["px"] for n, p in after.items()} != {n: p["px"] for n, p in before.items()}
        assert {n: p["py"] for n, p in after.items()} != {n: p["py"] for n, p in before.items()}
        fast = min(after, key=lambda n: after[n]["x"])
        assert after[fast]["px"] < max(p["px"] for p in after.values())  # x grows to the right
        for name, point in after.items():
            assert point["front"] == (
                not _dominated(expected[name], list(expected.values()), "seconds", "loss")
            )

        header = driver.find_elements(By.CSS_SELECTOR, "#cost thead th")
        column = [h.text for h in header].index("train s")
        timed = sorted((float(r["train_seconds"]), n) for n, r in rows.items() if r["train_seconds"])
        order = [name for _, name in timed]
        header[column].click()
        shown, seconds = _first_column(driver, "cost"), _shown_numbers(driver, "cost", column)
        assert len(shown) == 4 and len(seconds) == 2  # numbers first; the "–" rows last
        assert seconds == sorted(seconds) and set(shown[:2]) == set(order)
        if seconds[0] != seconds[1]:  # two runs shown with the same rounded seconds keep their order
            assert shown[:2] == order
        header[column].click()
        again = _shown_numbers(driver, "cost", column)
        assert again == sorted(seconds, reverse=True)
        if seconds[0] != seconds[1]:
            assert _first_column(driver, "cost")[:2] == order[::-1]

        width, scroll = driver.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth]"
        )
        assert width == 1280 and scroll <= width, f"the page scrolls sideways at 1280 px: {scroll}"


@pytest.mark.slow
def test_report_lists_provenance_once_and_warns_when_pooled_seeds_differ(classification_runs, tmp_path):
    import shutil

    from peftbench.report import build

    same = build(classification_runs)
    assert [what for what, _ in same.provenance] == [
        "peftbench",
        "packages",
        "hardware",
        "model weights",
        "data files",
        "test split",
    ]
    assert not any("differ in" in w for w in same.warnings)
    copy = tmp_path / "tiny"
    shutil.copytree(classification_runs, copy)
    result_file = next(copy.glob("lora*seed2*/result.json"))
    result = json.loads(result_file.read_text())
    result["model"]["fingerprint"]["sha256"] = "0" * 64  # as if seed 2 had loaded other weights
    result_file.write_text(json.dumps(result))
    warned = [w for w in build(copy).warnings if "differ in" in w]
    assert len(warned) == 1
    assert warned[0].startswith("lora: the runs pooled in this row differ in model weights")
