"""Tabulated cubic B-spline pair potential, the pairwise MS-CG baseline.

``U(r) = sum_k c_k B_k(r)`` on uniform cardinal cubic B-splines whose last
support ends at the cutoff, so ``U``, ``U'`` and ``U''`` vanish there (C2)
without a switching function, and ``U`` is linear in the coefficients: force
matching with it is a linear least-squares problem whose design matrix comes
from :func:`cubic_bspline_basis`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jaxtyping import Array, Float

from cgjax.potentials._base import PairTerm

__all__ = ["SplinePair", "cubic_bspline_basis", "default_config"]


def _cardinal_cubic(x: jax.Array) -> jax.Array:
    """The cardinal cubic B-spline on knots ``0..4`` (C2, piecewise cubic)."""
    t = x - 2.0
    a = jnp.abs(t)
    # Even powers in t, not |t|: no derivative at the knot x = 2 hinges on how
    # autodiff treats abs at 0.
    inner = 2.0 / 3.0 - t * t + 0.5 * t * t * a
    outer = (2.0 - a) ** 3 / 6.0
    return jnp.where(a < 1.0, inner, jnp.where(a < 2.0, outer, 0.0))


# B_0..B_3 and their slopes (in units of 1/h) at r_min, where x_k = 3 - k.
_AT_R_MIN = np.array([1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0, 0.0])
_SLOPE_AT_R_MIN = np.array([-0.5, 0.0, 0.5, 0.0])


def cubic_bspline_basis(
    r: Float[Array, "*batch"], *, n_basis: int, r_min: float, cutoff: float
) -> Float[Array, "*batch n_basis"]:
    """The spline basis ``B_k(r)``, ``k = 0..n_basis-1`` (dimensionless).

    Uniform cardinal cubic B-splines with knot spacing
    ``h = (cutoff - r_min) / n_basis``, knots at ``r_min + (j - 3) h`` for
    ``j = 0..n_basis + 3`` (scipy ``BSpline`` order 3 on that knot vector), so
    ``B_k`` has support ``[r_min + (k - 3) h, r_min + (k + 1) h]``: the last
    one ends at ``cutoff`` and every function vanishes there with two
    derivatives. On ``[r_min, cutoff - 3 h]`` all four local functions are
    present and they sum to one. Below ``r_min`` each function is continued
    linearly, ``B(r_min) + B'(r_min) (r - r_min)`` (C1, and still linear in
    the coefficients); at and beyond ``cutoff`` it is 0.

    Args:
      r: distances (nm), any shape.
      n_basis: number of basis functions ``K``.
      r_min: start of the tabulated range (nm).
      cutoff: end of the range (nm).

    Returns:
      ``[..., K]`` basis values; ``U(r) = basis(r) @ c``.
    """
    r = jnp.asarray(r)
    if not jnp.issubdtype(r.dtype, jnp.floating):
        r = r.astype(jnp.result_type(float))
    h = (cutoff - r_min) / n_basis
    x = (r[..., None] - r_min) / h - (jnp.arange(n_basis, dtype=r.dtype) - 3.0)
    b0 = np.zeros(n_basis)
    b0[:4] = _AT_R_MIN[:n_basis]
    slope = np.zeros(n_basis)
    slope[:4] = _SLOPE_AT_R_MIN[:n_basis] / h
    linear = jnp.asarray(b0, r.dtype) + jnp.asarray(slope, r.dtype) * (r - r_min)[..., None]
    return jnp.where((r < r_min)[..., None], linear, _cardinal_cubic(x))


def _coefficient_table(value: Any, n_species: int, n_basis: int) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    shape = (n_species, n_species, n_basis)
    if v.ndim == 0 or v.shape == (n_basis,):
        return np.broadcast_to(v, shape).copy()
    if v.shape == shape:
        if not np.allclose(v, v.transpose(1, 0, 2)):
            raise ValueError(
                "SplinePair.coefficients: a [S, S, n_basis] table must be symmetric in S, S"
            )
        return v
    raise ValueError(
        f"SplinePair.coefficients must be a scalar, [{n_basis}] (all pairs) or "
        f"[{n_species}, {n_species}, {n_basis}] (per pair), got shape {v.shape}"
    )


class SplinePair(PairTerm):
    """Cubic B-spline pair potential ``U_ab(r) = sum_k c_abk B_k(r)`` (kJ/mol).

    Parameters are ``{"coefficients": [S, S, n_basis]}`` (kJ/mol), symmetrised
    on use. The basis (:func:`cubic_bspline_basis`) ends at ``cutoff`` with
    ``U = U' = U'' = 0`` there, so no switching function is applied
    (``r_onset`` must stay ``None``). Below ``r_min`` the energy continues
    linearly. The energy is linear in the coefficients; the force-matching
    design matrix is the Jacobian of the forces with respect to them.

    Attributes:
      n_basis: number of basis functions ``K`` (knot spacing
        ``(cutoff - r_min) / K``).
      r_min: start of the tabulated range (nm).
      coefficients: initial coefficients (kJ/mol): scalar, ``[K]`` or
        ``[S, S, K]``. (Not ``init``: that name would shadow flax's
        ``Module.init``.)

    References:
      Paper 003 §"Comparison with OpenMSCG" (the pairwise MS-CG baseline).
    """

    n_basis: int = 24
    r_min: float = 0.2
    cutoff: float = 1.0
    coefficients: Any = 0.0
    default_name: ClassVar[str] = "spline"

    def _check(self) -> None:
        name = type(self).__name__
        if not (isinstance(self.n_basis, int | np.integer) and self.n_basis >= 1):
            raise ValueError(f"{name}: n_basis must be a positive integer, got {self.n_basis!r}")
        if not 0.0 <= self.r_min < self.cutoff:
            raise ValueError(
                f"{name}: need 0 <= r_min < cutoff (nm), got r_min={self.r_min}, "
                f"cutoff={self.cutoff}"
            )
        if self.r_onset is not None:
            raise ValueError(
                f"{name}: the spline vanishes smoothly at the cutoff by construction; "
                f"r_onset is not used and must be None, got {self.r_onset}"
            )

    def basis(self, r: Float[Array, "*batch"]) -> Float[Array, "*batch n_basis"]:
        """``[..., n_basis]`` basis at distances ``r`` (nm), see :func:`cubic_bspline_basis`."""
        return cubic_bspline_basis(r, n_basis=self.n_basis, r_min=self.r_min, cutoff=self.cutoff)

    def tables(self) -> dict[str, jax.Array]:
        self._check()
        init = _coefficient_table(self.coefficients, self.n_species, self.n_basis)
        c = self.param("coefficients", lambda _: jnp.asarray(init, self.param_dtype))
        return {"coefficients": c}

    def switch(self, r: jax.Array) -> jax.Array:
        return jnp.ones_like(r)

    def kernel(self, r, *, coefficients):
        return jnp.sum(self.basis(r) * coefficients, axis=-1)


def default_config() -> ml_collections.ConfigDict:
    """One species, 24 functions on [0.2, 1.0] nm (0.033 nm knots), zero start."""
    return ml_collections.ConfigDict(
        dict(
            n_species=1, n_basis=24, r_min=0.2, cutoff=1.0, coefficients=0.0, param_dtype="float32"
        )
    )
