"""Label smoothing: the training loss only, on every kind of model the language tasks train."""

import pytest
import torch
from peft import PromptTuningConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM
from transformers.trainer_pt_utils import LabelSmoother

from peftbench.config.config import TrainingConfig
from peftbench.tasks.language import MODEL_INPUTS
from peftbench.training import training
from peftbench.training.label_smoothing import IGNORE, smoothed_loss


def _batch(vocab: int, seed: int = 0) -> dict:
    """Two rows: prompt positions masked, the second row right-padded."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (2, 7), generator=generator)
    labels = ids.clone()
    labels[:, :3] = IGNORE
    labels[1, 5:] = IGNORE
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@torch.no_grad()
def test_smoothed_loss_equals_the_trainers_label_smoother(tiny_gpt2):
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    batch = _batch(model.config.vocab_size)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = LabelSmoother(epsilon=0.1)({"logits": logits}, batch["labels"], shift_labels=True)
    assert smoothed_loss(logits, batch["labels"], 0.1, shift=True) == pytest.approx(expected.item(), rel=1e-6)
    # ε = 0 is the model's own cross-entropy on the target tokens
    plain = model(**batch).loss
    assert smoothed_loss(logits, batch["labels"], 0.0, shift=True) == pytest.approx(plain.item(), rel=1e-6)
    # by hand: (1 − ε)·NLL + ε·mean(−log p) over the vocabulary, per target token
    log_p = torch.log_softmax(logits[:, :-1].float(), -1)
    keep = batch["labels"][:, 1:] != IGNORE
    targets = batch["labels"][:, 1:][keep]
    nll = -log_p[keep].gather(-1, targets[:, None]).mean()
    uniform = -log_p[keep].mean()
    assert smoothed_loss(logits, batch["labels"], 0.1, shift=True) == pytest.approx(
        (0.9 * nll + 0.1 * uniform).item(), rel=1e-6
    )


def _trainer(model, tmp_path, smoothing: float):
    config = TrainingConfig(label_smoothing=smoothing, precision="fp32")
    parts = training.TrainerParts(lambda rows: rows, MODEL_INPUTS, loss_only=True)
    return training.make_trainer(model, None, config, tmp_path, 0, parts)


NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}  # the same forward in both modes


def _prompt_tuned(path):
    model = AutoModelForCausalLM.from_pretrained(path, **NO_DROPOUT)
    return get_peft_model(model, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3))


@pytest.mark.parametrize("kind", ["gpt2", "prompt_tuning", "t5"])
def test_training_loss_is_smoothed_and_evaluation_loss_is_plain(kind, tiny_gpt2, tiny_t5, tmp_path):
    if kind == "t5":
        model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5, dropout_rate=0.0)
    else:
        model = (
            _prompt_tuned(tiny_gpt2)
            if kind == "prompt_tuning"
            else AutoModelForCausalLM.from_pretrained(tiny_gpt2, **NO_DROPOUT)
        )
    batch = _batch(model.config.vocab_size)
    plain_trainer, smoothed_trainer = _trainer(model, tmp_path, 0.0), _trainer(model, tmp_path, 0.1)
    model.eval()
    with torch.no_grad():
        own = model(**batch).loss.item()  # the model's own loss (PEFT pads the virtual positions' labels)
        assert smoothed_trainer.compute_loss(model, dict(batch)).item() == pytest.approx(own, rel=1e-6)
        model.train()
        assert plain_trainer.compute_loss(model, dict(batch)).item() == pytest.approx(own, rel=1e-6)
        smoothed = smoothed_trainer.compute_loss(model, dict(batch)).item()
        smoothing = smoothed_trainer.label_smoothing
        smoothed_trainer.label_smoothing = 1e-12  # the smoothed path at ε → 0 is the model's own loss
        assert smoothed_trainer.compute_loss(model, dict(batch)).item() == pytest.approx(own, rel=1e-5)
        smoothed_trainer.label_smoothing = smoothing
        # the Trainer's count of target tokens over the accumulated batch divides the summed loss
        tokens = int((batch["labels"][:, 1:] if kind != "t5" else batch["labels"]).ne(IGNORE).sum())
        halved = smoothed_trainer.compute_loss(
            model, dict(batch), num_items_in_batch=torch.tensor(2 * tokens)
        )
        assert halved.item() == pytest.approx(smoothed / 2, rel=1e-6)
    assert smoothed != pytest.approx(own, rel=1e-9)


def test_label_smoothing_is_a_checked_training_option():
    assert TrainingConfig().label_smoothing == 0.0
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="label_smoothing"):
            TrainingConfig(label_smoothing=bad)
