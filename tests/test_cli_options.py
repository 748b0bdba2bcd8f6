"""Every option is honoured or refused: --set reaches inspect without --config as with it, and an option that
the chosen mode would ignore fails with one line naming what to use instead."""

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.config.config import apply_overrides
from peftbench.errors import PeftbenchError

runner = CliRunner()
SHAPE = ["--batch-size", "4", "--seq-len", "16"]


def _inspect(tiny_bert, tmp_path, *extra: str) -> dict:
    out = tmp_path / "inspect.json"
    arguments = ["inspect", "--model", str(tiny_bert), "--method", "full", *extra, "--json", str(out)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


@pytest.mark.parametrize(
    ("by_set", "by_flag"),
    [
        ([*SHAPE, "--set", "training.gradient_checkpointing=true"], [*SHAPE, "--gradient-checkpointing"]),
        ([*SHAPE, "--set", "training.optim=adafactor"], [*SHAPE, "--optim", "adafactor"]),
        (["--seq-len", "16", "--set", "training.batch_size=8"], ["--seq-len", "16", "--batch-size", "8"]),
        (["--batch-size", "4", "--set", "data.max_length=32"], ["--batch-size", "4", "--seq-len", "32"]),
    ],
    ids=["gradient_checkpointing", "optim", "batch_size", "max_length"],
)
def test_set_without_config_changes_the_estimate_as_its_flag_does(tiny_bert, tmp_path, by_set, by_flag):
    plain = _inspect(tiny_bert, tmp_path, *SHAPE)
    from_set, from_flag = (_inspect(tiny_bert, tmp_path, *extra) for extra in (by_set, by_flag))
    assert from_set == from_flag
    assert from_set["methods"][0]["memory"] != plain["methods"][0]["memory"]


def test_checkpointing_by_set_keeps_fewer_activations(tiny_bert, tmp_path):
    plain = _inspect(tiny_bert, tmp_path, *SHAPE)
    checkpointed = _inspect(tiny_bert, tmp_path, *SHAPE, "--set", "training.gradient_checkpointing=true")
    assert checkpointed["memory_options"]["gradient_checkpointing"] is True
    assert checkpointed["methods"][0]["memory"]["activations"] < plain["methods"][0]["memory"]["activations"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_bert):
    """One finished classification run (the head only, one epoch): its experiment file and folders."""
    from conftest import write_reviews

    root = tmp_path_factory.mktemp("options")
    write_reviews(root / "reviews.csv", count=24)
    experiment = {
        "name": "tiny",
        "model": str(tiny_bert),
        "data": {"dataset": str(root / "reviews.csv"), "max_length": 16},
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3},
        "methods": [{"method": "head"}],
        "baselines": False,
        "forgetting": False,
        "interpolation": False,
        "output_dir": str(root / "runs"),
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    result = runner.invoke(app, ["run", str(root / "experiment.yaml"), "--inline"])
    assert result.exit_code == 0, result.output
    return root


REFUSED = {
    "inspect --model with --config": (
        ["inspect", "--config", "{config}", "--model", "minilm"],
        "--model is not used with --config; the file's model is used; change it with --set model=NAME",
    ),
    "inspect --task with --config": (
        ["inspect", "--config", "{config}", "--task", "generation"],
        "--set task=",
    ),
    "inspect --method with --config": (
        ["inspect", "--config", "{config}", "--method", "full"],
        "--set 'methods=",
    ),
    "inspect --set of a key it never reads": (
        ["inspect", "--config", "{config}", "--set", "training.epochs=1"],
        "--set training.epochs changes nothing inspect computes; it reads only model,",
    ),
    "inspect --set without --config of a key it never reads": (
        ["inspect", "--model", "{model}", "--set", "model.revision=main"],
        "--set model.revision changes nothing inspect computes",
    ),
    "inspect flag and --set of the same key": (
        [
            "inspect",
            "--model",
            "{model}",
            "--gradient-checkpointing",
            "--set",
            "training.gradient_checkpointing=0",
        ],
        "--gradient-checkpointing and --set training.gradient_checkpointing both set "
        "training.gradient_checkpointing; give it once",
    ),
    "inspect --batch-size and --set training.batch_size": (
        ["inspect", "--config", "{config}", "--batch-size", "4", "--set", "training.batch_size=8"],
        "--batch-size and --set training.batch_size both set training.batch_size",
    ),
    "inspect --model and --set model": (
        ["inspect", "--model", "{model}", "--set", "model=minilm"],
        "--model and --set model both set model.name",
    ),
    "inspect --num-labels on a language model": (
        ["inspect", "--model", "{model}", "--task", "causal_lm", "--num-labels", "3"],
        "--num-labels is not used by a causal_lm model (no label head); drop it",
    ),
    "probe-batch --set training.batch_size (searched)": (
        ["probe-batch", "--config", "{config}", "--set", "training.batch_size=8"],
        "--set training.batch_size changes nothing probe-batch computes",
    ),
    "probe-batch --model with --config": (
        ["probe-batch", "--config", "{config}", "--model", "x"],
        "--model is not used with --config",
    ),
    "run --address without ray": (
        ["run", "{config}", "--address", "auto"],
        "--address is not used without --executor ray; add --executor ray, or drop it",
    ),
    "run --cpus-per-run without ray": (
        ["run", "{config}", "--cpus-per-run", "2"],
        "--cpus-per-run is not used",
    ),
    "run --gpus-per-run without ray": (
        ["run", "{config}", "--gpus-per-run", "1"],
        "--gpus-per-run is not used",
    ),
    "train --epochs and --set training.epochs": (
        ["train", "--model", "{model}", "--dataset", "x.csv", "--epochs", "2", "--set", "training.epochs=1"],
        "--epochs and --set training.epochs both set training.epochs; give it once",
    ),
    "train --lora-r and --set methods": (
        [
            "train",
            "--model",
            "{model}",
            "--dataset",
            "x.csv",
            "--lora-r",
            "4",
            "--set",
            "methods=[{{method: ia3}}]",
        ],
        "--lora-r and --set methods both set methods",
    ),
    "train --model and --set model": (
        ["train", "--model", "{model}", "--dataset", "x.csv", "--set", "model=minilm"],
        "--model and --set model both set model",
    ),
    "compare --samples without generation runs": (
        ["compare", "{runs}", "--samples", "2"],
        "--samples is not used here: only generation runs save samples, none did; drop it",
    ),
    "compare --reference naming no run": (
        ["compare", "{runs}", "--reference", "lora"],
        "--reference 'lora' names no run or method under",
    ),
    "report --reference naming no run": (
        ["report", "{runs}", "--reference", "ful"],
        "--reference 'ful' names no run or method under",
    ),
    "bench-inference --max-new-tokens on a classification run": (
        ["bench-inference", "{runs}/head", "--max-new-tokens", "8"],
        "--max-new-tokens is not used by a classification run (it generates nothing); drop it",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_an_option_the_mode_does_not_use_is_refused_in_one_line(case, finished, tiny_bert):
    arguments, expected = REFUSED[case]
    values = {"config": finished / "experiment.yaml", "model": tiny_bert, "runs": finished / "runs" / "tiny"}
    result = runner.invoke(app, [a.format(**values) for a in arguments])
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert line.startswith("error: ") and result.output.strip().count("\n") == 0, result.output
    assert expected in line, line


def test_probe_batch_refuses_a_memory_budget_on_cuda(tiny_bert, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    result = runner.invoke(app, ["probe-batch", "--model", str(tiny_bert), "--memory-budget", "1"])
    assert result.exit_code == 2
    assert "--memory-budget is not used on CUDA; the GPU's own memory is the budget" in result.output


def test_options_a_mode_uses_still_pass(finished, tiny_bert):
    runs = finished / "runs" / "tiny"
    for arguments in (
        ["compare", str(runs), "--reference", "head"],
        ["report", str(runs), "--reference", "head", "--out", str(finished / "report")],
        ["inspect", "--config", str(finished / "experiment.yaml"), "--set", "methods.0.method=full"],
        [
            "inspect",
            "--model",
            str(tiny_bert),
            "--set",
            "methods=[{method: lora, r: 2, target_modules: [query]}]",
            *SHAPE,
        ],
    ):
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, (arguments, result.output)


def test_set_indexes_a_list_as_its_own_error_message_suggests():
    raw = {"methods": [{"method": "lora", "r": 4}], "model": "minilm"}
    assert apply_overrides(raw, ["methods.0.r=8"])["methods"] == [{"method": "lora", "r": 8}]
    for wrong in ("methods.1.r=8", "methods.x.r=8", "model.revision=main"):
        with pytest.raises(PeftbenchError, match="is neither a section's key nor a list's index"):
            apply_overrides(raw, [wrong])


def test_the_cli_imports_no_torch_before_a_command_needs_it():
    """`peftbench --help` and a config's schema errors answer in under a second: importing the CLI loads
    none of the heavy stack (each command imports what it needs when it runs)."""
    import subprocess
    import sys

    code = (
        "import sys, peftbench.cli\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "[]"
