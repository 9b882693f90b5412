"""Models: a registry of builders `fn(in_shape, num_outputs, *, options...) -> nn.Module`.

Every model is a plain `nn.Module` (so measures, `torch.func` ensembles and checkpoints treat them alike).
`in_shape` (e.g. (5,), (1, 8, 8), (3, 32, 32)) and `num_outputs` come from the data set and the loss, so
one model spec runs on a small stand-in and on the real data. Keyword-only options are the spec schema.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from genlab.registry import Registry

ModelFn = Callable[..., nn.Module]
_MODELS: Registry[ModelFn] = Registry("model")
register_model = _MODELS.register
get_model_fn = _MODELS.get
list_models = _MODELS.names


def create_model(name: str, in_shape: tuple[int, ...], num_outputs: int, **options: Any) -> nn.Module:
    """Build the registered model `name` for inputs of shape `in_shape` and `num_outputs` outputs."""
    return get_model_fn(name)(tuple(in_shape), int(num_outputs), **options)


def count_params(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


from genlab.models import mlp, convnets, nin, vgg, resnet  # noqa: E402,F401  (registers entries)
