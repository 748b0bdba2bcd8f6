"""Provenance in result.json: peftbench's commit and dirty flag, cheap fingerprints of the model weights and
data files, the test split's ids and the hardware; each changes when what it names changes, and only then."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from datasets import Dataset, DatasetDict

from peftbench.config.config import DataConfig, ModelConfig
from peftbench.data.splits import make_splits
from peftbench.inputs import run_inputs
from peftbench.inputs.experiment import build_config
from peftbench.run import provenance, runner

MIB = 2**20


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path):
    """A git repository holding a package folder, committed."""
    repo = tmp_path / "repo"
    package = repo / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return repo, package


def test_git_state_flips_dirty_when_a_tracked_file_changes(checkout):
    repo, package = checkout
    head = _git(repo, "rev-parse", "HEAD").strip()
    assert provenance.git_state(package) == {"commit": head, "dirty": False}
    (package / "notes.txt").write_text("untracked\n")
    assert provenance.git_state(package)["dirty"] is False  # untracked files do not count
    (package / "__init__.py").write_text("x = 2\n")
    assert provenance.git_state(package) == {"commit": head, "dirty": True}


def test_git_state_is_null_outside_a_checkout_or_without_git(checkout, tmp_path, monkeypatch):
    repo, package = checkout
    (repo / ".venv" / "pkg").mkdir(parents=True)  # inside a repository, but not a tracked package
    (repo / ".venv" / "pkg" / "__init__.py").write_text("")
    assert provenance.git_state(repo / ".venv" / "pkg") == {"commit": None, "dirty": None}
    assert provenance.git_state(tmp_path) == {"commit": None, "dirty": None}

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert provenance.git_state(package) == {"commit": None, "dirty": None}


def _write(path: Path, size: int) -> None:
    path.write_bytes(bytes(i % 251 for i in range(size)))


def _patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def test_model_fingerprint_follows_the_first_and_last_mib_and_the_size(tmp_path):
    weights = tmp_path / "model.safetensors"
    _write(weights, 3 * MIB)
    (tmp_path / "config.json").write_text("{}")
    model = ModelConfig(name=str(tmp_path))
    first = provenance.model_fingerprint(model)
    assert first["source"] == "local" and first["files"] == 1 and first["bytes"] == 3 * MIB
    assert provenance.model_fingerprint(model) == first
    os.utime(weights, (1, 1))
    (tmp_path / "config.json").write_text('{"a": 1}')  # not a weight file
    assert provenance.model_fingerprint(model) == first
    _patch(weights, MIB + 10, b"\xff")  # the middle MiB is not read: the cheap hash misses it, by design
    assert provenance.model_fingerprint(model) == first
    _patch(weights, 10, b"\xff")
    head_changed = provenance.model_fingerprint(model)
    assert head_changed["sha256"] != first["sha256"]
    _patch(weights, 3 * MIB - 5, b"\xff")
    assert provenance.model_fingerprint(model)["sha256"] != head_changed["sha256"]
    with weights.open("ab") as handle:
        handle.write(b"\0")
    assert provenance.model_fingerprint(model)["sha256"] != head_changed["sha256"]


def test_model_fingerprint_tells_sizes_apart_when_both_ends_match(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(bytes(3 * MIB))  # zeros: the first and last MiB read the same at any size
    before = provenance.model_fingerprint(ModelConfig(name=str(tmp_path)))
    weights.write_bytes(bytes(3 * MIB + 1))
    assert provenance.model_fingerprint(ModelConfig(name=str(tmp_path)))["sha256"] != before["sha256"]


def test_a_gguf_fingerprint_covers_that_file_alone(tmp_path):
    gguf = tmp_path / "m.Q4.gguf"
    _write(gguf, MIB // 2)
    _write(tmp_path / "other.gguf", 100)
    alone = provenance.model_fingerprint(ModelConfig(name=str(gguf)))
    assert alone["files"] == 1 and alone["bytes"] == MIB // 2
    _write(tmp_path / "other.gguf", 200)
    assert provenance.model_fingerprint(ModelConfig(name=str(gguf))) == alone


def test_a_hub_model_is_named_by_the_commit_its_cache_resolved(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    refs = tmp_path / "models--org--tiny" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    found = provenance.model_fingerprint(ModelConfig(name="org/tiny"))
    assert found == {"source": "hub", "id": "org/tiny", "revision": None, "commit": "a" * 40}
    assert provenance.model_fingerprint(ModelConfig(name="org/absent"))["commit"] is None


def test_data_fingerprint_per_file_role(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("text,label\na,x\n")
    test.write_text("text,label\nb,y\n")
    found = provenance.data_fingerprint(DataConfig(dataset=str(train), test_file=str(test)))
    assert found["source"] == "local" and set(found["files"]) == {"dataset", "test_file"}
    test.write_text("text,label\nc,y\n")
    again = provenance.data_fingerprint(DataConfig(dataset=str(train), test_file=str(test)))
    assert again["files"]["dataset"] == found["files"]["dataset"]
    assert again["files"]["test_file"] != found["files"]["test_file"]


def _splits(test: list[str], **config) -> dict:
    raw = DatasetDict(
        {
            "train": Dataset.from_dict({"text": [f"w{i}" for i in range(40)]}),
            "test": Dataset.from_dict({"text": test}),
        }
    )
    return make_splits(raw, DataConfig(dataset="x", **config), lambda rows: rows["text"], None).info


def test_split_hash_changes_with_the_test_ids_and_only_with_them():
    tests = [f"t{i}" for i in range(10)]
    first = _splits(tests)["test_ids_sha256"]
    assert _splits(tests)["test_ids_sha256"] == first
    assert _splits(tests, data_fraction=0.5, split_seed=3)["test_ids_sha256"] == first  # train shrinks only
    assert _splits(tests, max_eval_samples=5)["test_ids_sha256"] != first
    assert _splits(tests[:9])["test_ids_sha256"] != first
    carved = _splits(tests, test_split=None)["test_ids_sha256"]
    assert carved != first and _splits(tests, test_split=None, split_seed=4)["test_ids_sha256"] != carved


def test_a_tiny_run_records_its_provenance(experiment, tiny_bert, reviews_csv):
    config = build_config({**experiment, "methods": [{"method": "full"}]})
    run_dir = runner.run_method(run_inputs.prepare_inputs(config), config.methods[0])
    result = json.loads((run_dir / "result.json").read_text())
    environment, model, data = result["environment"], result["model"], result["data"]
    source = Path(provenance.__file__).parent
    assert environment["peftbench_git"]["commit"] == _git(source, "rev-parse", "HEAD").strip()
    assert isinstance(environment["peftbench_git"]["dirty"], bool)
    if "cpu" in environment["hardware"]:  # checked against /proc/cpuinfo read here, by another route
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else "flags:"
        flags = set(cpuinfo.split("flags")[1].split("\n")[0].strip(": \t").split())
        assert set(environment["hardware"]["cpu_flags"]) == flags & set(provenance.CPU_FLAGS)
    weights = [f for f in Path(tiny_bert).iterdir() if f.suffix == ".safetensors"]
    assert model["fingerprint"] == {"source": "local", **provenance.files_fingerprint(weights)}
    assert data["fingerprint"]["files"]["dataset"]["bytes"] == reviews_csv.stat().st_size
    assert len(data["test_ids_sha256"]) == 64
    efficiency = result["efficiency"]
    for prefix in ("", "eval_"):
        for stat in ("mean", "p99"):
            assert f"{prefix}{stat}_rss_above_start_bytes" in efficiency
            assert f"{prefix}cuda_{stat}_reserved_bytes" in efficiency
    assert efficiency["p99_rss_above_start_bytes"] <= efficiency["peak_rss_above_start_bytes"]


def test_on_a_gpu_the_hardware_is_its_name_memory_and_driver(tmp_path, monkeypatch):
    properties = type("Properties", (), {"name": "NVIDIA H200", "total_memory": 141 * 2**30})()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: properties)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    version = tmp_path / "version"
    version.write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder)\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    assert provenance.nvidia_driver(version) == "550.54.15"
    monkeypatch.setattr(provenance, "nvidia_driver", lambda: "550.54.15")
    found = provenance.hardware()
    assert found["gpu"] == "NVIDIA H200" and found["gpu_memory_bytes"] == 141 * 2**30
    assert found["gpu_count"] == 2 and found["driver"] == "550.54.15"


def test_split_ids_are_rows_of_the_loaded_data_so_keep_rows_cannot_alias_them(tmp_path):
    from conftest import write_reviews

    from peftbench.tasks.classification import load_labelled

    labels = ("negative", "neutral", "positive")
    write_reviews(tmp_path / "train.csv", count=60, labels=labels)
    write_reviews(tmp_path / "test.csv", count=12, seed=1, labels=labels)

    def test_ids(kept: list[str]) -> str:
        train, test = str(tmp_path / "train.csv"), str(tmp_path / "test.csv")
        config = DataConfig(dataset=train, test_file=test, keep_rows={"label": kept})
        return load_labelled(config)[2]["test_ids_sha256"]

    assert test_ids(["negative", "positive"]) != test_ids(["negative", "neutral"])  # 8 test rows each
