"""Spectral norms of the layers as operators: exact SVD for dense layers, Lanczos for convolutions.

A convolution is a linear map from its (C, H, W) input to its output; its spectral norm depends on the input
size, stride, padding and dilation, not on the kernel alone. We run Lanczos on AᵀA, with A the conv and Aᵀ its
adjoint (obtained by autograd, i.e. the transposed conv with the matching output size), until the top Ritz
pair's residual is below `SPECTRAL_RTOL`. Tests compare it with the SVD of the unrolled matrix.

The operator Frobenius norm of a conv, ‖A‖_F² = Σ_out Σ_taps inside the input K², is exact too: it is the sum of
conv(1, K²) over the output (padded taps see zeros and drop out). Ratios ‖A‖_F/‖A‖_2 use it, so they are stable
ranks of the operators (≥ 1).

References:
  Sedghi, Gupta & Long, "The Singular Values of Convolutional Layers", 2019 (https://arxiv.org/abs/1805.10408).
  Jiang et al. 2020 (https://arxiv.org/abs/1912.02178), eqs. 33-35 (log product / sum of spectral norms).
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

from genlab.measures import MeasureData, cached, register_measure
from genlab.measures.lanczos import lanczos_extreme
from genlab.measures.layers import Op, conv_fn
from genlab.measures.norms import weight_ops

SPECTRAL_RTOL = 1e-9  # Lanczos stops when the Ritz residual is below this × σ_max² (bounds the relative error)
SPECTRAL_MAX_ITER = 500  # Lanczos steps at most (each stores one vector of the input's size)


def _adjoint(op: Op, y: torch.Tensor) -> torch.Tensor:
    """Aᵀ y for a batch y (B, *out_shape), via the vector-Jacobian product of the (linear) conv."""
    x = torch.zeros(y.shape[0], *op.in_shape, dtype=y.dtype, device=y.device, requires_grad=True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(op.apply(x), x, grad_outputs=y)
    return g


def conv_spectral_norm(op: Op, gen: torch.Generator | None = None, *, rtol: float = SPECTRAL_RTOL,
                       max_iter: int = SPECTRAL_MAX_ITER) -> tuple[float, int]:
    """Top singular value of a conv layer's operator at its traced input shape, by Lanczos on AᵀA.

    Lanczos with full reorthogonalization (lanczos.py) from a seeded Gaussian start (drawn in float64, then
    cast); it stops when the Ritz residual of the top Ritz pair falls below `rtol` times the Ritz value.

    Returns:
      (σ_max in weight units, Lanczos steps used).
    """
    w = op.weight.detach()
    n = math.prod(op.in_shape)
    gen = gen if gen is not None else torch.Generator(device="cpu").manual_seed(0)
    q = torch.randn(n, generator=gen, dtype=torch.float64).to(device=w.device, dtype=w.dtype)

    def ata(v: torch.Tensor) -> torch.Tensor:  # AᵀA v, (n,) → (n,)
        return _adjoint(op, op.apply(v.reshape(1, *op.in_shape))).reshape(n)

    theta, steps = lanczos_extreme(ata, q, rtol=rtol, max_iter=max_iter)
    return math.sqrt(max(theta, 0.0)), steps


def _conv_key(op: Op) -> str:
    m, w = op.module, op.weight.detach()
    geometry = (type(m).__name__, op.in_shape, m.stride, m.padding, m.dilation, m.groups, str(w.dtype),
                tuple(w.shape))
    return hashlib.sha1(repr(geometry).encode() + w.cpu().contiguous().numpy().tobytes()).hexdigest()


def spectral_norm(op: Op, data: MeasureData | None = None) -> float:
    """‖W‖₂ of a layer as an operator: exact SVD for nn.Linear, Lanczos for a conv.

    A conv's value is memoized in the compute call's cache (`data.cache`) by its kernel's bytes and its
    geometry (a pure function of both, with a fixed start), so the several measures that need it pay once.
    """
    if not op.is_conv:
        return float(torch.linalg.matrix_norm(op.weight.detach(), ord=2))
    if data is None:
        return conv_spectral_norm(op)[0]
    return cached(data, ("conv_spectral_norm", _conv_key(op)), lambda: conv_spectral_norm(op)[0])


def operator_frobenius_norm(op: Op) -> float:
    """‖A‖_F of the layer's operator: ‖W‖_F for a dense layer; for a conv, counts each kernel tap once per
    output position where it lands inside the (zero-padded) input. Exact."""
    w = op.weight.detach()
    if not op.is_conv:
        return float(torch.linalg.vector_norm(w))
    m = op.module
    ones = torch.ones(1, *op.in_shape, dtype=w.dtype, device=w.device)
    out = conv_fn(m)(ones, w * w, None, m.stride, m.padding, m.dilation, m.groups)  # (1, *out_shape)
    return float(out.sum().sqrt())


def operator_l21_rows(op: Op) -> float:
    """‖Aᵀ‖_{2,1} = Σ over output units of the ℓ2 norm of A's row (Bartlett et al. 2017's (2,1) norm). Exact."""
    w = op.weight.detach()
    if not op.is_conv:
        return float(torch.linalg.vector_norm(w, dim=1).sum())
    m = op.module
    ones = torch.ones(1, *op.in_shape, dtype=w.dtype, device=w.device)
    out = conv_fn(m)(ones, w * w, None, m.stride, m.padding, m.dilation, m.groups)
    return float(out.sqrt().sum())


def spectral_norms(model: nn.Module, data: MeasureData) -> list[float]:
    return [spectral_norm(op, data) for op in weight_ops(model, data)]


@register_measure("spectral_norms")
def spectral_norms_measure(model: nn.Module, data: MeasureData) -> dict[str, float]:
    """‖A_i‖₂ per layer as an operator at its input size (BN folded), keyed "0", "1", ... in execution order.

    Returns:
      {str(i): σ_max(A_i)}, weight units.
    """
    return {str(i): v for i, v in enumerate(spectral_norms(model, data))}


@register_measure("log_prod_spectral")
def log_prod_spectral(model: nn.Module, data: MeasureData) -> float:
    """log ∏_i ‖A_i‖₂ (nats): the Lipschitz bound of a ReLU net (Jiang et al. 2020 eq. 33, unsquared)."""
    return sum(math.log(s) for s in spectral_norms(model, data))


@register_measure("log_sum_sq_spectral")
def log_sum_sq_spectral(model: nn.Module, data: MeasureData) -> float:
    """log Σ_i ‖A_i‖₂² (nats): the log of the sum of squared operator norms over the d layers.

    Not Jiang et al. 2020's eq. 35 ("sum-of-spec", d·(∏_i ‖W_i‖₂²)^{1/d}, i.e. log d + mean_i log ‖W_i‖₂²):
    that one is `log_sum_of_spec`; by the AM-GM inequality this one is at least it.
    """
    return math.log(sum(s * s for s in spectral_norms(model, data)))


@register_measure("log_sum_of_spec")
def log_sum_of_spec(model: nn.Module, data: MeasureData) -> float:
    """log d + (1/d) Σ_i log ‖A_i‖₂² (nats): Jiang et al. 2020 eq. 35 ("sum-of-spec", d·(∏‖W_i‖₂²)^{1/d}),
    with ‖A_i‖₂ the operator norm at the layer's input size (BN folded), d the number of layers."""
    norms = spectral_norms(model, data)
    return math.log(len(norms)) + sum(2 * math.log(s) for s in norms) / len(norms)


@register_measure("sum_stable_rank")
def sum_stable_rank(model: nn.Module, data: MeasureData) -> float:
    """Σ_i ‖A_i‖_F² / ‖A_i‖₂²: the sum of the stable ranks of the layers' operators (each ≥ 1). Dimensionless.

    A_i is the layer's linear map at its input size, so for a conv ‖A_i‖_F² counts each kernel tap once per
    output position (`operator_frobenius_norm`), about (output positions)·‖K_i‖_F². That is Neyshabur et al.
    2018's Σ ‖W‖_F²/‖W‖₂² for dense layers, but not the kernel-based ratio ‖K_i‖_F²/‖A_i‖₂² of Jiang et al.'s
    "fro/spec" (eq. 37) for convs: on a ConvNet3-32 the two differ by ~70× (1,368.6 vs 19.9).

    References:
      Neyshabur, Bhojanapalli & Srebro 2018 (https://arxiv.org/abs/1707.09564), Thm. 1's Σ ‖W‖_F²/‖W‖₂².
    """
    ops = weight_ops(model, data)
    return sum(operator_frobenius_norm(op) ** 2 / spectral_norm(op, data) ** 2 for op in ops)
