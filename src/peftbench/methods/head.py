from peftbench.methods.base import METHODS, Method
from peftbench.methods.common import Options, options_validator, train_only

METHODS.register("head")(
    Method(
        summary="the task head only (classifier, or the LM output layer); the body is frozen",
        ships="trainable",
        validate=options_validator(Options, "head"),
        prepare=lambda model, options, context: train_only(
            model, lambda name: name in context.head_parameters, context
        ),
    )
)
