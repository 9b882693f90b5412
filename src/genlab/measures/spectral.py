"""Spectral norms of the layers as operators: exact SVD for dense layers, block power iteration for convs.

A convolution is a linear map from its (C, H, W) input to its output; its spectral norm depends on the input
size, stride, padding and dilation, not on the kernel alone. We iterate with the operator A (the conv) and its
adjoint Aᵀ (obtained by autograd, i.e. the transposed conv with matching output size) on a block of
`SPECTRAL_BLOCK` vectors, with a Rayleigh–Ritz step per iteration (subspace iteration), until the top singular
value changes by less than `SPECTRAL_RTOL` relative. Tests compare it with the SVD of the unrolled matrix.

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

from genlab.measures import MeasureData, register_measure
from genlab.measures.layers import CONV_FNS, Op
from genlab.measures.norms import weight_ops

SPECTRAL_BLOCK = 8  # vectors iterated together; convergence rate σ_{k+1}/σ_1 instead of σ_2/σ_1
SPECTRAL_RTOL = 1e-10  # stop when the top singular value moves < this, relative (error ≲ 1e-7 at worst)
SPECTRAL_MAX_ITER = 2000  # a cap; near-degenerate spectra converge to the value well before the vector


def _adjoint(op: Op, y: torch.Tensor) -> torch.Tensor:
    """Aᵀ y for a batch y (B, *out_shape), via the vector-Jacobian product of the (linear) conv."""
    x = torch.zeros(y.shape[0], *op.in_shape, dtype=y.dtype, device=y.device, requires_grad=True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(op.apply(x), x, grad_outputs=y)
    return g


def conv_spectral_norm(op: Op, gen: torch.Generator | None = None, *, block: int = SPECTRAL_BLOCK,
                       rtol: float = SPECTRAL_RTOL, max_iter: int = SPECTRAL_MAX_ITER) -> tuple[float, int]:
    """Top singular value of a conv layer's operator at its traced input shape, by subspace iteration.

    Returns:
      (σ_max in weight units, iterations used).
    """
    w = op.weight.detach()
    n = math.prod(op.in_shape)
    k = min(block, n)
    gen = gen if gen is not None else torch.Generator(device="cpu").manual_seed(0)
    v = torch.randn(n, k, generator=gen, dtype=w.dtype).to(w.device)  # (n, k) in flattened input space
    sigma, it = 0.0, 0
    for it in range(1, max_iter + 1):
        v, _ = torch.linalg.qr(v)
        av = op.apply(v.T.reshape(k, *op.in_shape)).reshape(k, -1)  # (k, m) rows are A v_j
        s = float(torch.linalg.svdvals(av)[0])  # Rayleigh–Ritz: σ_max of A restricted to span(v)
        if abs(s - sigma) <= rtol * s:
            return s, it
        sigma = s
        v = _adjoint(op, av.reshape(k, *op.out_shape)).reshape(k, n).T  # AᵀA v
    return sigma, it


_CONV_NORMS: dict[str, float] = {}  # memo: key of (kernel bytes, operator geometry) → σ_max
MEMO_SIZE = 4096  # entries kept; a ResNet-56 has 55 convs


def _conv_key(op: Op) -> str:
    m, w = op.module, op.weight.detach()
    geometry = (type(m).__name__, op.in_shape, m.stride, m.padding, m.dilation, m.groups, str(w.dtype),
                tuple(w.shape))
    return hashlib.sha1(repr(geometry).encode() + w.cpu().contiguous().numpy().tobytes()).hexdigest()


def spectral_norm(op: Op) -> float:
    """‖W‖₂ of a layer as an operator: exact SVD for nn.Linear, subspace iteration for a conv.

    A conv's value is memoized by its kernel's bytes and its geometry (a pure function of both, with a fixed
    start), so the several measures that need it in one `compute` call pay for it once.
    """
    if not op.is_conv:
        return float(torch.linalg.matrix_norm(op.weight.detach(), ord=2))
    key = _conv_key(op)
    if key not in _CONV_NORMS:
        if len(_CONV_NORMS) >= MEMO_SIZE:
            _CONV_NORMS.clear()
        _CONV_NORMS[key] = conv_spectral_norm(op)[0]
    return _CONV_NORMS[key]


def operator_frobenius_norm(op: Op) -> float:
    """‖A‖_F of the layer's operator: ‖W‖_F for a dense layer; for a conv, counts each kernel tap once per
    output position where it lands inside the (zero-padded) input. Exact."""
    w = op.weight.detach()
    if not op.is_conv:
        return float(torch.linalg.vector_norm(w))
    m = op.module
    ones = torch.ones(1, *op.in_shape, dtype=w.dtype, device=w.device)
    out = CONV_FNS[type(m)](ones, w * w, None, m.stride, m.padding, m.dilation, m.groups)  # (1, *out_shape)
    return float(out.sum().sqrt())


def operator_l21_rows(op: Op) -> float:
    """‖Aᵀ‖_{2,1} = Σ over output units of the ℓ2 norm of A's row (Bartlett et al. 2017's (2,1) norm). Exact."""
    w = op.weight.detach()
    if not op.is_conv:
        return float(torch.linalg.vector_norm(w, dim=1).sum())
    m = op.module
    ones = torch.ones(1, *op.in_shape, dtype=w.dtype, device=w.device)
    out = CONV_FNS[type(m)](ones, w * w, None, m.stride, m.padding, m.dilation, m.groups)
    return float(out.sqrt().sum())


def spectral_norms(model: nn.Module, data: MeasureData) -> list[float]:
    return [spectral_norm(op) for op in weight_ops(model, data)]


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
    """log Σ_i ‖A_i‖₂² (nats). Jiang et al. 2020 eq. 35 up to its depth factor."""
    return math.log(sum(s * s for s in spectral_norms(model, data)))


@register_measure("sum_stable_rank")
def sum_stable_rank(model: nn.Module, data: MeasureData) -> float:
    """Σ_i ‖A_i‖_F² / ‖A_i‖₂² over layers' operators (each term a stable rank, ≥ 1). Dimensionless.

    References:
      Neyshabur, Bhojanapalli & Srebro 2018 (https://arxiv.org/abs/1707.09564), Thm. 1's Σ ‖W‖_F²/‖W‖₂²;
      Jiang et al. 2020 eq. 37 ("fro/spec").
    """
    ops = weight_ops(model, data)
    return sum(operator_frobenius_norm(op) ** 2 / spectral_norm(op) ** 2 for op in ops)
