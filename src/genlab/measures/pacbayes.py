"""PAC-Bayes flatness (Jiang et al. 2020): the largest noise scale the training loss tolerates.

    σ* = max { σ : E_u[L̂(w + u)] − L̂(w) ≤ target },   u ~ N(0, σ² I)       (σ a standard deviation)

found by bracketing (doubling) and ITP root finding (`largest_root`: bisection's worst case, far fewer tests on a
smooth rise; within bisection's final bracket of the same depth). The expectation is a Monte Carlo mean over
`mc_samples` fixed draws z (antithetic pairs z, −z, which cancel the gradient term exactly), with u = σ z: the
same draws for every σ, so the estimate is a fixed function of σ (continuous for the loss, a staircase with
steps of 1/(m·draws) for the 0-1 error) and the search is deterministic given the generator. L̂ is the 0-1
error by default (Jiang et al.'s "accuracy deviation" of 0.1) or the training loss (`quantity="loss"`).

Speed without changing the value: the draws are made in float64 on the CPU from `seed` and cast (so f32 and
f64 see the same noise); for the 0-1 error the search only needs whether the mean rise is ≤ target, so it
stops adding draws once the running sum of non-negative terms, summed in the same order, is already above it.
On CUDA the draws' losses are computed `DRAW_CHUNK` at a time by `torch.func.vmap` over the stacked perturbed
weights; on a CPU one by one, which measured faster with one thread (ConvNet3-32, 512 points, 8 draws: 0.8-1.7 s
looped, 1.7-2.0 s by vmap; by vmap 1.4x faster only with 2 threads). Stopping within a draw, 128 rows at a time,
saved nothing and cost the smaller blocks' speed: after the bracket every test sits at the crossing, so it
reads nearly every row anyway (both searches, ConvNet3-32, 512 points, 2 threads, medians of 3 interleaved:
4.60 s by whole draws, 6.05 s by 128 rows). For the same reason the early exit saves little over reading every
draw: pacbayes_flatness takes 2.11 s here and 2.00 s in the old package that reads all 8 draws at every test
(medians of 5 interleaved) — the forward passes at the tested σ are this measure's cost.

How precise: σ* is a Monte Carlo estimate, and its spread over the draws' seed is far wider than the search's
bracket. On the NiN of benchmarks/bench_measures_jiang.py (512 points, 8 draws, seeds 0-7) σ* has a relative
standard deviation of 9.7 % (plain) and 5.5 % (magnitude-aware); the default `search_depth` of 8 puts σ* within
2^-9 = 0.2 % of the crossing of the mean for the drawn seed, 1/28 of the smaller spread. (Depth 15, the default
before, cost 15 and 14 tests there where depth 8 costs 10 and 8, to resolve steps of one error in 4,096 that
another seed moves by 5-10 %.) `deviation_tol` > 0 adds the stopping rule of Jiang et al.'s code: the search
ends at the first tested σ whose mean rise is within `deviation_tol` of the target (theirs: 0.01 of 0.1), so
the answer is any σ with |E_u L̂(w + u) − L̂(w) − target| ≤ deviation_tol that the search meets first.

The magnitude-aware variant perturbs each weight in proportion to its size: u_i ~ N(0, σ'² w_i² + ε²), a
variance; ε = `magnitude_eps`. (Jiang et al.'s public code passes this variance as the standard deviation
of torch.normal; here the standard deviation is its square root.)

The bounds (Jiang et al. 2020 eqs. 47-50, their units), with w⁰ the init (`_init`) or 0 (`_orig`), ω the number
of parameters and m the number of training points used:
    plain:     ‖w − w⁰‖² / (4σ²) + log(m/σ) + 10
    magnitude: ¼ Σ_i log((ε² + (σ'² + 1)‖w − w⁰‖²/ω) / (ε² + σ'² (w_i − w⁰_i)²)) + log(m/σ') + 10

References:
  Jiang, Neyshabur, Mobahi, Krishnan & Bengio, "Fantastic Generalization Measures and Where to Find Them", 2020
  (https://arxiv.org/abs/1912.02178), §C.3 (eqs. 47-52).
  Dziugaite & Roy, "Computing Nonvacuous Generalization Bounds for Deep (Stochastic) Neural Networks", 2017
  (https://arxiv.org/abs/1703.11008).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.func import vmap

from genlab.measures import MeasureData, register_measure
from genlab.registry import later_field
from genlab.measures.objective import Params, error_rate, loss_fn, params_of, train_subset

QUANTITIES = ("error", "loss")
BOUND_CONSTANT = 10.0  # the "+ 10" of Jiang et al.'s bounds (their stand-in for log(1/δ) terms)
BRACKET_DOUBLINGS = 40  # σ beyond start · 2^±40 without crossing the target: the search gives up
DRAW_CHUNK = {"cpu": 1, "cuda": 8}  # draws evaluated together by vmap (1: a plain loop), per device type


@dataclass(frozen=True)
class FlatnessConfig:
    target: float = 0.1  # allowed rise of E_u[L̂(w + u)] over L̂(w), in L̂'s units (error rate by default)
    quantity: str = "error"  # "error": 0-1 loss (Jiang et al.); "loss": the training loss
    mc_samples: int = 8  # Monte Carlo draws of u, in antithetic pairs (so rounded up to even)
    search_depth: int = 8  # σ* to relative precision 2^-8 (bisection's steps; ITP takes as many or fewer tests)
    # > 0: also stop at a σ whose mean rise is within this of target (Jiang et al.'s code: 0.01); a later field
    deviation_tol: float = later_field(0.0)  # (left out of a run's config at 0: runs stored before keep their ids)
    sigma_start: float = 0.1  # first guess; halved or doubled until [σ, 2σ] brackets σ*
    magnitude_eps: float = 1e-3  # ε of the magnitude-aware variant (a standard deviation)
    max_samples: int | None = 2048  # L̂ on this fixed prefix of the training set (None: all of it)
    seed: int = 0  # for the noise draws


def _objective(model: nn.Module, data: MeasureData, cfg: FlatnessConfig) -> Callable[[Params], torch.Tensor]:
    """L̂ as a function of the weights: 0-d for plain params, (D,) under vmap over stacked (D, ...) params."""
    if cfg.quantity not in QUANTITIES:
        raise ValueError(f"FlatnessConfig.quantity must be one of {QUANTITIES}, got {cfg.quantity!r}")
    per_sample = error_rate if cfg.quantity == "error" else None
    return loss_fn(model, data, *train_subset(data, cfg.max_samples), per_sample=per_sample)


def draws(w: Params, cfg: FlatnessConfig) -> Params:
    """mc_samples noise directions z ~ N(0, I) as antithetic pairs, stacked: {name: (D, *shape)}.

    Drawn in float64 on the CPU from cfg.seed, then cast to the weights' dtype and device, so a seed gives the
    same draws whatever the dtype (up to its rounding)."""
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in w}
    for _ in range(max(1, math.ceil(cfg.mc_samples / 2))):
        for k, v in w.items():
            z = torch.randn(v.shape, generator=gen, dtype=torch.float64).to(v)
            out[k] += [z, -z]
    return {k: torch.stack(zs) for k, zs in out.items()}


def largest_true(ok: Callable[[float], bool], start: float, depth: int, fail: str) -> float:
    """The largest σ with ok(σ), for a predicate that holds below some crossing and fails above it.

    Halves or doubles `start` until [σ, 2σ] brackets the crossing, then bisects `depth` times, so the
    result has relative precision 2^-depth whatever its scale. Raises ValueError(`fail`) without a crossing
    in start · 2^±BRACKET_DOUBLINGS. (The searches use `largest_root`, which needs fewer tests; this is the
    plain bisection they are checked against.)
    """
    lo = start
    grow = ok(lo)
    for _ in range(BRACKET_DOUBLINGS):
        nxt = lo * 2 if grow else lo / 2
        if ok(nxt) != grow:
            lo = lo if grow else nxt
            break
        lo = nxt
    else:
        raise ValueError(fail)
    hi = 2 * lo
    for _ in range(depth):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return 0.5 * (lo + hi)


def bracket(g: Callable[[float], float], start: float, fail: str,
            gtol: float = 0.0) -> tuple[float, float, float, float]:
    """(a, g(a), b, g(b)) with g(a) ≤ 0 < g(b) and b = 2a: `start` halved or doubled, the same brackets and
    tests as `largest_true`'s; (x, g(x), x, g(x)) for the first x tested with |g(x)| ≤ gtol when gtol > 0.
    Raises ValueError(`fail`) without a sign change in start · 2^±BRACKET_DOUBLINGS."""
    lo, g_lo = start, g(start)
    if _within(g_lo, gtol):
        return lo, g_lo, lo, g_lo
    grow = g_lo <= 0
    for _ in range(BRACKET_DOUBLINGS):
        nxt = lo * 2 if grow else lo / 2
        g_nxt = g(nxt)
        if _within(g_nxt, gtol):
            return nxt, g_nxt, nxt, g_nxt
        if (g_nxt <= 0) != grow:
            return (lo, g_lo, nxt, g_nxt) if grow else (nxt, g_nxt, lo, g_lo)
        lo, g_lo = nxt, g_nxt
    raise ValueError(fail)


def _within(value: float, gtol: float) -> bool:
    """The tolerance stop: |g| ≤ gtol, only when gtol > 0 (at 0, an exact root g = 0 is a pass, as in bisection)."""
    return gtol > 0 and abs(value) <= gtol


def itp(g: Callable[[float], float], a: float, b: float, g_a: float, g_b: float, eps: float,
        kappa2: float = 2.0, n0: int = 1, gtol: float = 0.0) -> float:
    """ITP root finding (Oliveira & Takahashi 2020) on a bracket with g(a) ≤ 0 < g(b): the midpoint of a final
    bracket of width ≤ 2·eps that still has g ≤ 0 at its left end and g > 0 at its right — or, when gtol > 0,
    the first x tested with |g(x)| ≤ gtol.

    Each step Interpolates (regula falsi), Truncates toward the midpoint (by κ1·(b − a)^κ2, κ1 = 0.2/(b₀ − a₀))
    and Projects onto a ball around the midpoint whose radius keeps the worst case at ⌈log2((b₀−a₀)/2ε)⌉ + n0
    tests: bisection's count plus n0, however wrong the interpolation is (a step function, a lower bound of
    g(b) from an early exit, a non-finite value: then the midpoint). On a smooth g it converges superlinearly.

    References: Oliveira & Takahashi, "An Enhancement of the Bisection Method Average Performance Preserving
    Minmax Optimality", ACM TOMS 47(1), 2020, https://doi.org/10.1145/3423597 (Algorithm 1).
    """
    kappa1 = 0.2 / (b - a)
    n_max = max(0, math.ceil(math.log2((b - a) / (2 * eps)))) + n0
    j = 0
    while b - a > 2 * eps and j < n_max:  # n_max bounds it in exact arithmetic; here against rounding too
        mid = 0.5 * (a + b)
        radius = eps * 2.0 ** (n_max - j) - 0.5 * (b - a)
        delta = kappa1 * (b - a) ** kappa2
        finite = math.isfinite(g_a) and math.isfinite(g_b) and g_b != g_a
        x_f = (g_b * a - g_a * b) / (g_b - g_a) if finite else mid  # regula falsi
        side = math.copysign(1.0, mid - x_f)
        x_t = x_f + side * delta if delta <= abs(mid - x_f) else mid  # truncation
        x = x_t if abs(x_t - mid) <= radius else mid - side * radius  # projection
        x = min(max(x, a), b)
        g_x = g(x)
        if _within(g_x, gtol):
            return x
        if g_x <= 0:
            a, g_a = x, g_x
        else:
            b, g_b = x, g_x
        j += 1
    return 0.5 * (a + b)


def largest_root(g: Callable[[float], float], start: float, depth: int, fail: str, gtol: float = 0.0) -> float:
    """The largest σ with g(σ) ≤ 0 for a g that crosses 0 upward once: `bracket` from `start`, then `itp` to the
    precision `largest_true` reaches after `depth` bisections of [a, 2a] (a final bracket of width a·2^-depth),
    in as many tests or fewer. Where g crosses more than once within [a, 2a], either search returns one of
    its crossings. gtol > 0: the first σ tested with |g(σ)| ≤ gtol ends the search (and is returned)."""
    a, g_a, b, g_b = bracket(g, start, fail, gtol)
    if a == b:
        return a
    return itp(g, a, b, g_a, g_b, eps=(b - a) * 2.0 ** -(depth + 1), gtol=gtol)


def _no_crossing(start: float, target: float) -> str:
    return (f"no noise scale in [{start * 2.0 ** -BRACKET_DOUBLINGS:g}, {start * 2.0 ** BRACKET_DOUBLINGS:g}] "
            f"brings the rise of the loss to {target}; change FlatnessConfig.target or quantity, or check the "
            "model depends on its weights")


def largest_sigma(deviation: Callable[[float], float], target: float, start: float, depth: int) -> float:
    """The largest σ with deviation(σ) ≤ target, for a deviation that grows with σ (`largest_root`)."""
    return largest_root(lambda s: deviation(s) - target, start, depth, _no_crossing(start, target))


Noise = Callable[[str, float], "torch.Tensor | float"]  # (parameter name, σ) → the standard deviation of u


def flatness_sigma(model: nn.Module, data: MeasureData, cfg: FlatnessConfig, magnitude: bool) -> float:
    """σ* (plain) or σ'* (magnitude-aware) of the module docstring."""
    w = params_of(model)
    z = draws(w, cfg)
    eps2 = cfg.magnitude_eps ** 2

    def std(k: str, sigma: float) -> torch.Tensor | float:
        return torch.sqrt(sigma ** 2 * w[k] ** 2 + eps2) if magnitude else sigma

    chunk = DRAW_CHUNK.get(next(iter(w.values())).device.type, 1)
    excess = _mean_excess(model, data, cfg, w, z, std, chunk)
    return largest_root(excess, cfg.sigma_start, cfg.search_depth, _no_crossing(cfg.sigma_start, cfg.target),
                        cfg.deviation_tol)


def _mean_excess(model: nn.Module, data: MeasureData, cfg: FlatnessConfig, w: Params, z: Params, std: Noise,
                 chunk: int) -> Callable[[float], float]:
    """σ ↦ E_u L̂(w + u) − L̂(w) − target (≤ 0: σ passes), the mean over the draws, `chunk` draws per vmap call.
    For the 0-1 error, once the running sum alone is past target + deviation_tol the rest is not read: the sign
    is known (> 0, and not within the tolerance), and the value returned is the mean over the draws read so
    far, minus base and target — an estimate for the root finder's interpolation (its worst case does not
    depend on it), > deviation_tol like the full mean."""
    f = _objective(model, data, cfg)
    batched = vmap(f) if chunk > 1 else lambda p: f({k: v[0] for k, v in p.items()})[None]
    base, n_draws = float(f(w)), len(next(iter(z.values())))
    can_stop = cfg.quantity == "error"  # 0-1 losses are ≥ 0, so a running sum only grows
    if not (cfg.deviation_tol >= 0 and math.isfinite(cfg.deviation_tol)):
        raise ValueError(f"FlatnessConfig.deviation_tol must be a finite number ≥ 0, got {cfg.deviation_tol!r}")
    stop_at = cfg.target + cfg.deviation_tol

    def excess(sigma: float) -> float:
        total = 0.0
        for i in range(0, n_draws, chunk):
            values = batched({k: w[k] + std(k, sigma) * z[k][i:i + chunk] for k in w})
            for j, v in enumerate(values.tolist(), start=i + 1):  # in draw order: the same float as a loop
                total += v
                if can_stop and total / n_draws - base > stop_at:  # checked per draw: chunking changes nothing
                    return total / j - base - cfg.target  # the mean of the j draws read, ≥ the bound, > 0
        rise = total / n_draws - base - cfg.target
        return rise if rise == rise else math.inf  # NaN (non-finite outputs): fails the test, as before

    return excess


def _mean_test(model: nn.Module, data: MeasureData, cfg: FlatnessConfig, w: Params, z: Params, std: Noise,
               chunk: int) -> Callable[[float], bool]:
    """σ ↦ (E_u L̂(w + u) − L̂(w) ≤ target): the sign of `_mean_excess`."""
    excess = _mean_excess(model, data, cfg, w, z, std, chunk)
    return lambda sigma: excess(sigma) <= 0


def _flat_diff(model: nn.Module, data: MeasureData, init: bool) -> torch.Tensor | None:
    """w − w⁰ flattened over trainable parameters (w⁰ = init weights, or 0); None if init is asked but absent."""
    w = params_of(model)
    if init and data.init_state is None:
        return None
    ref = data.init_state if init else {k: torch.zeros_like(v) for k, v in w.items()}
    return torch.cat([(w[k] - ref[k].to(w[k])).reshape(-1) for k in w])


def _plain_bound(diff: torch.Tensor | None, sigma: float, m: int) -> float:
    if diff is None:
        return math.nan
    return float(diff.pow(2).sum()) / (4 * sigma ** 2) + math.log(m / sigma) + BOUND_CONSTANT


def _mag_bound(diff: torch.Tensor | None, sigma: float, m: int, eps: float) -> float:
    if diff is None:
        return math.nan
    num = eps ** 2 + (sigma ** 2 + 1) * float(diff.pow(2).sum()) / diff.numel()
    den = eps ** 2 + sigma ** 2 * diff.pow(2)
    return 0.25 * float(torch.log(num / den).sum()) + math.log(m / sigma) + BOUND_CONSTANT


def _m(data: MeasureData, cfg: FlatnessConfig) -> int:
    return len(train_subset(data, cfg.max_samples)[0])


@register_measure("pacbayes_flatness")
def pacbayes_flatness(model: nn.Module, data: MeasureData, *,
                      cfg: FlatnessConfig = FlatnessConfig()) -> dict[str, float]:
    """Jiang et al. 2020's PAC-Bayes flatness with u ~ N(0, σ²I) (eqs. 47-48, 51).

    Returns:
      sigma: σ* (a standard deviation, weight units); flatness: 1/σ*²;
      bound_orig, bound_init: the plain bound around 0 and around the init (nan without init_state).

    Examples:
      >>> pacbayes_flatness(model, data, cfg=FlatnessConfig(quantity="loss", target=0.05))["sigma"]
    """
    sigma, m = flatness_sigma(model, data, cfg, magnitude=False), _m(data, cfg)
    return {"sigma": sigma, "flatness": 1 / sigma ** 2,
            "bound_orig": _plain_bound(_flat_diff(model, data, False), sigma, m),
            "bound_init": _plain_bound(_flat_diff(model, data, True), sigma, m)}


@register_measure("pacbayes_mag_flatness")
def pacbayes_mag_flatness(model: nn.Module, data: MeasureData, *,
                          cfg: FlatnessConfig = FlatnessConfig()) -> dict[str, float]:
    """The magnitude-aware variant, u_i ~ N(0, σ'² w_i² + ε²) (Jiang et al. 2020 eqs. 49-50, 52).

    Returns:
      sigma: σ'* (dimensionless: relative to |w_i|); flatness: 1/σ'*²;
      bound_orig, bound_init: the magnitude-aware bound around 0 and around the init (nan without init_state).
    """
    sigma, m, eps = flatness_sigma(model, data, cfg, magnitude=True), _m(data, cfg), cfg.magnitude_eps
    return {"sigma": sigma, "flatness": 1 / sigma ** 2,
            "bound_orig": _mag_bound(_flat_diff(model, data, False), sigma, m, eps),
            "bound_init": _mag_bound(_flat_diff(model, data, True), sigma, m, eps)}
