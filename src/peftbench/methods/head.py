from peftbench.methods.base import METHODS, Method
from peftbench.methods.common import Options, head_parameter_names, options_validator, train_only


def _train_head(model, options, context):
    head = head_parameter_names(model, context.head_modules)
    return train_only(model, lambda name: name in head, context)


METHODS.register("head")(
    Method(
        summary="the task head only (classifier, or the LM output layer); the body is frozen",
        saved_as="trainable",
        validate=options_validator(Options, "head"),
        prepare=_train_head,
    )
)
