"""Sphinx extension: show a TensorDict module's constructor signature in the API reference.

tensordict's module classes have a metaclass whose ``__call__(*args, **kwargs)`` autodoc takes
for the class signature (torchrl's reference page shows ``QValueActor(*args, **kwargs)``). This
replaces it with the class's own ``__init__`` signature, without annotations, as
``autodoc_typehints: none`` shows every other signature.
"""

import inspect


def constructor_signature(app, what, name, obj, options, signature, return_annotation):
    if what != "class" or signature != "(*args, **kwargs)":
        return None
    params = list(inspect.signature(obj.__init__).parameters.values())[1:]  # without self
    params = [p.replace(annotation=inspect.Parameter.empty) for p in params]
    return str(inspect.Signature(params)), None


def skip_class_valued_attributes(app, what, name, obj, skip, options):
    """A class attribute that holds a class (``torch_class = nn.LSTM``) is configuration.

    autodoc would document it as "alias of torch.nn.modules.rnn.LSTM", a cross-reference that
    ``-n`` reports as missing; rlmods defines no nested classes, so skip them all.
    """
    if what == "class" and inspect.isclass(obj):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-signature", constructor_signature)
    app.connect("autodoc-skip-member", skip_class_valued_attributes)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
