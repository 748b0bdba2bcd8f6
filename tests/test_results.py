import json

import pytest

from peftbench.results import results, run_folder
from peftbench.results.run_folder import recording


def _status(run_dir):
    return json.loads((run_dir / results.STATUS_FILE).read_text())["status"]


def test_interrupted_run_is_marked(tmp_path):
    with pytest.raises(KeyboardInterrupt), recording(tmp_path / "run"):
        raise KeyboardInterrupt
    assert _status(tmp_path / "run") == "interrupted"
    assert run_folder.finished_results(tmp_path) == []


def test_failed_run_keeps_error(tmp_path):
    with pytest.raises(ValueError), recording(tmp_path / "run"):
        raise ValueError("boom")
    assert "boom" in (tmp_path / "run" / results.STATUS_FILE).read_text()


def test_rerun_removes_stale_result(tmp_path):
    run_dir = tmp_path / "run"
    with recording(run_dir):
        results.write_json(run_dir / results.RESULT_FILE, {"run": "x"})
    assert len(run_folder.finished_results(tmp_path)) == 1
    with pytest.raises(RuntimeError), recording(run_dir):
        raise RuntimeError("second attempt failed")
    assert not (run_dir / results.RESULT_FILE).exists()


def test_secrets_are_redacted(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijkl")
    data = {"hub_token": "x", "nested": [{"model": "hf_abcdefghijkl"}], "lr": 0.1}
    assert results.redact(data) == {"hub_token": "<redacted>", "nested": [{"model": "<redacted>"}], "lr": 0.1}


def test_counts_and_tokenizer_tokens_are_not_secrets():
    data = {"target_tokens": 120, "generated_tokens_mean": 4.5, "pad_token": "</s>", "api_token": "abc"}
    assert results.redact(data) == {**data, "api_token": "<redacted>"}


def test_atomic_write_leaves_no_temporary_files(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    results.write_json(target, {"k": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads(target.read_text()) == {"k": 1}

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(results.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        results.write_json(target, {"k": 2})
    # an interrupted write keeps the old file whole and cleans up its temporary file
    assert json.loads(target.read_text()) == {"k": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_run_is_reused_only_when_complete_readable_and_of_the_same_config(tmp_path):
    run_dir = tmp_path / "run"
    assert run_folder.read_run(run_dir).status == "missing"
    with recording(run_dir, "h1"):
        results.write_json(run_dir / results.RESULT_FILE, {"run": "x"})
    run = run_folder.read_run(run_dir)
    assert run.status == "complete" and run.result == {"run": "x"} and run.config_hash == "h1"
    assert run.finished_with("h1") and not run.finished_with("h2")
    with pytest.raises(ValueError), recording(run_dir, "h1"):
        raise ValueError("boom")
    failed = run_folder.read_run(run_dir)
    assert failed.status == "failed" and failed.error == "ValueError: boom" and not failed.finished_with("h1")
