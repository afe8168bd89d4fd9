"""Comparison metrics: RDF total absolute error, MSE, KL / JS divergence, force errors."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def total_absolute_error(
    r: Float[ArrayLike, " n"], g1: Float[ArrayLike, " n"], g2: Float[ArrayLike, " n"]
) -> Float[Array, ""]:
    """Total absolute error ``TAE = sum_i |g2(r_i) - g1(r_i)| dr`` of two RDFs (paper 003 eq. 9).

    The area between the curves on their common uniform grid, in nm (the
    paper quotes Å: ``TAE_Å = TAE_nm / units.angstrom = 10 * TAE_nm``).
    Unlike a mean absolute error it does not shrink as ``r_max`` grows.

    Args:
      r: uniformly spaced radii ``[n]`` (nm), e.g. ``RDF.r``.
      g1: reference RDF ``[n]``.
      g2: trial RDF ``[n]``.

    Returns:
      the TAE (nm).

    References:
      Shinkle et al., Thermodynamic transferability in coarse-grained force
      fields using graph neural networks (papers/003), eqs. 8-9.
    """
    r = jnp.asarray(r)
    return jnp.sum(jnp.abs(jnp.asarray(g2) - jnp.asarray(g1))) * (r[1] - r[0])


def mse(a: Float[ArrayLike, "*shape"], b: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """Mean squared error ``mean((a - b)^2)`` over all entries (units of ``a`` squared)."""
    return jnp.mean((jnp.asarray(a) - jnp.asarray(b)) ** 2)


def _normalise(p):
    p = jnp.asarray(p)
    return p / jnp.sum(p)


def _xlogy_ratio(p, q):
    """``p ln(p / q)`` with ``0 ln 0 = 0``, safe for gradients."""
    positive = p > 0
    safe_p = jnp.where(positive, p, 1.0)
    return jnp.where(positive, p * (jnp.log(safe_p) - jnp.log(jnp.where(positive, q, 1.0))), 0.0)


def kl_divergence(
    p: Float[ArrayLike, "*shape"], q: Float[ArrayLike, "*shape"], *, eps: float = 1e-10
) -> Float[Array, ""]:
    """Kullback-Leibler divergence ``KL(p || q) = sum_i p_i ln(p_i / q_i)`` (paper 001 eq. 14).

    ``p`` (reference) and ``q`` (trial) are histograms on the same bins (any
    shape, e.g. a 60 x 60 Ramachandran grid), counts or densities; each is
    normalised to sum 1 over all entries. Empty reference bins contribute 0
    (``0 ln 0 = 0``). Trial bins are floored at ``eps`` after normalisation,
    so a bin the trial never visits costs ``p_i ln(p_i / eps)`` instead of
    infinity; identical histograms give exactly 0.

    Args:
      p: reference histogram (non-negative).
      q: trial histogram (non-negative), same shape.
      eps: floor for normalised trial probabilities.

    Returns:
      ``KL >= 0`` (nats).

    References:
      Husic et al., Coarse graining molecular dynamics with graph neural
      networks (papers/001), eq. 14.
    """
    p, q = _normalise(p), _normalise(q)
    return jnp.sum(_xlogy_ratio(p, jnp.maximum(q, eps)))


def js_divergence(p: Float[ArrayLike, "*shape"], q: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """Jensen-Shannon divergence ``(KL(p || m) + KL(q || m)) / 2`` with ``m = (p + q) / 2``.

    Symmetric, finite without any epsilon (``m > 0`` wherever ``p`` or ``q``
    is) and bounded by ``ln 2``, reached for disjoint supports. ``p`` and ``q``
    are normalised to sum 1 as in :func:`kl_divergence`.

    Args:
      p: histogram (non-negative).
      q: histogram (non-negative), same shape.

    Returns:
      ``0 <= JS <= ln 2`` (nats).

    References:
      Papers/001, eq. 14 (the KL it is built from); J. Lin, IEEE Trans. Inf.
      Theory 37, 145 (1991).
    """
    p, q = _normalise(p), _normalise(q)
    m = 0.5 * (p + q)
    return 0.5 * (jnp.sum(_xlogy_ratio(p, m)) + jnp.sum(_xlogy_ratio(q, m)))


def free_energy_mse(
    p: Float[ArrayLike, "*shape"], q: Float[ArrayLike, "*shape"], *, kT: float = 1.0
) -> Float[Array, ""]:
    """MSE of bin free energies ``-kT ln p_i`` and ``-kT ln q_i`` (paper 001 eq. 15).

    Averaged over the ``m'`` bins where both normalised histograms are
    non-zero; other bins are left out, as in the paper. NaN if there are none.

    Args:
      p: reference histogram (non-negative).
      q: trial histogram (non-negative), same shape.
      kT: thermal energy (kJ/mol), e.g. ``units.kT(300.0)``; 1 gives units of kT.

    Returns:
      the mean squared free-energy difference ((kJ/mol)^2, or kT^2).

    References:
      Husic et al. (papers/001), eq. 15.
    """
    p, q = _normalise(p), _normalise(q)
    both = (p > 0) & (q > 0)
    diff = kT * (jnp.log(jnp.where(both, p, 1.0)) - jnp.log(jnp.where(both, q, 1.0)))
    return jnp.sum(jnp.where(both, diff**2, 0.0)) / jnp.sum(both)


def force_errors(
    pred: Float[ArrayLike, "*shape 3"], ref: Float[ArrayLike, "*shape 3"]
) -> dict[str, Float[Array, ""]]:
    """Force errors over all Cartesian components, e.g. of ``[T, N, 3]`` forces (kJ/mol/nm).

    Args:
      pred: predicted forces (kJ/mol/nm).
      ref: reference forces (kJ/mol/nm), same shape.

    Returns:
      ``{"rmse": sqrt(mean((pred - ref)^2)), "mae": mean(|pred - ref|)}`` in
      kJ/mol/nm, and ``"r2" = 1 - sum((pred - ref)^2) / sum((ref - mean(ref))^2)``
      (dimensionless, the mean over all components).

    References:
      Shinkle et al. (papers/003), "Performance evaluation" and SI "Training
      statistics" (force MAE, RMSE and R^2 alongside the TAE).
    """
    pred, ref = jnp.asarray(pred), jnp.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"pred has shape {pred.shape} but ref has shape {ref.shape}")
    err = pred - ref
    ss_res = jnp.sum(err**2)
    ss_tot = jnp.sum((ref - jnp.mean(ref)) ** 2)
    return {
        "rmse": jnp.sqrt(jnp.mean(err**2)),
        "mae": jnp.mean(jnp.abs(err)),
        "r2": 1.0 - ss_res / ss_tot,
    }
