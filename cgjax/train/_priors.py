"""Priors set from the training data before training (paper 003 SI).

The exponential repulsion ``E0 exp(-a r)`` covers pair distances closer than
any in the data, where a trained model has seen nothing: its force has fallen
to ``p s`` at the onset ``t`` of the data and rises to ``s`` (the mean force
magnitude) at ``t - d``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from cgjax.data import Frames
from cgjax.observables import rdf
from cgjax.potentials._repulsion import ExponentialRepulsion, exponential_repulsion_parameters

__all__ = ["RepulsionPrior", "exponential_repulsion_from_data"]


class RepulsionPrior(NamedTuple):
    """Result of :func:`exponential_repulsion_from_data`.

    Attributes:
      term: the :class:`~cgjax.potentials.ExponentialRepulsion` with these
        parameters as its initial values.
      onset: ``[S, S]`` onset ``t`` per species pair (nm).
      strength: ``s``, the mean force magnitude of the frames (kJ/mol/nm).
      e0: ``[S, S]`` ``E0`` (kJ/mol).
      a: ``[S, S]`` decay rate (1/nm).
    """

    term: ExponentialRepulsion
    onset: np.ndarray
    strength: float
    e0: np.ndarray
    a: np.ndarray


def _onset(frames: Frames, r_max: float, n_bins: int, pair, threshold: float) -> float:
    g = rdf(
        frames.positions, frames.box, r_max=r_max, n_bins=n_bins, species=frames.species, pair=pair
    )
    above = np.nonzero(np.asarray(g.g) > threshold)[0]
    name = "all pairs" if pair is None else f"species pair {pair}"
    if above.size == 0:
        raise ValueError(
            f"the RDF of {name} never exceeds {threshold} below r_max={r_max} nm; raise r_max"
        )
    if above[0] == 0:
        raise ValueError(
            f"the RDF of {name} exceeds {threshold} in its first bin; the onset is not resolved, "
            f"use more bins (n_bins={n_bins})"
        )
    # The lower edge of the bin: the data reach down to it, not to its centre.
    return float(above[0] * r_max / n_bins)


def exponential_repulsion_from_data(
    frames: Frames,
    *,
    r_max: float,
    n_bins: int,
    p: float = 0.05,
    d: float = 0.015,
    threshold: float = 0.01,
    cutoff: float | None = None,
    param_dtype: Any = jnp.float32,
) -> RepulsionPrior:
    """The exponential repulsion prior of paper 003, with parameters from data.

    The onset ``t_ab`` of each species pair is the lower edge of the first
    bin where the pair's RDF (:func:`~cgjax.observables.rdf`, averaged over
    the frames) exceeds ``threshold``: the smallest distance seen, with rare
    outliers excluded. The strength ``s`` is the mean force magnitude
    ``<|F_i|>`` over all beads and frames. Then ``a = ln(1/p) / d`` and
    ``E0_ab = p s exp(a t_ab) / a``
    (:func:`~cgjax.potentials.exponential_repulsion_parameters`), so the
    prior's pair force is ``p s`` at ``t_ab`` and ``s`` at ``t_ab - d``.

    Args:
      frames: mapped CG ``Frames`` with ``forces`` (kJ/mol/nm), ``species``
        and one fixed periodic box (nm).
      r_max: RDF range (nm), at most half the box width.
      n_bins: RDF bins on ``[0, r_max)``; the onset is resolved to
        ``r_max / n_bins``.
      p: fraction of ``s`` left at ``t`` (paper 003 SI: 0.05).
      d: distance below ``t`` where the force reaches ``s`` (nm; paper 003
        SI: 0.15 Å).
      threshold: RDF value that marks the onset (dimensionless).
      cutoff: the term's cutoff (nm); default ``r_max``, where the
        repulsion is negligible (``exp(-a (r_max - t))``).
      param_dtype: dtype of the term's parameters.

    Returns:
      :class:`RepulsionPrior` with the term and the statistics.

    Raises:
      ValueError: on frames without forces or without a fixed box, or an RDF
        whose onset is not resolved on ``[0, r_max)``.

    References:
      Paper 003 eq. 7 and SI "Repulsive potential" (eqs. 1-3 and its table
      of t, s, d, p).
    """
    if frames.forces is None:
        raise ValueError("the frames have no forces; the strength s is their mean magnitude")
    if frames.box is None or np.ndim(frames.box) == 3:
        raise ValueError("the RDF onset needs one fixed periodic box (nm)")
    S = int(frames.species.max()) + 1
    s = float(np.mean(np.linalg.norm(np.asarray(frames.forces, np.float64), axis=-1)))
    onset = np.zeros((S, S))
    e0 = np.zeros((S, S))
    a = np.zeros((S, S))
    for i, j in zip(*np.triu_indices(S), strict=True):
        pair = None if S == 1 else (int(i), int(j))
        t = _onset(frames, r_max, n_bins, pair, threshold)
        e0_ij, a_ij = exponential_repulsion_parameters(t, d, s, p)
        onset[i, j] = onset[j, i] = t
        e0[i, j] = e0[j, i] = e0_ij
        a[i, j] = a[j, i] = a_ij
    term = ExponentialRepulsion(
        n_species=S,
        e0=tuple(map(tuple, e0.tolist())),
        a=tuple(map(tuple, a.tolist())),
        cutoff=float(r_max if cutoff is None else cutoff),
        param_dtype=param_dtype,
    )
    return RepulsionPrior(term=term, onset=onset, strength=s, e0=e0, a=a)
