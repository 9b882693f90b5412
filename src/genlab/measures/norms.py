"""Parameter counts and Frobenius norms of the layers, with BatchNorm folded in first (fold.py).

"Layers" are the Linear/Conv modules found by type (layers.py), each counted once; a layer's norm is that of
its weight tensor (biases are excluded; they hold no product structure). Products over layers are returned as
natural logs. Weight measures fold and measure a float64 copy whatever compute()'s dtype (`folded64`).

References:
  Neyshabur, Bhojanapalli, McAllester & Srebro, "Exploring Generalization in Deep Learning", 2017
  (https://arxiv.org/abs/1706.08947), §2 and eq. 1.
  Jiang, Neyshabur, Mobahi, Krishnan & Bengio, "Fantastic Generalization Measures and Where to Find Them",
  2020 (https://arxiv.org/abs/1912.02178), appendix C (log product and log sum of norms, distance to init).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.measures import MeasureData, cached, register_measure
from genlab.measures.fold import fold_batchnorm
from genlab.measures.layers import Op, trace, unique_ops

NEEDS_INIT_MSG = ("needs the weights at initialization: build MeasureData with init_state (the run's init.pt; "
                  "the trainer saves it when record.save_init = true)")


def folded64(model: nn.Module, data: MeasureData) -> tuple[nn.Module, list[nn.Module], torch.Tensor]:
    """(float64 BN-folded copy, its unfolded BNs, a float64 sample input), built once per compute call.

    Measures may run it (path sums swap its weights and put them back) but must leave it as they found it."""
    def make():
        x = data.sample().double()
        net, lone = fold_batchnorm(model, x, torch.float64)
        return net, lone, x

    return cached(data, ("folded64", model), make)


def weight_ops(model: nn.Module, data: MeasureData) -> list[Op]:
    """The distinct Linear/Conv layers of the BN-folded model (float64), in execution order, with input shapes.

    A BatchNorm that cannot be folded (one that does not directly follow a Linear/Conv, as in pre-activation
    blocks) is left out of these layers' weights; path norms and normalized losses refuse such models instead.
    """
    def make():
        net, _, x = folded64(model, data)
        return unique_ops(trace(net, x))

    return cached(data, ("weight_ops", model), make)


def frobenius_norms(ops: list[Op]) -> list[float]:
    """‖W_i‖_F of each layer's weight tensor (kernel entries for a conv)."""
    return [float(torch.linalg.vector_norm(op.weight.detach())) for op in ops]


@register_measure("num_params")
def num_params(model: nn.Module, data: MeasureData) -> float:
    """Number of trainable scalars (weights, biases, BN affine), before folding. Units: count."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


@register_measure("frobenius_norms")
def frobenius_norms_measure(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """‖W_i‖_F per layer (BN folded), keyed by layer index in execution order ("0", "1", ...).

    Returns:
      {str(i): ‖W_i‖_F}, in weight units.
    """
    return {str(i): v for i, v in enumerate(frobenius_norms(weight_ops(model, data)))}


@register_measure("log_prod_frobenius")
def log_prod_frobenius(model: nn.Module, data: MeasureData) -> float:
    """log ∏_i ‖W_i‖_F = Σ_i log ‖W_i‖_F (BN folded): the scale ρ of 000 ch. 4 for bias-free ReLU nets.

    Returns:
      A float in nats (natural log); −inf when a layer is all zeros (the product is 0).

    References:
      Neyshabur et al. 2017 eq. 1 (without its constants and margin); 000 ch. 4 (product of norms).
    """
    return sum(_log(v) for v in frobenius_norms(weight_ops(model, data)))


@register_measure("log_sum_sq_frobenius")
def log_sum_sq_frobenius(model: nn.Module, data: MeasureData) -> float:
    """log Σ_i ‖W_i‖_F² (BN folded). Jiang et al. 2020 eq. 42 ("sum of Frobenius") up to its depth factor.

    Returns:
      A float in nats; −inf when every layer is all zeros.
    """
    return _log(sum(v * v for v in frobenius_norms(weight_ops(model, data))))


def _log(v: float) -> float:
    """Natural log with log 0 = −inf (a zero layer makes the product 0, not an error)."""
    return math.log(v) if v > 0 else -math.inf


def _flat(state: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    return torch.cat([state[n].reshape(-1) for n in names])


@register_measure("dist_from_init")
def dist_from_init(model: nn.Module, data: MeasureData) -> float:
    """‖w − w⁰‖₂ over all trainable parameters (weights, biases, BN affine; BN is not folded, since BN's
    running statistics at init are not those of a trained net). Units: weight units.

    Raises:
      ValueError: if `data.init_state` is None.

    References:
      Nagarajan & Kolter, "Generalization in Deep Networks: The Role of Distance from Initialization", 2017
      (https://arxiv.org/abs/1901.01672); Jiang et al. 2020 eq. 40 ("dist. from init.").
    """
    if data.init_state is None:
        raise ValueError("dist_from_init " + NEEDS_INIT_MSG)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n in names if n not in data.init_state]
    if missing:
        raise ValueError(f"init_state lacks {missing[:3]}: it comes from another architecture; pass this run's "
                         "init.pt")
    w = _flat(dict(model.named_parameters()), names).detach().double()
    w0 = _flat(data.init_state, names).to(w)
    return float(torch.linalg.vector_norm(w - w0))
