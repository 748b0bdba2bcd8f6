"""Batched generation for evaluation: prompts sorted by length, left-padded, decoded as configured."""

from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from peftbench.config.config import GenerationConfig
from peftbench.training.training import autocast


@dataclass
class Generated:
    texts: list[str]
    token_counts: list[int]  # generated tokens up to and excluding the first EOS


def decode_options(config: GenerationConfig, tokenizer) -> dict:
    options = {
        "max_new_tokens": config.max_new_tokens,
        "num_beams": config.num_beams,
        "do_sample": config.do_sample,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if config.do_sample:
        options.update({k: v for k, v in (("temperature", config.temperature), ("top_p", config.top_p)) if v})
    else:  # the model's own generation_config may ask for sampling; greedy/beam means no sampling knobs
        options.update({"temperature": None, "top_p": None, "top_k": None})
    if config.repetition_penalty is not None:
        options["repetition_penalty"] = config.repetition_penalty
    if config.no_repeat_ngram_size is not None:
        options["no_repeat_ngram_size"] = config.no_repeat_ngram_size
    if config.length_penalty is not None:
        options["length_penalty"] = config.length_penalty
    return options


def left_pad(prompts: list[list[int]], pad_id: int, device) -> dict[str, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    return {"input_ids": ids, "attention_mask": mask}


def _count_until_eos(tokens: list[int], eos_id: int | None) -> int:
    return tokens.index(eos_id) if eos_id is not None and eos_id in tokens else len(tokens)


def generate(
    model: nn.Module,
    tokenizer,
    prompts: list[list[int]],
    config: GenerationConfig,
    precision: str,
    encoder_decoder: bool,
    seed: int,
    exact_length: bool = False,
) -> Generated:
    """Generate a continuation for every tokenised prompt, in the prompts' order. `exact_length`: every
    continuation is max_new_tokens long (EOS suppressed until then), for timing equal work."""
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # less padding per batch
    texts: list[str] = [""] * len(prompts)
    counts: list[int] = [0] * len(prompts)
    options = decode_options(config, tokenizer)
    if exact_length:
        options["min_new_tokens"] = config.max_new_tokens
    torch.manual_seed(seed)
    model.eval()
    batches = range(0, len(order), config.batch_size)
    for start in tqdm(batches, desc="generating", leave=False):
        chosen = order[start : start + config.batch_size]
        batch = left_pad([prompts[i] for i in chosen], tokenizer.pad_token_id, device)
        with torch.inference_mode(), autocast(precision, device):
            output = model.generate(**batch, **options)
        # Decoder-only output repeats the (padded) prompt; encoder-decoder output starts with the
        # decoder start token.
        new = output[:, 1:] if encoder_decoder else output[:, batch["input_ids"].shape[1] :]
        for index, row in zip(chosen, new.tolist(), strict=True):
            counts[index] = _count_until_eos(row, tokenizer.eos_token_id)
            texts[index] = tokenizer.decode(row[: counts[index]], skip_special_tokens=True).strip()
    return Generated(texts, counts)
