"""Performance measurements: CPU vs wall time and contention, the matmul peak and FLOPs per token
(checked against torch's own FLOP counter), the chunked language-model loss (checked against the
model's own loss), and validation sized to a capped training set."""

import json
import subprocess
import sys
import time

import pytest
import torch
from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    BertConfig,
    BertForSequenceClassification,
)

from peftbench.config.config import DataConfig
from peftbench.data.splits import validation_cap
from peftbench.measure import hardware, timing
from peftbench.tasks.classification import load_labelled
from peftbench.training import chunked_loss


def _epoch(work) -> timing.EpochTime:
    start = timing.Span.now()
    work()
    return timing.EpochTime.between(start, timing.Span.now())


def _compute(cpu_seconds: float) -> None:
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass


def test_cpu_time_is_what_the_process_computed_not_how_long_it_waited():
    busy, idle = _epoch(lambda: _compute(0.2)), _epoch(lambda: time.sleep(0.3))
    assert 0.2 <= busy.cpu_seconds <= busy.wall_seconds + 0.01
    assert idle.wall_seconds >= 0.3 and idle.cpu_seconds < 0.05


SPINNER = "import time\nwhile time.process_time() < 0.4: pass"


def test_another_process_on_the_cores_is_counted_as_others():
    child = subprocess.Popen([sys.executable, "-c", SPINNER])
    epoch = _epoch(child.wait)
    assert epoch.others_cpu_seconds >= 0.4 * 0.9  # the child computed 0.4 s (and more to start up)
    assert epoch.cpu_seconds < 0.1


@pytest.mark.parametrize(
    ("others", "cores", "threads", "contended"),
    [(0.5, 2, 2, True), (0.2, 2, 2, False), (3.0, 16, 2, False), (15.0, 16, 2, True), (1.2, 2, 1, True)],
)
def test_contended_when_others_took_more_cores_than_were_free(others, cores, threads, contended):
    epochs = [timing.EpochTime(10.0, 15.0, others * 10.0)]
    report = timing.timing_report(epochs, cores, threads)
    assert report["contended"] is contended
    assert report["wall_seconds"] == 10.0 and report["cpu_seconds"] == 15.0


def test_flops_per_token_charges_frozen_weights_four_and_trained_six():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    flops = hardware.training_flops_per_token(model, 10)
    assert flops == {"forward": 2 * (12 + 8), "training": 2 * (12 + 8) + 2 * 12 + 4 * 8}


def _counted_training_flops(model: nn.Module, batch: dict) -> int:
    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("lora", [False, True])
def test_flops_per_token_match_torchs_flop_counter(lora):
    config = BertConfig(
        vocab_size=50, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256
    )
    config._attn_implementation = "eager"  # attention as two counted matrix products
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    if lora:
        model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"]))
    batch_size, length = 4, 128  # long enough that attention is a quarter of the products
    batch = {
        "input_ids": torch.randint(0, 50, (batch_size, length)),
        "labels": torch.zeros(batch_size).long(),
    }
    counted = _counted_training_flops(model, batch) / (batch_size * length)
    estimated = hardware.training_flops_per_token(model, length)["training"]
    # The pooler and classifier run on one token per sequence, which the per-token estimate counts for
    # every token; the lowest layer needs no input gradient, which the estimate counts: both small.
    assert estimated == pytest.approx(counted, rel=0.1)


def test_peak_is_measured_once_and_cached_per_precision(monkeypatch, tmp_path):
    monkeypatch.setenv("PEFTBENCH_CACHE", str(tmp_path))
    calls = []

    def fake_measure(device, precision, size=None):
        calls.append(precision)
        return {"peak_flops": 1e9 * len(calls)}

    monkeypatch.setattr(hardware, "measure_peak", fake_measure)
    cpu = torch.device("cpu")
    assert hardware.matmul_peak(cpu, "fp32")["peak_flops"] == 1e9
    assert hardware.matmul_peak(cpu, "fp32")["peak_flops"] == 1e9
    assert hardware.matmul_peak(cpu, "bf16")["peak_flops"] == 2e9
    assert calls == ["fp32", "bf16"]


def test_measured_peak_is_the_rate_of_a_timed_matrix_product():
    """Compared per CPU second (times the threads), which other processes on the machine do not change."""
    peak = hardware.measure_peak(torch.device("cpu"), "fp32", size=256)
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    start = time.process_time()
    for _ in range(50):
        torch.mm(a, b)
    rate = 50 * 2 * 256**3 / (time.process_time() - start) * torch.get_num_threads()
    assert rate / 2 < peak["peak_flops"] < rate * 2
    assert peak["peak_flops"] >= peak["wall_flops"]
    assert peak["precision"] == "fp32" and "256x256" in peak["method"]


def test_utilisation_is_achieved_flops_over_the_peak(monkeypatch):
    monkeypatch.setattr(hardware, "matmul_peak", lambda device, precision: {"peak_flops": 1000.0})
    model = nn.Sequential(nn.Linear(3, 4))  # 6 * 12 = 72 training FLOPs per token
    report = hardware.utilisation(model, 5.0, 10, "fp32", "cpu")
    assert report["achieved_flops"] == 360.0 and report["utilisation"] == 0.36


def _lm_batch(model, vocab: int, encoder_decoder: bool = False) -> dict:
    torch.manual_seed(1)
    ids = torch.randint(3, vocab, (3, 9))
    labels = ids.clone()
    labels[0, 5:] = chunked_loss.IGNORE  # a padded row
    labels[1, :2] = chunked_loss.IGNORE  # a prompt
    mask = (labels != chunked_loss.IGNORE).long() if not encoder_decoder else torch.ones_like(ids)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.mark.parametrize("kind", ["llama", "gpt2", "t5", "prompt-tuning"])
def test_chunked_loss_equals_the_models_own_loss(kind, tiny_llama_lm, tiny_gpt2, tiny_t5, monkeypatch):
    monkeypatch.setattr(chunked_loss, "CHUNK_ROWS", 4)  # several chunks per batch
    path = {"llama": tiny_llama_lm, "gpt2": tiny_gpt2, "t5": tiny_t5, "prompt-tuning": tiny_llama_lm}[kind]
    auto = AutoModelForSeq2SeqLM if kind == "t5" else AutoModelForCausalLM
    model = auto.from_pretrained(path).eval()
    if kind == "prompt-tuning":
        model = get_peft_model(model, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3))
    batch = _lm_batch(model, model.config.vocab_size, kind == "t5")
    rows = []
    head = model.get_output_embeddings()
    head.register_forward_hook(lambda module, args, out: rows.append(args[0].shape))
    with torch.no_grad():
        expected = float(model(**batch).loss)
        rows.clear()
        summed, tokens = chunked_loss.target_loss_sum(model, batch, kind == "t5")
    shift = {"t5": 0, "prompt-tuning": 0}.get(kind, 1)  # the last virtual token predicts the first
    assert tokens == int((batch["labels"][:, shift:] != chunked_loss.IGNORE).sum())
    assert summed / tokens == pytest.approx(expected, rel=1e-5)
    assert max(shape[0] for shape in rows[1:]) <= 4 and rows[0][-1] == head.in_features
    assert "forward" not in head.__dict__  # the output layer is itself again
    if kind in ("llama", "gpt2"):  # each row's own loss: the same model on that row alone
        with torch.no_grad():
            sums, counts = chunked_loss.target_loss_rows(model, batch, False)
            for row in range(3):
                alone = {key: value[row : row + 1] for key, value in batch.items()}
                assert float(sums[row]) / int(counts[row]) == pytest.approx(
                    float(model(**alone).loss), rel=1e-5
                )
        assert counts.tolist() == [4, 7, 8] and float(sums.sum()) == pytest.approx(summed, rel=1e-9)


def test_validation_is_sized_to_the_training_cap(reviews_csv):
    config = DataConfig(dataset=str(reviews_csv), max_train_samples=9, validation_fraction=0.25)
    assert validation_cap(config) == 3  # 9 training rows are 75%: 3 more make the 25%
    splits, _, _ = load_labelled(config)
    assert len(splits["train"]) == 9 and len(splits["validation"]) == 3
    assert validation_cap(config.model_copy(update={"max_eval_samples": 5})) == 5
    assert validation_cap(DataConfig(dataset=str(reviews_csv))) is None


def test_peak_cache_file_is_json_under_the_peftbench_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PEFTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(hardware, "measure_peak", lambda device, precision: {"peak_flops": 7.0})
    hardware.matmul_peak(torch.device("cpu"), "fp32")
    (cached,) = (tmp_path / "hardware").glob("*fp32.json")
    assert json.loads(cached.read_text()) == {"peak_flops": 7.0}
