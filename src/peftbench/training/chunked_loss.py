"""Language-model loss on target tokens without the batch's full vocabulary-sized logits: the model runs
with its output layer capturing the hidden states instead, and the output layer then runs on the
target positions only, a chunk of rows at a time, each chunk's logits upcast to fp32 for the loss.
Memory for logits is bounded by CHUNK_ROWS x vocabulary, whatever the batch and sequence length."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional

CHUNK_ROWS = 512
IGNORE = -100


@contextmanager
def head_inputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """The model's output layer made to record its input and return empty logits, for the duration;
    yields the list its inputs land in."""
    head = model.get_output_embeddings()
    real = head.forward
    had_own = "forward" in head.__dict__
    captured: list[torch.Tensor] = []

    def capture(hidden: torch.Tensor) -> torch.Tensor:
        captured.append(hidden)
        return hidden[..., :0]

    head.forward = capture
    try:
        yield captured
    finally:
        if had_own:
            head.forward = real
        else:
            del head.forward


def _aligned(hidden: torch.Tensor, labels: torch.Tensor, shift: bool) -> tuple[torch.Tensor, ...]:
    """Hidden states, the token each predicts and the batch row it belongs to. Prompt-tuning adapters
    prepend virtual positions, whose labels are ignored (the last one predicts the first real token, as
    in PEFT's own loss); causal models predict the next token."""
    virtual = hidden.shape[1] - labels.shape[1]
    labels = functional.pad(labels, (virtual, 0), value=IGNORE)
    if shift:
        hidden, labels = hidden[:, :-1], labels[:, 1:]
    keep = labels != IGNORE
    return hidden[keep], labels[keep], keep.nonzero()[:, 0]


def _softcap(logits: torch.Tensor, config) -> torch.Tensor:
    cap = getattr(config, "final_logit_softcapping", None)  # Gemma 2 caps logits before its loss
    return torch.tanh(logits / cap) * cap if cap else logits


def target_loss_sum(model: nn.Module, batch: dict, encoder_decoder: bool) -> tuple[float, int]:
    """(summed negative log-likelihood, target tokens) of one batch."""
    sums, counts = target_loss_rows(model, batch, encoder_decoder)
    return float(sums.sum()), int(counts.sum())


def target_loss_rows(
    model: nn.Module, batch: dict, encoder_decoder: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch row: summed negative log-likelihood of its target tokens (float64) and their count."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if encoder_decoder:
        inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=labels)
    with head_inputs(model) as captured:
        model(**inputs)
    head = model.get_output_embeddings()
    hidden, targets, rows = _aligned(captured[-1], labels, shift=not encoder_decoder)
    sums = torch.zeros(len(labels), dtype=torch.float64, device=labels.device)
    for start in range(0, len(targets), CHUNK_ROWS):
        logits = _softcap(head(hidden[start : start + CHUNK_ROWS]).float(), model.config)
        losses = functional.cross_entropy(logits, targets[start : start + CHUNK_ROWS], reduction="none")
        sums.index_add_(0, rows[start : start + CHUNK_ROWS], losses.double())
    return sums.cpu(), torch.bincount(rows, minlength=len(labels)).cpu()
