from peftbench.methods.base import METHODS, Method
from peftbench.methods.common import Options, options_validator, train_only

METHODS.register("full")(
    Method(
        summary="every weight of the model (full fine-tuning)",
        saved_as="model",
        validate=options_validator(Options, "full"),
        prepare=lambda model, options, context: train_only(model, lambda name: True, context),
    )
)
