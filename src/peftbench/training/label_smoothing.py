"""Label smoothing of the training loss only. Evaluation (validation loss, early stopping, test loss and
perplexity) keeps the plain cross-entropy, so a smoothed run's losses compare with an unsmoothed run's.

The Trainer's own label_smoothing_factor is not used: it smooths the evaluation loss as well, and it
scores logits against labels position by position, which fails where a prompt-tuning adapter prepends
virtual positions and where an encoder-decoder model needs its decoder inputs built from the labels."""

import torch
from torch.nn import functional

IGNORE = -100


def smoothed_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    epsilon: float,
    shift: bool,
    num_items: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Cross-entropy with label smoothing ε: (1 − ε)·NLL + ε·(mean of −log p over the classes), torch's
    definition and the Trainer's LabelSmoother's. Language models: over the labelled positions (the
    virtual positions of prompt tuning, which logits have and labels lack, are skipped; `shift`: causal
    models predict the next token), summed and divided by `num_items` (the Trainer's count of target
    tokens over the accumulated batch) or else averaged. Classification: one label per example."""
    if logits.dim() == 2:
        return functional.cross_entropy(logits.float(), labels, label_smoothing=epsilon)
    labels = functional.pad(labels, (logits.shape[1] - labels.shape[1], 0), value=IGNORE)
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    keep = labels != IGNORE
    total = functional.cross_entropy(
        logits[keep].float(), labels[keep], label_smoothing=epsilon, reduction="sum"
    )
    count = num_items if num_items is not None else keep.sum().clamp(min=1)
    return total / (count.to(total.device) if torch.is_tensor(count) else count)


class SmoothedTraining:
    """A Trainer mixin: training steps take the label-smoothed loss, evaluation the model's own."""

    def __init__(self, *args, label_smoothing: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_smoothing = label_smoothing

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not (self.label_smoothing and model.training):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        unwrapped = self.accelerator.unwrap_model(model)
        encoder_decoder = bool(getattr(unwrapped.config, "is_encoder_decoder", False))
        if encoder_decoder:
            inputs["decoder_input_ids"] = unwrapped.prepare_decoder_input_ids_from_labels(labels=labels)
        outputs = model(**inputs)
        loss = smoothed_loss(
            outputs.logits, labels, self.label_smoothing, not encoder_decoder, num_items_in_batch
        )
        return (loss, outputs) if return_outputs else loss
