"""Dihedral (torsion) prior: a Fourier series per torsion, fitted from data.

``U = sum_d sum_{n=1..M} a_dn cos(n phi_d) + b_dn sin(n phi_d)`` (kJ/mol) over a
fixed list of torsions ``(i, j, k, l)``, ``phi`` the IUPAC dihedral angle in
``(-pi, pi]``. :func:`fit_fourier_dihedrals` fits the coefficients to the
Boltzmann inversion ``-kB T log p(phi)`` of the data's torsion histograms
(least squares weighted by the bin counts), the dihedral counterpart of the
CGnet harmonic priors.

References:
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), Sec. III A
  ("any scalar function of protein coordinates can be used to construct a
  prior energy term"); IUPAC dihedral convention (Blondel and Karplus,
  J. Comput. Chem. 17, 1132 (1996)).
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from cgjax import units
from cgjax._space import make_space
from cgjax._validation import check_weights
from cgjax.potentials._harmonic import _HarmonicTerm, _index_array

__all__ = [
    "CollinearTorsionError",
    "FourierDihedrals",
    "check_torsions",
    "dihedral_angles",
    "fit_fourier_dihedrals",
    "torsion_angles",
]

# A torsion whose bond-plane normal is shorter than this fraction of its bond
# lengths squared (sin of a bond angle below ~1e-6) is undefined.
_COLLINEAR = 1e-6


class CollinearTorsionError(ValueError):
    """A torsion is undefined: three of its four particles are collinear (or coincide)."""


def dihedral_angles(R: jax.Array, idx: jax.Array, displacement) -> jax.Array:
    """``[D]`` IUPAC dihedral angles (rad, ``(-pi, pi]``) of torsions ``[D, 4] = (i, j, k, l)``.

    ``atan2(|b2| b1 . (b2 x b3), (b1 x b2) . (b2 x b3))`` with ``b1 = R_j - R_i``,
    ``b2 = R_k - R_j``, ``b3 = R_l - R_k`` (minimum image). Where three particles
    are collinear the angle is undefined; there it returns 0 with a zero (finite)
    gradient instead of NaN, so a jitted simulation does not poison itself
    (:func:`check_torsions` raises on such frames in data).
    """
    b1 = displacement(R[idx[:, 1]], R[idx[:, 0]])
    b2 = displacement(R[idx[:, 2]], R[idx[:, 1]])
    b3 = displacement(R[idx[:, 3]], R[idx[:, 2]])
    n1, n2 = jnp.cross(b1, b2), jnp.cross(b2, b3)
    b2n = jnp.sqrt(jnp.sum(b2 * b2, axis=-1))
    y = b2n * jnp.sum(b1 * n2, axis=-1)
    x = jnp.sum(n1 * n2, axis=-1)
    bad = (x == 0) & (y == 0)
    return jnp.where(bad, 0.0, jnp.arctan2(jnp.where(bad, 0.0, y), jnp.where(bad, 1.0, x)))


def check_torsions(positions: np.ndarray, torsions: np.ndarray) -> None:
    """Raises :class:`CollinearTorsionError` if a torsion is undefined in any frame.

    Args:
      positions: ``[T, N, 3]`` (nm), free space (no box).
      torsions: ``[D, 4]`` particle indices.
    """
    R = np.asarray(positions, np.float64)
    b1 = R[:, torsions[:, 1]] - R[:, torsions[:, 0]]
    b2 = R[:, torsions[:, 2]] - R[:, torsions[:, 1]]
    b3 = R[:, torsions[:, 3]] - R[:, torsions[:, 2]]
    for a, b, c in ((b1, b2, "first"), (b2, b3, "second")):
        cross = np.linalg.norm(np.cross(a, b), axis=-1)
        scale = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
        bad = ~(cross > _COLLINEAR * scale)
        if bad.any():
            t, d = (int(v) for v in np.argwhere(bad)[0])
            raise CollinearTorsionError(
                f"torsion {tuple(int(i) for i in torsions[d])} is undefined in frame {t}: the "
                f"{c} three particles are collinear or coincide ({int(bad.sum())} such cases)"
            )


class FourierDihedrals(_HarmonicTerm):
    """Fourier-series torsion prior ``sum_d sum_n a_dn cos(n phi_d) + b_dn sin(n phi_d)``.

    Parameters are ``{"a": [D, M], "b": [D, M]}`` (kJ/mol) for the ``D``
    torsions of one copy and harmonics ``n = 1..M``.

    Attributes:
      torsions: ``((i, j, k, l), ...)`` particle indices.
      a, b: initial cosine and sine coefficients (kJ/mol), ``[D, M]``.
      n_copies: number of copies of the first ``D`` torsions (see ``replicated``).

    References:
      Paper 001 Sec. III A (priors); fit with :func:`fit_fourier_dihedrals`.
    """

    torsions: tuple[tuple[int, int, int, int], ...] = ()
    a: Any = None
    b: Any = None
    default_name: ClassVar[str] = "dihedrals"
    _width: ClassVar[int] = 4
    _what: ClassVar[str] = "torsion"
    _topology: ClassVar[str] = "torsions"
    _fit_helper: ClassVar[str] = "fit_fourier_dihedrals"

    def _coefficients(self, field: str, n_template: int) -> jax.Array:
        value = getattr(self, field)
        if value is None:
            raise ValueError(
                f"FourierDihedrals needs {field}: pass it, e.g. from {self._fit_helper}"
            )
        v = np.asarray(value, np.float64)
        if v.ndim != 2 or v.shape[0] != n_template:
            raise ValueError(
                f"FourierDihedrals.{field} must be [D, M] with D = {n_template} torsions per copy, "
                f"got shape {v.shape}"
            )
        return self.param(field, lambda _: jnp.asarray(v, self.param_dtype))

    @nn.compact
    def __call__(self, graph, **kwargs) -> jax.Array:
        idx = self._indices(graph.n_nodes)
        n_template = len(idx) // self.n_copies
        a = jnp.tile(self._coefficients("a", n_template), (self.n_copies, 1))
        b = jnp.tile(self._coefficients("b", n_template), (self.n_copies, 1))
        if a.shape != b.shape:
            raise ValueError(f"FourierDihedrals: a {a.shape} and b {b.shape} differ in shape")
        phi = dihedral_angles(graph.positions, jnp.asarray(idx), graph.displacement)
        n = jnp.arange(1, a.shape[1] + 1, dtype=phi.dtype)
        return jnp.sum(a * jnp.cos(n * phi[:, None]) + b * jnp.sin(n * phi[:, None]))


def torsion_angles(positions: Any, torsions: Any, box: Any = None) -> np.ndarray:
    """``[T, D]`` dihedral angles (rad) of frames ``[T, N, 3]`` (nm); checks collinearity.

    Raises:
      CollinearTorsionError: a torsion is undefined in some frame (free space only).
      ValueError: an index out of range.
    """
    R = np.asarray(positions)
    if R.ndim != 3 or R.shape[-1] != 3:
        raise ValueError(f"positions must be [T, N, 3] (nm), got shape {R.shape}")
    idx = _index_array(torsions, 4, "torsion", R.shape[1])
    if box is None:
        check_torsions(R, idx)
    disp = jax.vmap(make_space(box)[0])
    f = jax.jit(jax.vmap(lambda x: dihedral_angles(x, jnp.asarray(idx), disp)))
    return np.asarray(f(jnp.asarray(R)), np.float64)


def fit_fourier_dihedrals(
    positions: Float[Array, "T N 3"],
    torsions: Any,
    temperature_K: float,
    *,
    order: int | Any = 3,
    n_bins: int = 72,
    n_copies: int = 1,
    weights: Any = None,
) -> dict[str, np.ndarray]:
    """Fourier coefficients fitted to ``-kB T log p(phi)`` of each torsion's histogram.

    Least squares over the ``n_bins`` bins of ``(-pi, pi]`` that hold samples,
    weighted by their counts (a bin's free energy has variance ~ 1/count; with
    frame weights, by each bin's effective count ``(sum w)^2 / sum w^2``), with
    a free constant that is dropped.

    Args:
      positions: ``[T, N, 3]`` frames (nm), free space.
      torsions: ``((i, j, k, l), ...)`` particle indices, ``[D_total, 4]``.
      temperature_K: temperature of the data (K).
      order: harmonics ``M`` (``n = 1..M``), one for all or one per torsion; a
        sharply peaked torsion (an improper holding chirality) needs a low order.
      n_bins: histogram bins over ``2 pi``.
      n_copies: the torsions are this many copies sharing coefficients.
      weights: ``[T]`` frame weights (frames sampled under a bias, e.g.
        :func:`cgjax.observables.frame_weights`); ``None``: all equal.

    Returns:
      ``{"a": [D, M], "b": [D, M]}`` (kJ/mol, float64; zero beyond a torsion's
      order, ``M`` the largest), ``FourierDihedrals(torsions=..., **fit)``.

    Raises:
      CollinearTorsionError: a torsion is undefined in some frame.
      ValueError: bad indices, or fewer occupied bins than ``2 M + 1`` coefficients.
    """
    phi = torsion_angles(positions, torsions)
    T, n_total = phi.shape
    if n_copies < 1 or n_total % n_copies:
        raise ValueError(f"{n_total} torsions do not split into n_copies={n_copies} copies")
    phi = phi.reshape(T * n_copies, n_total // n_copies)
    w = check_weights(weights, T)
    w = np.ones(len(phi)) if w is None else np.repeat(w, n_copies)  # rows: frame-major
    orders = np.broadcast_to(np.asarray(order, int), (phi.shape[1],))
    M = int(orders.max())
    kT = units.kB * temperature_K
    edges = np.linspace(-np.pi, np.pi, n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    a, b = np.zeros((phi.shape[1], M)), np.zeros((phi.shape[1], M))
    for d, m in enumerate(orders):
        n = np.arange(1, m + 1)
        design = np.concatenate(
            [np.ones((n_bins, 1)), np.cos(centres[:, None] * n), np.sin(centres[:, None] * n)], 1
        )
        # histogramdd sums weights per bin (bincount); np.histogram with explicit edges
        # differences a cumulative sum, which rounds bins of tiny weights to 0
        counts, _ = np.histogramdd(phi[:, d : d + 1], bins=[edges], weights=w)
        counts2, _ = np.histogramdd(phi[:, d : d + 1], bins=[edges], weights=w * w)
        ok = counts > 0
        if ok.sum() < 2 * m + 1:
            raise ValueError(
                f"torsion {d} occupies {int(ok.sum())} of {n_bins} bins: too few for order {m} "
                "(use a lower order for this torsion)"
            )
        F = -kT * np.log(counts[ok] / counts.sum())
        fit_w = np.sqrt(counts[ok] ** 2 / counts2[ok])  # effective counts; = counts if w = 1
        coef, *_ = np.linalg.lstsq(design[ok] * fit_w[:, None], F * fit_w, rcond=None)
        a[d, :m], b[d, :m] = coef[1 : m + 1], coef[m + 1 :]
    return {"a": np.asarray(a), "b": np.asarray(b)}
