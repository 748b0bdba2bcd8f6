"""Tokenised task data, cached on disk: the processes of a grid (one per run) tokenise a dataset once.

The key covers everything that shapes the tokenised splits: the task, the data and generation sections
(data.split_seed carves and subsamples; the training seed plays no part, so every seed shares an entry),
the tokenizer's source, local data files' size and time, and the peftbench version. Writes are staged
and renamed, so a half-written entry is never read."""

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from datasets import load_from_disk

from peftbench import __version__
from peftbench.config.config import ExperimentConfig
from peftbench.models.models import ModelSource, cache_root
from peftbench.results.results import write_atomic
from peftbench.tasks import Task, TaskData

CACHE_FORMAT = 5  # 3: test rows carry their unit; 4: shrinking skips groups, shares and dropped prompts;
# 5: the test split's ids hash


def _file_identity(path: str | None) -> list | None:
    if not path or not Path(path).is_file():
        return None
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def cache_key(config: ExperimentConfig, source: ModelSource) -> str:
    data = config.data
    identity = {
        "format": CACHE_FORMAT,
        "peftbench": __version__,
        "task": config.task,
        "data": data.model_dump(mode="json"),
        "generation": config.generation.model_dump(mode="json"),
        "tokenizer": [source.path, source.revision, source.gguf_file],
        "files": [_file_identity(p) for p in (data.dataset, data.validation_file, data.test_file)],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _read(folder: Path) -> TaskData | None:
    try:
        stored = json.loads((folder / "task_data.json").read_text())  # keys kept: older caches stay valid
        return TaskData(load_from_disk(str(folder / "splits")), stored["info"], stored["evaluation"])
    except (OSError, ValueError, KeyError):
        return None


def _write(folder: Path, data: TaskData) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging-"))
    try:
        data.splits.save_to_disk(str(staging / "splits"))
        stored = {"info": data.metadata, "evaluation": data.test_references}
        write_atomic(staging / "task_data.json", json.dumps(stored))
        staging.rename(folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # e.g. another process won the race: its copy is used


def load_task_data(
    config: ExperimentConfig, source: ModelSource, task: Task, tokenizer, model_config
) -> TaskData:
    """The task's tokenised data from the cache, or tokenised now and cached."""
    folder = cache_root() / "data" / cache_key(config, source)
    cached = _read(folder) if folder.is_dir() else None
    if cached is not None:
        return cached
    data = task.load_data(config, tokenizer, model_config)
    _write(folder, data)
    return _read(folder) or data  # every run, first or later, sees the same (reloaded) data
