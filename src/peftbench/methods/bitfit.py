from peftbench.methods.base import METHODS, Method
from peftbench.methods.common import Options, options_validator, train_only

METHODS.register("bitfit")(
    Method(
        summary="bias terms only (BitFit, Ben Zaken et al. 2022)",
        saved_as="trainable",
        validate=options_validator(Options, "bitfit"),
        prepare=lambda model, options, context: train_only(
            model, lambda name: name.endswith(".bias"), context
        ),
    )
)
