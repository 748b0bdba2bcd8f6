from peftbench.methods import METHODS, Method
from peftbench.methods.common import Options, options_validator, train_only

METHODS.register("head")(
    Method(
        summary="the classification head only; the pretrained body is frozen (linear probe)",
        ships="trainable",
        validate=options_validator(Options, "head"),
        prepare=lambda model, options, context: train_only(model, lambda name: False),
    )
)
