"""Files of a run folder: their names, atomic redacted writes, and a forgiving JSON reader."""

import json
import os
import re
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
    for path in folder.rglob("*") if secrets else ():
        if path.suffix in TEXT_SUFFIXES and path.is_file():
            redact_file(path, secrets)


def redact_file(path: Path, secrets: list[str] | None = None) -> None:
    """A file that other code wrote (a library's config, a run's train.log), rewritten without secret
    values when it holds any."""
    secrets = secret_values() if secrets is None else secrets
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    if any(secret in text for secret in secrets):
        write_atomic(path, text)


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
