"""Harmonic bond and angle priors, and their fit from data statistics.

``U = sum_b k_b / 2 (f_b - f0_b)^2`` over a fixed topology of bonds (``f`` a
distance, nm) or angles (``f`` the angle at the middle particle, rad). The
data fit is the CGnet prior: ``f0 = E[f]``, ``k = kB T / Var[f]``, i.e. the
harmonic potential whose Boltzmann distribution has the data's mean and
variance.

Topology is explicit index lists. :meth:`replicated` tiles them for stacked
copies of a system (building a multi-molecule topology from one molecule) and
the copies share one parameter set; :meth:`permuted` relabels them.
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
from cgjax.potentials._base import Term
from cgjax.potentials._graph import Graph

__all__ = ["HarmonicAngles", "HarmonicBonds", "fit_harmonic_angles", "fit_harmonic_bonds"]

# A fitted feature whose standard deviation is below this (relative to the mean
# length for bonds, in rad for angles) is rigid (a constraint, or float32
# rounding of one): it has no finite harmonic stiffness.
_RIGID_STD = 1e-5


def _safe_norm(v: jax.Array) -> jax.Array:
    """``|v|`` over the last axis with a finite (zero) gradient at ``v = 0``."""
    n2 = jnp.sum(v * v, axis=-1)
    nonzero = n2 > 0
    return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, n2, 1.0)), 0.0)


def _bond_lengths(R, idx, displacement) -> jax.Array:
    """``[B]`` minimum-image distances ``|R_j - R_i|`` (nm) for bonds ``[B, 2]``."""
    return _safe_norm(displacement(R[idx[:, 1]], R[idx[:, 0]]))


def _bond_angles(R, idx, displacement) -> jax.Array:
    """``[A]`` angles (rad) at the middle particle ``j`` of angles ``[A, 3] = (i, j, k)``."""
    a = displacement(R[idx[:, 0]], R[idx[:, 1]])
    b = displacement(R[idx[:, 2]], R[idx[:, 1]])
    # atan2(|a x b|, a.b) is accurate and differentiable at 0 and pi, where
    # arccos of the cosine is not; only coincident particles give (0, 0).
    s = _safe_norm(jnp.cross(a, b))
    c = jnp.sum(a * b, axis=-1)
    return jnp.arctan2(s, jnp.where((s == 0) & (c == 0), 1.0, c))


def _index_array(indices: Any, width: int, what: str, n_particles: int | None) -> np.ndarray:
    """Checks a topology list and returns it as ``[M, width]`` int32."""
    idx = np.asarray(indices)
    if idx.size == 0:
        return np.zeros((0, width), np.int32)
    if idx.ndim != 2 or idx.shape[1] != width or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(
            f"{what}s must be integer index tuples of length {width}, "
            f"got an array of shape {idx.shape} and dtype {idx.dtype}"
        )
    bad = (idx < 0).any(axis=1)
    if n_particles is not None:
        bad |= (idx >= n_particles).any(axis=1)
    if bad.any():
        b = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what} {b} = {tuple(int(i) for i in idx[b])} has a particle index out of range "
            f"[0, {n_particles}) ({int(bad.sum())} such {what}s)"
        )
    s = np.sort(idx, axis=1)
    repeated = (s[:, 1:] == s[:, :-1]).any(axis=1)
    if repeated.any():
        b = int(np.flatnonzero(repeated)[0])
        raise ValueError(f"{what} {b} = {tuple(int(i) for i in idx[b])} repeats a particle")
    return idx.astype(np.int32)


def _as_tuples(idx: np.ndarray) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(i) for i in row) for row in idx)


class _HarmonicTerm(Term):
    """Shared body of the harmonic priors: topology checks, hooks, parameters."""

    n_copies: int = 1
    param_dtype: Any = jnp.float32

    _width: ClassVar[int] = 2
    _what: ClassVar[str] = "bond"
    _topology: ClassVar[str] = "bonds"
    _reference: ClassVar[str] = "r0"
    _fit_helper: ClassVar[str] = "fit_harmonic_bonds"

    def _indices(self, n_particles: int | None = None) -> np.ndarray:
        name = type(self).__name__
        idx = _index_array(getattr(self, self._topology), self._width, self._what, n_particles)
        if self.n_copies < 1 or len(idx) % self.n_copies:
            raise ValueError(
                f"{name}: {len(idx)} {self._what}s do not split into n_copies={self.n_copies} "
                "equal copies"
            )
        return idx

    def needs_directed_edges(self) -> bool:
        return False  # reads positions by index, not edges

    def _coordinate(self, graph: Graph, idx: np.ndarray) -> jax.Array:
        raise NotImplementedError

    def _init(self, field: str, n_template: int):
        value = getattr(self, field)
        name = type(self).__name__
        if value is None:
            raise ValueError(f"{name} needs {field}: pass it, e.g. from {self._fit_helper}")
        v = np.asarray(value, np.float64)
        if v.ndim == 0:
            v = np.full(n_template, float(v))
        if v.shape != (n_template,):
            raise ValueError(
                f"{name}.{field} must be a scalar or one value per {self._what} of one copy "
                f"[{n_template}], got shape {v.shape}"
            )
        return self.param(field, lambda _: jnp.asarray(v, self.param_dtype))

    def replicated(self, n_copies: int, n_particles: int) -> _HarmonicTerm:
        idx = self._indices()
        offsets = n_particles * np.arange(n_copies)[:, None, None]
        tiled = (idx[None] + offsets).reshape(-1, self._width)
        return self.clone(
            parent=None, **{self._topology: _as_tuples(tiled)}, n_copies=self.n_copies * n_copies
        )

    def permuted(self, perm: Any) -> _HarmonicTerm:
        perm = np.asarray(perm)
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(len(perm))  # old index -> new index
        return self.clone(
            parent=None, **{self._topology: _as_tuples(inverse[self._indices(len(perm))])}
        )

    @nn.compact
    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        idx = self._indices(graph.n_nodes)
        n_template = len(idx) // self.n_copies
        k = jnp.tile(self._init("k", n_template), self.n_copies)
        x0 = jnp.tile(self._init(self._reference, n_template), self.n_copies)
        x = self._coordinate(graph, idx)
        return 0.5 * jnp.sum(k * (x - x0) ** 2)


class HarmonicBonds(_HarmonicTerm):
    """Harmonic bonds ``sum_b k_b / 2 (|r_ij| - r0_b)^2`` (kJ/mol), minimum image.

    Parameters are ``{"k": [B], "r0": [B]}`` (kJ/mol/nm^2, nm) for the ``B``
    bonds of one copy; with ``n_copies > 1`` (see :meth:`replicated`) the
    bond list is that many consecutive copies sharing them.

    Attributes:
      bonds: ``((i, j), ...)`` particle indices.
      k: initial force constants (kJ/mol/nm^2): scalar or ``[B]``.
      r0: initial rest lengths (nm): scalar or ``[B]``.
      n_copies: number of copies of the first ``B`` bonds in ``bonds``.

    References:
      Paper 001 eq. 6a (CGnet harmonic prior); fit with :func:`fit_harmonic_bonds`.
    """

    bonds: tuple[tuple[int, int], ...] = ()
    k: Any = None
    r0: Any = None
    default_name: ClassVar[str] = "bonds"

    def _coordinate(self, graph, idx):
        return _bond_lengths(graph.positions, jnp.asarray(idx), graph.displacement)


class HarmonicAngles(_HarmonicTerm):
    """Harmonic angles ``sum_a k_a / 2 (theta_ijk - theta0_a)^2`` (kJ/mol), theta at ``j``.

    ``theta`` in ``[0, pi]`` is ``atan2(|a x b|, a . b)`` of the minimum-image
    vectors ``a = R_i - R_j``, ``b = R_k - R_j``; its gradient is finite at 0
    and pi. Parameters are ``{"k": [A], "theta0": [A]}`` (kJ/mol/rad^2, rad).

    Attributes:
      angles: ``((i, j, k), ...)`` particle indices, ``j`` the vertex.
      k: initial force constants (kJ/mol/rad^2): scalar or ``[A]``.
      theta0: initial rest angles (rad): scalar or ``[A]``.
      n_copies: number of copies of the first ``A`` angles in ``angles``.

    References:
      Paper 001 eq. 6a (CGnet harmonic prior); fit with :func:`fit_harmonic_angles`.
    """

    angles: tuple[tuple[int, int, int], ...] = ()
    k: Any = None
    theta0: Any = None
    default_name: ClassVar[str] = "angles"
    _width: ClassVar[int] = 3
    _what: ClassVar[str] = "angle"
    _topology: ClassVar[str] = "angles"
    _reference: ClassVar[str] = "theta0"
    _fit_helper: ClassVar[str] = "fit_harmonic_angles"

    def _coordinate(self, graph, idx):
        return _bond_angles(graph.positions, jnp.asarray(idx), graph.displacement)


def _features(positions, indices, width, what, box, feature_fn) -> tuple[np.ndarray, np.ndarray]:
    R = jnp.asarray(positions)
    if R.ndim != 3 or R.shape[-1] != 3 or R.shape[0] < 2:
        raise ValueError(f"positions must be [T, N, 3] (nm) with T >= 2, got shape {R.shape}")
    idx = _index_array(indices, width, what, R.shape[1])
    displacement_fn = make_space(box)[0]
    disp = jax.vmap(displacement_fn)
    f = jax.jit(jax.vmap(lambda x: feature_fn(x, jnp.asarray(idx), disp)))(R)
    return np.asarray(f, np.float64), idx


def _fit(
    f, idx, temperature_K, n_copies, what, reference, scale, weights=None
) -> dict[str, np.ndarray]:
    if not np.isfinite(temperature_K) or temperature_K <= 0:
        raise ValueError(f"temperature_K must be positive (K), got {temperature_K}")
    n_frames, n_total = f.shape
    if n_copies < 1 or n_total % n_copies:
        raise ValueError(f"{n_total} {what}s do not split into n_copies={n_copies} equal copies")
    pooled = f.reshape(n_frames * n_copies, n_total // n_copies)
    w = check_weights(weights, n_frames)
    w = np.ones(len(pooled)) if w is None else np.repeat(w, n_copies)  # rows: frame-major
    mean = (w @ pooled) / w.sum()
    var = (w @ (pooled - mean) ** 2) / w.sum()
    rigid = np.sqrt(var) <= _RIGID_STD * scale(mean)
    if rigid.any():
        bad = [tuple(int(i) for i in idx[b]) for b in np.flatnonzero(rigid)[:5]]
        raise ValueError(
            f"{int(rigid.sum())} {what}(s) have (near) zero variance over the data, first "
            f"{what}s {bad}: a rigid {what} has no finite harmonic force constant; leave it "
            "out of the prior (or constrain it)"
        )
    return {"k": units.kB * temperature_K / var, reference: mean}


def fit_harmonic_bonds(
    positions: Float[Array, "T N 3"],
    bonds: Any,
    temperature_K: float,
    box: Any = None,
    *,
    n_copies: int = 1,
    weights: Any = None,
) -> dict[str, np.ndarray]:
    """Harmonic bond parameters from data: ``r0 = E[r]``, ``k = kB T / Var[r]``.

    Args:
      positions: ``[T, N, 3]`` frames (nm).
      bonds: ``((i, j), ...)`` particle indices, ``[B_total, 2]``.
      temperature_K: temperature of the data (K).
      box: periodic box (nm) for minimum-image distances, or None.
      n_copies: the bonds are this many consecutive copies sharing parameters
        (as in :meth:`HarmonicBonds.replicated`); statistics pool the copies.
      weights: ``[T]`` frame weights (frames sampled under a bias, e.g.
        :func:`cgjax.observables.frame_weights`); ``None``: all equal.

    Returns:
      ``{"k": [B] kJ/mol/nm^2, "r0": [B] nm}`` (float64), both the init values
      (``HarmonicBonds(bonds=bonds, **fit)``) and the parameter dict.

    Raises:
      ValueError: on an index out of range (naming the bond), or a bond whose
        length does not vary over the data (standard deviation < 1e-5 r0).

    References:
      Paper 001 eq. 6a.
    """
    f, idx = _features(positions, bonds, 2, "bond", box, _bond_lengths)
    return _fit(f, idx, temperature_K, n_copies, "bond", "r0", lambda m: np.abs(m), weights)


def fit_harmonic_angles(
    positions: Float[Array, "T N 3"],
    angles: Any,
    temperature_K: float,
    box: Any = None,
    *,
    n_copies: int = 1,
    weights: Any = None,
) -> dict[str, np.ndarray]:
    """Harmonic angle parameters from data: ``theta0 = E[theta]``, ``k = kB T / Var[theta]``.

    Args:
      positions: ``[T, N, 3]`` frames (nm).
      angles: ``((i, j, k), ...)`` particle indices, ``j`` the vertex.
      temperature_K: temperature of the data (K).
      box: periodic box (nm) for minimum-image vectors, or None.
      n_copies, weights: as in :func:`fit_harmonic_bonds`.

    Returns:
      ``{"k": [A] kJ/mol/rad^2, "theta0": [A] rad}`` (float64).

    Raises:
      ValueError: on an index out of range (naming the angle), or an angle
        that does not vary over the data (standard deviation < 1e-5 rad).

    References:
      Paper 001 eq. 6a.
    """
    f, idx = _features(positions, angles, 3, "angle", box, _bond_angles)
    return _fit(f, idx, temperature_K, n_copies, "angle", "theta0", np.ones_like, weights)
