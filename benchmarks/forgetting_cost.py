"""What forgetting and the alpha curve add to one run of each `demo --quick` experiment (docs/forgetting.md).

No training: the cost does not depend on the weights' values, so each method's trainable tensors are
nudged instead. Prints, per run, the seconds of `retention.measure` (forgetting before/after and the curve)
next to one test evaluation of the same model, measured in the same process.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/forgetting_cost.py
"""

import copy
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from peftbench.execution.demo import DEMOS, demo_config
from peftbench.forgetting import retention
from peftbench.grid.grid import expand_methods
from peftbench.inputs.run_inputs import method_context_for, prepare_inputs
from peftbench.methods import prepare_model
from peftbench.training.training import make_trainer


def nudged(inputs, entry):
    model = prepare_model(copy.deepcopy(inputs.base_model), entry, method_context_for(inputs, entry))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 1e-3)
    return model


def trainer(inputs, model, folder):
    parts = inputs.task.trainer_parts(inputs.tokenizer, model, inputs.data)
    return make_trainer(model, inputs.tokenizer, inputs.config.training, folder, inputs.config.seed, parts)


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="forgetting-cost-"))
    for name in DEMOS:
        config = demo_config(name, True, str(scratch / "runs"))
        inputs = prepare_inputs(config)
        for entry in expand_methods(config.methods):
            model = nudged(inputs, entry)
            started = time.perf_counter()
            inputs.task.evaluate(model, trainer(inputs, model, scratch / "trainer"), inputs)
            test_seconds = time.perf_counter() - started
            started = time.perf_counter()
            measured = retention.measure(inputs, model)
            lost, curve = measured["forgetting"], measured["interpolation_info"]
            row = {
                "run": f"{config.name}/{entry.run_name}",
                "added_seconds": round(time.perf_counter() - started, 1),
                "forgetting_seconds": round(lost["seconds"], 1) if lost else None,
                "curve_seconds": round(curve.get("seconds", 0), 1),
                "test_evaluation_seconds": round(test_seconds, 1),
                "alphas": [p["alpha"] for p in measured["interpolation"] or []],
                "validation_samples": curve.get("samples"),
                "forgetting_tokens": lost and lost["tokens"],
                "load_average": round(os.getloadavg()[0], 1),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
