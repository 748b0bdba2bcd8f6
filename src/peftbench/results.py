"""Run folders: status markers, atomic writes, and reading finished results back."""

import contextlib
import json
import os
import re
import socket
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

RESULT_FILE = "result.json"
STATUS_FILE = "status.json"
SECRET_NAME = re.compile(r"(^|[^a-z])(token|secret|password|passwd|api_?key|access_?key)s?($|[^a-z])")
TEXT_SUFFIXES = {".json", ".jsonl", ".yaml", ".yml", ".md", ".csv", ".txt", ".html"}
TOKENIZER_TOKENS = {f"{kind}_token" for kind in ("pad", "eos", "bos", "unk", "sep", "cls", "mask")}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomic(path: Path, text: str) -> None:
    """The one way peftbench writes a text file: secret values removed, replaced atomically, with the
    permissions the umask gives (mkstemp alone would make it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(redact_text(text))
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(redact(data), indent=2, default=str) + "\n")


def write_yaml(path: Path, data: Any) -> None:
    write_atomic(path, yaml.safe_dump(redact(data), sort_keys=False))


def _secret_name(name: str) -> bool:
    """HF_TOKEN, hub_token, WANDB_API_KEY: a hint as a whole word (tokenizer_name_or_path is not)."""
    return bool(SECRET_NAME.search(str(name).lower()))


def _secret_key(key: Any, value: Any) -> bool:
    """A string under a secret-looking key; counts (target_tokens) and tokenizer tokens are not secrets."""
    name = str(key).lower()
    if not isinstance(value, str) or name in TOKENIZER_TOKENS:
        return False
    return _secret_name(name)


def secret_values() -> list[str]:
    """Values of secret-looking environment variables, longest first (8+ characters: no false hits)."""
    found = {v for k, v in os.environ.items() if _secret_name(k) and len(v) >= 8}
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, "<redacted>")
    return text


def redact(data: Any, secrets: list[str] | None = None) -> Any:
    """Drop secret-looking values (by key) and secret environment values found inside any string."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(data, dict):
        return {k: "<redacted>" if _secret_key(k, v) else redact(v, secrets) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact(v, secrets) for v in data]
    if isinstance(data, str):
        return redact_text(data, secrets)
    return data


def redact_folder(folder: Path) -> None:
    """Files that libraries wrote into a run folder (PEFT's adapter_config.json, the Trainer's state)."""
    secrets = secret_values()
    if not secrets:
        return
    for path in folder.rglob("*"):
        if path.suffix in TEXT_SUFFIXES and path.is_file():
            text = path.read_text(errors="replace")
            if any(secret in text for secret in secrets):
                write_atomic(path, text)


def mark(run_dir: Path, status: str, **details: Any) -> None:
    """status is running, complete, failed or interrupted; only complete runs have a result.json."""
    write_json(run_dir / STATUS_FILE, {"status": status, "time": now(), **details})


def mark_if_possible(run_dir: Path, status: str, **details: Any) -> None:
    """mark, unless the disk is full or the folder unwritable: then the grid process marks the run."""
    with contextlib.suppress(OSError):
        mark(run_dir, status, **details)


def begin(run_dir: Path, **details: Any) -> None:
    (run_dir / RESULT_FILE).unlink(missing_ok=True)
    mark(run_dir, "running", pid=os.getpid(), host=socket.gethostname(), **details)


_warned: set[Path] = set()


def read_json(path: Path) -> dict | None:
    """The JSON object in path; None (with one warning per file) when it is missing, truncated or not an
    object, so one damaged run never makes a whole experiment unreadable."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    else:
        if isinstance(data, dict):
            return data
        problem = f"holds {type(data).__name__}, not an object"
    if path not in _warned:
        _warned.add(path)
        print(
            f"warning: skipped damaged {path} ({problem}); `peftbench run` on the experiment redoes that run",
            file=sys.stderr,
        )
    return None


def _process_gone(status: dict) -> bool:
    """A 'running' status written on this machine by a process that no longer exists."""
    pid, host = status.get("pid"), status.get("host")
    if not isinstance(pid, int) or (host is not None and host != socket.gethostname()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def read_status_file(run_dir: Path) -> dict:
    """status.json, {} when missing or damaged; a 'running' run whose process is gone reads interrupted."""
    status = read_json(run_dir / STATUS_FILE) or {}
    if status.get("status") == "running" and _process_gone(status):
        return {**status, "status": "interrupted", "error": f"process {status['pid']} ended without a status"}
    return status


def read_status(run_dir: Path) -> str:
    return read_status_file(run_dir).get("status", "unknown")


def read_result(run_dir: Path) -> dict | None:
    """The run's result.json when its status says complete and the file is readable."""
    if read_status(run_dir) != "complete":
        return None
    return read_json(run_dir / RESULT_FILE)


def finished_results(root: Path) -> list[dict]:
    """result.json of every complete run under root (a run folder or an experiment folder)."""
    found = (read_result(path.parent) for path in sorted(Path(root).rglob(RESULT_FILE)))
    return [result for result in found if result is not None]
