"""The stability-plasticity curve: a trained model at a fraction alpha of its update, theta0 + alpha (theta -
theta0), with no retraining.

Adapters are merged into the weights first (PEFT's merge_and_unload), so alpha scales each method's own
update in weight space: LoRA's alpha*s*BA (the same as scaling the adapter), IA3's vector moved from 1
toward l (W*(1 + alpha(l - 1))), LoHa/LoKr/OFT's merged delta. Weight-selecting methods (full, freeze,
bitfit, head) interpolate their trained tensors directly; a fresh classification head goes from its initial
to its trained values like any other weight. Prompt-learning methods (prompt, prefix, p-tuning) add inputs
that have no base equivalent to shrink toward: no curve, with that reason."""

import copy

import torch
from peft import PeftModel
from peft.utils import ModulesToSaveWrapper
from torch import nn

from peftbench.errors import PeftbenchError

PROMPT_REASON = (
    "prompt-learning method: its virtual tokens have no base-model equivalent to interpolate from "
    "(a prompt scaled toward zero is not the base model)"
)


def plain_tuned(model: nn.Module) -> tuple[nn.Module | None, str | None]:
    """A copy of the tuned model as a plain transformers model (adapter merged), or None and why."""
    if isinstance(model, PeftModel):
        if model.peft_config[model.active_adapter].is_prompt_learning:
            return None, PROMPT_REASON
        try:
            return _trained_heads_in_place(copy.deepcopy(model)).merge_and_unload(), None
        except Exception as exc:  # PEFT raises ValueError/NotImplementedError for unmergeable layers
            return None, f"the adapter cannot be merged ({type(exc).__name__}: {str(exc)[:120]})"
    return copy.deepcopy(model), None


def _trained_heads_in_place(model: PeftModel) -> PeftModel:
    """Swap each modules_to_save wrapper for its trained copy before merging: PEFT 0.21's IA3 unload
    fails on a wrapped module without a weight (BERT's pooler: "'BertPooler' object has no attribute
    'weight'")."""
    for name, module in list(model.named_modules()):
        if isinstance(module, ModulesToSaveWrapper):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.modules_to_save[module.active_adapters[0]])
    return model


class Interpolator:
    """One working model moved to any alpha between the base and the tuned weights, in place."""

    def __init__(self, base: nn.Module, tuned: nn.Module):
        base_state, self.state = base.state_dict(), tuned.state_dict()
        extra = [k for k in self.state if k not in base_state or base_state[k].shape != self.state[k].shape]
        if extra:
            raise PeftbenchError(f"tuned weights {extra[:3]} have no counterpart in the base model")
        self.model = tuned
        self.pairs = {
            key: (base_state[key], value.detach().clone())
            for key, value in self.state.items()
            if value.is_floating_point() and not torch.equal(value, base_state[key])
        }

    @property
    def changed_tensors(self) -> int:
        return len(self.pairs)

    @torch.no_grad()
    def set_alpha(self, alpha: float) -> nn.Module:
        # torch.lerp is exact at both ends: alpha 0 gives theta0, alpha 1 gives theta, bit for bit.
        for key, (start, end) in self.pairs.items():
            self.state[key].copy_(torch.lerp(start.to(end.dtype), end, alpha))
        return self.model
