"""Pairwise MS-CG: linear force matching of a cubic B-spline pair potential.

The energy of :class:`~cgjax.potentials.SplinePair` is linear in its
coefficients, ``U = sum_pairs sum_k c_abk B_k(r)``, so the CG forces are
``F = G c`` with ``G[i, :, m] = sum_j B_k'(r_ij) (R_j - R_i) / r_ij`` for the
column ``m = (pair(a, b), k)``. Force matching is then the least-squares
problem ``min_c |G c - f|^2`` (the multiscale coarse-graining method of
Izvekov & Voth and Noid et al., as implemented by OpenMSCG), solved here in
closed form from the normal equations ``G^T G c = G^T f`` accumulated frame by
frame; ``G`` itself is never stored for more than one chunk of frames.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cgjax._xla import jit
from cgjax.data import Frames
from cgjax.potentials._energy import energy_model
from cgjax.potentials._graph import build_graph
from cgjax.potentials._spline import SplinePair

__all__ = ["MSCGFit", "fit_spline_pair"]


class MSCGFit(NamedTuple):
    """Result of :func:`fit_spline_pair`.

    Attributes:
      params: ``{"coefficients": [S, S, K]}`` (kJ/mol, the term's
        ``param_dtype``), symmetric in the species, ready for the term.
      rmse: residual force RMSE per component on the training frames
        (kJ/mol/nm), from the normal equations.
      reference_rms: RMS of the target force components (kJ/mol/nm).
      condition_number: 2-norm condition number of the solved (regularised,
        reduced) normal matrix.
      empty: ``[S, S, K]`` bool, True for basis functions that no pair
        distance in the data reached (zero column of ``G``); their
        coefficients are fixed at 0 and left out of the solve.
      counts: ``[S, S, K]`` number of pair distances (over all frames) inside
        each basis function's support.
      n_frames: frames used.
      ridge: the ridge strength used (1/nm^2).
    """

    params: dict[str, jax.Array]
    rmse: float
    reference_rms: float
    condition_number: float
    empty: np.ndarray
    counts: np.ndarray
    n_frames: int
    ridge: float


def _pair_index(n_species: int) -> np.ndarray:
    """``[S, S]`` index of each unordered species pair ``a <= b`` (row-major)."""
    idx = np.zeros((n_species, n_species), np.int32)
    for p, (a, b) in enumerate(zip(*np.triu_indices(n_species), strict=True)):
        idx[a, b] = idx[b, a] = p
    return idx


def _frame_design(term, species, displacement_fn, pair_index, n_pairs, R, neighbor):
    """``G [N, 3, P, K]`` of one frame and the support counts ``[P, K]``."""
    n = R.shape[0]
    graph = build_graph(R, species, displacement_fn, neighbor=neighbor, directed=False)
    r = graph.edge_lengths
    # Same masking as PairTerm: edges at or beyond the cutoff carry no energy.
    inside = graph.edge_mask & (r < term.cutoff)
    r_safe = jnp.where(inside, r, term.cutoff)
    basis, d_basis = jax.jvp(term.basis, (r_safe,), (jnp.ones_like(r_safe),))  # [E, K]
    d_basis = jnp.where(inside[:, None], d_basis, 0.0)
    si, sj = graph.edge_species()
    onehot = jax.nn.one_hot(jnp.asarray(pair_index)[si, sj], n_pairs, dtype=r.dtype)  # [E, P]
    unit = graph.edge_vectors / r_safe[:, None]  # towards the sender j
    # -dU/dR_i for receiver i is +B'(r) u; the sender j gets the opposite.
    per_edge = unit[:, :, None, None] * (onehot[:, :, None] * d_basis[:, None, :])[:, None]
    G = jax.ops.segment_sum(per_edge, graph.receivers, num_segments=n) - jax.ops.segment_sum(
        per_edge, graph.senders, num_segments=n
    )
    support = jnp.where(inside[:, None], basis != 0.0, False).astype(r.dtype)
    counts = jnp.einsum("ep,ek->pk", onehot, support)
    return G, counts


def _normal_equations(R, F, weight, species, neighbor, *, term, displacement_fn, pair_index):
    """Sums of ``G^T G``, ``G^T f``, ``f^T f``, support counts and neighbor overflow.

    ``R``, ``F``: ``[C, B, N, 3]`` chunks of frames; ``weight``: ``[C, B]``
    (0 on padding frames). Chunks are scanned, frames in a chunk vmapped.
    """
    n_pairs = int(pair_index.max()) + 1

    def frame(R_t, F_t, w_t):
        nbrs = None
        overflow = jnp.array(False)
        if neighbor is not None:
            nbrs = neighbor.update(R_t)
            overflow = nbrs.did_buffer_overflow
        G, counts = _frame_design(term, species, displacement_fn, pair_index, n_pairs, R_t, nbrs)
        G = G.reshape(-1, n_pairs * term.n_basis)
        f = F_t.reshape(-1)
        return (w_t * (G.T @ G), w_t * (G.T @ f), w_t * (f @ f), w_t * counts, overflow)

    def chunk(carry, xs):
        A, b, ff, counts, overflow = jax.vmap(frame)(*xs)
        A0, b0, ff0, c0, o0 = carry
        return (
            A0 + A.sum(0),
            b0 + b.sum(0),
            ff0 + ff.sum(),
            c0 + counts.sum(0),
            o0 | overflow.any(),
        ), None

    m = n_pairs * term.n_basis
    dtype = R.dtype
    init = (
        jnp.zeros((m, m), dtype),
        jnp.zeros(m, dtype),
        jnp.zeros((), dtype),
        jnp.zeros((n_pairs, term.n_basis), dtype),
        jnp.array(False),
    )
    out, _ = jax.lax.scan(chunk, init, (R, F, weight))
    return out


def fit_spline_pair(
    term: SplinePair,
    frames: Frames,
    *,
    ridge: float = 0.0,
    batch_size: int = 4,
    all_pairs: bool = False,
    capacity_multiplier: float = 1.5,
    empty_tol: float = 1e-12,
) -> MSCGFit:
    """Pairwise MS-CG: the spline coefficients that best match the frames' forces.

    Minimises ``(1/n) |G c - f|^2 + ridge |c|^2`` over the independent
    coefficients (one ``[K]`` vector per unordered species pair), where ``n``
    is the number of force components ``3 N T``, ``f`` the frames' forces and
    ``G`` the force of each basis function, built from the same graph
    (:func:`~cgjax.potentials.build_graph`, one edge per pair, neighbor list
    or all pairs) and the same basis, cutoff mask and species lookup as
    ``term`` evaluates its energy, so ``F = G c`` equals
    ``-grad(energy)`` of the term with the returned parameters. ``G^T G`` and
    ``G^T f`` are accumulated in float64 (whatever ``jax_enable_x64`` says)
    over chunks of ``batch_size`` frames; positions and forces are cast to
    float64 for that. The ``K P x K P`` system is solved on the host in
    float64 (``numpy.linalg.solve``; least squares if it is numerically
    singular). Basis functions no pair reached are fixed at 0.

    Args:
      term: the :class:`~cgjax.potentials.SplinePair` to fit (its ``n_species``,
        ``n_basis``, ``r_min``, ``cutoff``).
      frames: ``Frames`` with ``positions`` ``[T, N, 3]`` (nm), ``forces``
        ``[T, N, 3]`` (kJ/mol/nm, e.g. the mapped AA forces, minus any prior's
        forces), ``species`` ``[N]`` and one fixed box (nm) or none.
      ridge: Tikhonov strength (1/nm^2) on ``|c|^2``, relative to the mean
        squared force residual; 0 for plain least squares.
      batch_size: frames per vectorised chunk (memory ~ batch_size * E * 3 * K).
      all_pairs: enumerate all pairs instead of a neighbor list (small systems,
        free space; always so without a box).
      capacity_multiplier: head-room of the neighbor list (it is reallocated
        and the accumulation rerun if any frame overflows it).
      empty_tol: a column whose ``G^T G`` diagonal is below ``empty_tol`` times
        the largest diagonal counts as having no data.

    Returns:
      :class:`MSCGFit` with the parameters and diagnostics.

    Raises:
      ValueError: if ``term`` is not a ``SplinePair``, the frames have no
        forces or a per-frame box, or ``ridge < 0``.

    References:
      Paper 003 §"Comparison with OpenMSCG" (the pairwise MS-CG baseline);
      Noid et al. (its refs. 47, 51) for the normal equations.
    """
    if not isinstance(term, SplinePair):
        raise ValueError(f"fit_spline_pair fits a SplinePair, got {type(term).__name__}")
    if frames.forces is None:
        raise ValueError("the frames have no forces; force matching needs reference forces")
    if frames.box is not None and np.ndim(frames.box) == 3:
        raise ValueError("fit_spline_pair needs one fixed box; the frames have a per-frame box")
    if not ridge >= 0.0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    if not (isinstance(batch_size, int | np.integer) and batch_size >= 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    S, K = term.n_species, term.n_basis
    n_pairs = S * (S + 1) // 2
    pair_index = _pair_index(S)
    T, N = frames.positions.shape[:2]

    with jax.enable_x64(True):
        model = energy_model(term, species=frames.species, box=frames.box)
        n_chunks = -(-T // batch_size)
        pad = n_chunks * batch_size - T

        def chunked(x):
            x = np.asarray(x, np.float64)
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
            return jnp.asarray(x.reshape((n_chunks, batch_size) + x.shape[1:]))

        R, F = chunked(frames.positions), chunked(frames.forces)
        weight = jnp.asarray((np.arange(n_chunks * batch_size) < T).reshape(n_chunks, batch_size))
        weight = weight.astype(jnp.float64)
        accumulate = jit(
            functools.partial(
                _normal_equations,
                term=term,
                displacement_fn=model.displacement_fn,
                pair_index=pair_index,
            )
        )
        use_list = frames.box is not None and not all_pairs
        multiplier = capacity_multiplier
        while True:
            neighbor = None
            if use_list:
                nbr_fn = model.neighbor_fn(
                    skin=0.0, format="ordered_sparse", capacity_multiplier=multiplier
                )
                neighbor = nbr_fn.allocate(jnp.asarray(frames.positions[0], jnp.float64))
            A, b, ff, counts, overflow = accumulate(R, F, weight, model.species, neighbor)
            if not bool(overflow):
                break
            multiplier *= 2.0
        A, b, ff, counts = (np.asarray(x, np.float64) for x in (A, b, ff, counts))

    n = 3 * N * T
    diag = np.diag(A)
    empty = diag <= empty_tol * max(diag.max(), np.finfo(np.float64).tiny)
    keep = ~empty
    x = np.zeros(n_pairs * K)
    condition = np.nan
    if keep.any():
        A_red = A[np.ix_(keep, keep)] / n + ridge * np.eye(keep.sum())
        b_red = b[keep] / n
        condition = float(np.linalg.cond(A_red))
        if condition < 1e12:
            x[keep] = np.linalg.solve(A_red, b_red)
        else:
            x[keep] = np.linalg.lstsq(A_red, b_red, rcond=None)[0]
    # |Gx - f|^2 from the accumulated sums (no second pass over the frames).
    rss = max(float(x @ A @ x - 2.0 * x @ b + ff), 0.0)
    table = x.reshape(n_pairs, K)[pair_index]
    return MSCGFit(
        params={"coefficients": jnp.asarray(table, term.param_dtype)},
        rmse=float(np.sqrt(rss / n)),
        reference_rms=float(np.sqrt(ff / n)),
        condition_number=condition,
        empty=empty.reshape(n_pairs, K)[pair_index],
        counts=counts[pair_index],
        n_frames=T,
        ridge=float(ridge),
    )
