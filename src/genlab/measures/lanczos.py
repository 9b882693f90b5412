"""The extreme eigenvalue of a symmetric linear map given only v ↦ A v: Lanczos with full reorthogonalization.

Used for a conv layer's σ_max² (A = KᵀK, spectral.py) and the Hessian's top eigenvalue (A = ∇²L̂, hessian.py).
Each step applies A once to the newest Lanczos vector, orthogonalizes the result against every earlier vector
(twice: classical Gram-Schmidt is enough repeated once in floating point), and diagonalizes the small
tridiagonal matrix T_j (float64). The Ritz value θ of the chosen end of T_j's spectrum estimates the
eigenvalue; the run stops when its residual ‖A y − θ y‖ = β_j |s_j| (s_j the last entry of T_j's eigenvector)
is at most `rtol`·|θ|: some eigenvalue of A then lies within rtol·|θ| of θ. After n steps (the dimension) the
Krylov space is the whole space and θ is exact up to rounding.

Against power iteration (v ← A v / ‖A v‖): Lanczos' Krylov space contains every power-iteration iterate, so its
Ritz value is never worse, and it converges in about the square root of the steps when λ₂ is close to λ₁,
where power iteration's stopping rule (the estimate moved less than rtol) fires while it is still low.

References:
  Lanczos, "An iteration method for the solution of the eigenvalue problem of linear differential and integral
  operators", 1950; Golub & Van Loan, Matrix Computations, 4th ed., §10.1 (the residual β_j |s_j|).
"""

from __future__ import annotations

from typing import Callable, Literal

import torch

Which = Literal["largest", "magnitude"]  # the algebraically largest eigenvalue, or the one of largest |λ|


def lanczos_extreme(matvec: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, *, rtol: float,
                    max_iter: int, which: Which = "largest") -> tuple[float, int]:
    """(extreme eigenvalue of the symmetric map `matvec`, Lanczos steps used).

    Args:
      matvec: v (n,) ↦ A v (n,), A symmetric.
      start: (n,) a nonzero start vector (a seeded Gaussian draw: it must not be orthogonal to the eigenvector).
      rtol: stop when the Ritz residual is at most rtol·|θ| (rtol = 0: run to max_iter or to an invariant
        subspace).
      max_iter: at most this many steps (and never more than n); each keeps one (n,) vector.
      which: "largest" (λ_max) or "magnitude" (the λ of largest |λ|, with its sign).
    """
    n = start.numel()
    basis = [start / start.norm()]  # orthonormal Lanczos vectors q_1..q_j, (n,) each
    alphas: list[float] = []
    betas: list[float] = []
    theta, steps = 0.0, 0
    for steps in range(1, min(n, max_iter) + 1):
        q = basis[-1]
        u = matvec(q)
        alphas.append(float(q @ u))
        qs = torch.stack(basis, 1)  # (n, j)
        for _ in range(2):  # full reorthogonalization, twice is enough in floating point
            u = u - qs @ (qs.T @ u)
        beta = float(u.norm())
        t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            t = t + torch.diag(off, 1) + torch.diag(off, -1)
        evals, evecs = torch.linalg.eigh(t)  # ascending
        i = -1 if which == "largest" or evals[-1].abs() >= evals[0].abs() else 0
        theta = float(evals[i])
        if beta * abs(float(evecs[-1, i])) <= rtol * abs(theta) or beta == 0.0:
            return theta, steps
        betas.append(beta)
        basis.append(u / beta)
    return theta, steps

