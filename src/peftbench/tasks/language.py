"""What the language-model tasks share: model loading, the collator, and loss/perplexity on targets."""

import copy
import json
import logging
import math
import time

import torch
from datasets import Dataset
from peft import TaskType
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

from peftbench.errors import PeftbenchError
from peftbench.models import models
from peftbench.tasks.base import Task, TaskData
from peftbench.training.chunked_loss import target_loss_rows
from peftbench.training.training import TrainerParts, autocast, model_columns

MODEL_INPUTS = ("input_ids", "attention_mask", "labels")
TARGET_LOSSES_FILE = "target_losses.jsonl"
UNIT = "unit"  # a test row's independent unit: its prompt (generation) or its document (causal_lm)
IGNORE = -100
log = logging.getLogger("peftbench")


def position_limit(model_config) -> int | None:
    """The most positions the model was built for (learned position embeddings, or the length rotary
    positions were trained to); None when its config names none (T5's relative positions)."""
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def context_length(max_length: int, model_config) -> int:
    """`max_length`, capped by the model's position limit where it has one."""
    limit = position_limit(model_config)
    if limit and max_length > limit:
        log.warning("data.max_length=%d exceeds the model's %d positions; using %d", max_length, limit, limit)
        return limit
    return max_length


def check_target_room(max_target: int, max_length: int, model_config) -> None:
    """One line when targets of `max_target` tokens cannot fit the model: a decoder-only model holds prompt
    and target in one context of data.max_length capped by its position limit, so a target filling it
    would leave every prompt empty; an encoder-decoder's decoder holds the target alone, within its limit."""
    limit = position_limit(model_config)
    if is_encoder_decoder(model_config):
        if limit and max_target > limit:
            raise PeftbenchError(
                f"data.max_target_length={max_target} exceeds the {limit} positions of the model's decoder; "
                f"set it to at most {limit}"
            )
        return
    context = min(max_length, limit) if limit else max_length
    if max_target >= context:
        positions = f", the model's {limit} positions" if limit else ""
        raise PeftbenchError(
            f"data.max_target_length={max_target} leaves no room for the prompt in the model's context of "
            f"{context} tokens (data.max_length={max_length}{positions}); set it below {context}"
        )


def emptied(kept: list[int], cut: bool, bos_id: int | None) -> bool:
    """Whether cutting left none of a prompt's own tokens (at most its BOS): the row has lost its prompt."""
    own = kept[1:] if bos_id is not None and kept[:1] == [bos_id] else kept
    return cut and not own


def is_encoder_decoder(model_config) -> bool:
    return bool(getattr(model_config, "is_encoder_decoder", False))


def pad_info(tokenizer) -> dict:
    return {"pad_token": tokenizer.pad_token, "pad_token_is_eos": tokenizer.pad_token == tokenizer.eos_token}


def right_padding(tokenizer):
    """A copy of the tokenizer that pads on the right, whatever side it was loaded with (Llama-family
    tokenizers may pad left): training batches and target-loss batches pad after the text, so prompt
    and target positions are the ones the data was built with. Generation left-pads on its own."""
    padded = copy.copy(tokenizer)
    padded.padding_side = "right"
    return padded


class LanguageTask(Task):
    """Base for tasks that train the language-modelling head of a pretrained LM."""

    def load_model(self, source, data: TaskData, tokenizer) -> nn.Module:
        return models.load_language_model(source, data.metadata["encoder_decoder"], tokenizer.pad_token_id)

    def model_from_config(self, model_config, num_labels: int = 2) -> nn.Module:
        auto = AutoModelForSeq2SeqLM if is_encoder_decoder(model_config) else AutoModelForCausalLM
        return auto.from_config(model_config)

    def peft_task_type(self, model: nn.Module) -> TaskType:
        return TaskType.SEQ_2_SEQ_LM if model.config.is_encoder_decoder else TaskType.CAUSAL_LM

    def head_modules(self, model: nn.Module) -> tuple[str, ...]:
        # The output projection; with tied embeddings its weight is the input embedding matrix too.
        output = model.get_output_embeddings()
        return tuple(name for name, module in model.named_modules() if module is output)[:1]

    def trainer_parts(self, tokenizer, model: nn.Module, data: TaskData) -> TrainerParts:
        collator = DataCollatorForSeq2Seq(right_padding(tokenizer), label_pad_token_id=IGNORE)
        return TrainerParts(collator, MODEL_INPUTS, loss_only=True)


def target_loss(trainer, dataset: Dataset, precision: str, encoder_decoder: bool) -> tuple[dict, dict]:
    """Mean negative log-likelihood per target token (not per batch) and its perplexity; and the file of
    each test example's summed loss, target tokens and unit (the dataset's UNIT column), which the
    report's paired perplexity test reads and resamples by unit."""
    model = trainer.model.eval()
    device = trainer.args.device
    sums, counts = [], []
    # A plain loader over the whole split: under several ranks every rank scores all of it (the Trainer's
    # own loader would shard it and pad the last shard with repeated examples).
    loader = DataLoader(
        model_columns(dataset, MODEL_INPUTS),
        batch_size=trainer.args.per_device_eval_batch_size,
        collate_fn=trainer.data_collator,
    )
    start = time.perf_counter()
    with torch.inference_mode(), autocast(precision, device):
        for batch in tqdm(loader, desc="target loss", leave=False):
            batch = {k: v.to(device) for k, v in batch.items()}
            row_sums, row_counts = target_loss_rows(model, batch, encoder_decoder)
            sums += row_sums.tolist()
            counts += row_counts.tolist()
    total, count = math.fsum(sums), sum(counts)
    loss = total / count if count else float("nan")
    metrics = {
        "loss": loss,
        "perplexity": math.exp(loss) if count else None,
        "target_tokens": count,
        "eval_target_tokens_per_second": count / (time.perf_counter() - start),
    }
    units = dataset[UNIT] if UNIT in dataset.column_names else [None] * len(sums)
    rows = "".join(
        json.dumps({"index": i, UNIT: u, "nll_sum": s, "target_tokens": c}) + "\n"
        for i, (u, s, c) in enumerate(zip(units, sums, counts, strict=True))
    )
    return metrics, {TARGET_LOSSES_FILE: rows}
