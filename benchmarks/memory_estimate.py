"""inspect's training-memory estimate against a measured peak, per memory setting, on this CPU.

Each setting runs in a fresh process: a random 4-layer, 256-wide Llama classifier (the model's config only,
no download) is built and prepared by the method, the process's RSS is taken as the baseline, then three
training steps run (forward, backward, the Trainer's optimizer for `optim`) while PeakMemory samples RSS
every 5 ms. Measured = peak RSS - baseline; estimated = gradients + optimizer states + activations (the
weights are in the baseline). Run: PYTHONPATH=src python benchmarks/memory_estimate.py
"""

import json
import subprocess
import sys

SETTINGS = [
    ("full", False, "adamw_torch"),
    ("full", True, "adamw_torch"),
    ("full", False, "adamw_8bit"),
    ("lora", False, "adamw_torch"),
    ("lora", True, "adamw_torch"),
]
BATCH, SEQ = 16, 256


def one(method: str, checkpointing: bool, optim: str) -> dict:
    import gc

    import torch
    from transformers import LlamaConfig, Trainer, TrainingArguments

    from peftbench.config.config import MethodConfig
    from peftbench.efficiency.estimate import estimate_memory
    from peftbench.efficiency.memory_options import MemoryOptions
    from peftbench.measure.measure import PeakMemory
    from peftbench.methods import prepare_model
    from peftbench.tasks import TASKS, method_context

    torch.manual_seed(0)
    task = TASKS.get("classification")
    config = LlamaConfig(
        vocab_size=2000,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=SEQ,
        pad_token_id=0,
    )
    entry = MethodConfig(
        method=method, **({"r": 16, "target_modules": ["q_proj", "v_proj"]} if method == "lora" else {})
    )
    with torch.device("meta"):
        meta = task.model_from_config(config, 2)
    meta = prepare_model(meta, entry, method_context(task, meta, "", 10)).train()
    options = MemoryOptions(checkpointing, optim)
    estimate = estimate_memory(meta, task.example_batch(BATCH, SEQ), "fp32", options)
    model = task.model_from_config(config, 2)
    model = prepare_model(model, entry, method_context(task, model, "", 10)).train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    args = TrainingArguments(optim=optim, report_to="none", use_cpu=True)
    optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optimizer = optimizer_cls([p for p in model.parameters() if p.requires_grad], **kwargs)
    inputs = task.example_batch(BATCH, SEQ, device="cpu")
    gc.collect()
    with PeakMemory(interval=0.005) as memory:
        for _ in range(3):
            model(**inputs).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    measured = memory.peak_rss - memory.baseline_rss
    estimated = estimate.gradients + estimate.optimizer + estimate.activations
    return {
        "method": method,
        "gradient_checkpointing": checkpointing,
        "optim": optim,
        "estimated_mib": round(estimated / 2**20, 1),
        "activations_mib": round(estimate.activations / 2**20, 1),
        "measured_mib": round(measured / 2**20, 1),
        "ratio": round(estimated / measured, 2),
    }


if __name__ == "__main__":
    if len(sys.argv) == 4:
        print(json.dumps(one(sys.argv[1], sys.argv[2] == "1", sys.argv[3])))
        sys.exit(0)
    print(f"batch {BATCH} x {SEQ} tokens, fp32, CPU")
    for method, checkpointing, optim in SETTINGS:
        command = [sys.executable, __file__, method, "1" if checkpointing else "0", optim]
        print(
            subprocess.run(command, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
