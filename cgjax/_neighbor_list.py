"""Neighbor lists built inside jit: a cell list (or all pairs), compacted without sorting edges.

A neighbor list holds every pair closer than ``cutoff + skin`` (nm) at the
positions it was built from, and stays valid until some particle has moved
``skin / 2``; :meth:`NeighborListFn.update` checks that inside the compiled
step and rebuilds only then. Its :class:`NeighborList` is a pytree that
jax-md's simulators pass through to the energy like their own lists, in jax-md's
three formats (``partition.NeighborListFormat``):

- ``Sparse``: ``idx [2, C]`` of directed edges ``(receiver i, sender j)``,
  both directions of every pair;
- ``OrderedSparse``: the same with each pair once (pair potentials);
- ``Dense``: ``idx [N, K]``, row ``i`` listing ``i``'s neighbours.

Padding entries are self pairs ``(i, i)`` (jax-md pads with ``N``): an edge
whose receiver is its sender is no edge. Every index is then a valid particle,
so the energy needs no clamping per call, and padding spreads over the
particles instead of piling onto one.

Why not jax-md's lists (profile in ``benchmarks/README.md``): on a CPU, XLA
runs the scatter-adds of the force (the gradient of the edge gathers) ~5x
slower when consecutive edges share a receiver, which jax-md's receiver-sorted
sparse lists always do; here edges are laid out slot-major (the first
neighbour of every particle, then the second, ...), so consecutive edges have
different receivers. The rebuild itself avoids XLA's slow cumulative sums and
sorts of all candidates: candidate masks are packed into 32-bit words, and the
``k``-th neighbour of each particle is found by population counts (rebuild of
512 water beads 0.8 ms here against jax-md's 9 ms).

Candidates are all other particles when the box holds fewer than four cells of
``cutoff + skin`` along some axis (or in free space and triclinic boxes), else
the particles of the 27 cells around a particle's own (a cell list; cost
linear in ``N``). Every capacity (edges, slots per particle, particles per
cell) is fixed at allocation; exceeding one sets ``did_buffer_overflow``
instead of dropping pairs silently, and the simulation runner then reallocates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax
from jax_md import partition

from cgjax._space import box_matrix, check_box, is_orthorhombic, min_image_fn

__all__ = [
    "CAPACITY_MULTIPLE",
    "NeighborList",
    "NeighborListFn",
    "allocate_neighbor_list",
    "grow_neighbor_list",
    "neighbor_list_fn",
]

#: Edge capacities of sparse lists are multiples of this (dense widths of
#: ``CAPACITY_MULTIPLE // 8``): XLA's CPU code for the edge arrays ran far
#: slower on other lengths (paper 004's GNN + LJ + HF on 512 beads: 18.2 ms with
#: 30195 edges, 8.0 ms with 30196).
CAPACITY_MULTIPLE = 64

_FORMATS = {
    "sparse": partition.NeighborListFormat.Sparse,
    "ordered_sparse": partition.NeighborListFormat.OrderedSparse,
    "dense": partition.NeighborListFormat.Dense,
}

# Rows of candidate pairs handled at once while rebuilding: bounds the
# rebuild's memory to ~_BLOCK_PAIRS x 20 bytes whatever N is.
_BLOCK_PAIRS = 1 << 22


@struct.dataclass
class NeighborList:
    """The pairs within ``cutoff + skin`` of some positions (a pytree).

    Attributes:
      idx: ``[2, C]`` (sparse formats; row 0 receivers ``i``, row 1 senders
        ``j``) or ``[N, K]`` (dense) particle indices; self pairs ``(i, i)``
        are padding.
      reference_position: ``[N, 3]`` positions (nm) the pairs were found at.
      overflow: bool scalar: some capacity was exceeded since allocation (the
        list then misses pairs and must be reallocated).
      format: jax-md's ``NeighborListFormat``.
      row_capacity: neighbours per particle the rebuild can hold (``K``).
      cell_capacity: particles per cell of the cell list (0: all pairs).
      update_fn: ``update_fn(R, list) -> list`` (what :meth:`update` calls).
    """

    idx: jax.Array
    reference_position: jax.Array
    overflow: jax.Array
    format: Any = struct.field(pytree_node=False)
    row_capacity: int = struct.field(pytree_node=False)
    cell_capacity: int = struct.field(pytree_node=False)
    update_fn: Callable = struct.field(pytree_node=False)

    @property
    def did_buffer_overflow(self) -> jax.Array:
        """True when a capacity was exceeded: some pairs are missing."""
        return self.overflow

    @property
    def max_occupancy(self) -> int:
        """The list's capacity: edges (sparse) or neighbours per particle (dense)."""
        return int(self.idx.shape[-1])

    def update(self, R: jax.Array, **unused) -> NeighborList:
        """The list for positions ``R`` (nm): rebuilt once a particle moved ``skin / 2``."""
        del unused
        return self.update_fn(R, self)

    def set(self, **changes: Any) -> NeighborList:
        """A copy with fields replaced (jax-md's spelling of ``replace``)."""
        return self.replace(**changes)


def _round_up(x: float, multiple: int) -> int:
    return max(multiple, int(math.ceil(x / multiple)) * multiple)


def _kth_set_bits(mask: jax.Array, k_slots: int) -> tuple[jax.Array, jax.Array]:
    """Column of the ``k``-th True of every row, for ``k < k_slots``; and the row counts.

    Args:
      mask: ``[B, P]`` bool, ``P`` a multiple of 32.

    Returns:
      ``(cols [B, k_slots] int32, counts [B] int32)``; ``cols`` is ``P`` where
      a row has fewer than ``k + 1`` Trues.
    """
    b, p = mask.shape
    w = p // 32
    shifts = jnp.arange(32, dtype=jnp.uint32)
    # distinct bits: the sum is an OR
    words = jnp.sum(mask.reshape(b, w, 32).astype(jnp.uint32) << shifts, axis=2, dtype=jnp.uint32)
    per_word = lax.population_count(words).astype(jnp.int32)  # [B, W]
    upto = jnp.cumsum(per_word, axis=1)  # inclusive, [B, W] (W is small)
    k = jnp.arange(k_slots, dtype=jnp.int32)
    word = jnp.sum(upto[:, None, :] <= k[None, :, None], axis=2, dtype=jnp.int32)  # [B, K]
    found = word < w
    word = jnp.minimum(word, w - 1)
    bits = jnp.take_along_axis(words, word, axis=1)
    rank = k[None, :] - (
        jnp.take_along_axis(upto, word, axis=1) - jnp.take_along_axis(per_word, word, axis=1)
    )
    # the rank-th set bit of `bits`: binary search on the count of lower bits
    lo = jnp.zeros_like(rank)
    for step in (16, 8, 4, 2, 1):
        mid = lo + step
        below = lax.population_count(bits & ((jnp.uint32(1) << mid.astype(jnp.uint32)) - 1))
        lo = jnp.where(below.astype(jnp.int32) <= rank, mid, lo)
    return jnp.where(found, word * 32 + lo, p), upto[:, -1]


def _compact_scattered(rows: jax.Array, receivers: jax.Array, n: int, capacity: int):
    """``[2, capacity]`` edges of rows ``[R, K]`` (receivers ``[R]``) and their count.

    Edges are listed slot-major (every particle's first neighbour, then the
    second, ...) and then spread over the list by a transpose: edge ``p`` goes
    to slot ``(p mod 64) capacity / 64 + p // 64``. Consecutive edges so share
    neither a receiver nor, mostly, a sender, and padding is spread too: XLA's
    CPU scatter-add (the gradient of an edge gather) ran 4x faster so on 864
    argon atoms (0.34 -> 0.08 ms) than on a list sorted by receiver.
    """
    # materialised once: XLA would otherwise recompute the rows inside the scatter
    rows = lax.optimization_barrier(rows)
    k = rows.shape[1]
    senders = rows.T.reshape(-1)  # [K R]
    valid = senders < n
    pos = jnp.cumsum(valid, dtype=jnp.int32) - 1
    keep = valid & (pos < capacity)
    if capacity % CAPACITY_MULTIPLE == 0:
        a = CAPACITY_MULTIPLE
        pos = (pos % a) * (capacity // a) + pos // a
    pos = jnp.where(keep, pos, capacity)  # out of range: dropped
    edges = jnp.stack([jnp.tile(receivers, k), senders], axis=1)
    # padding: self pairs (e mod N, e mod N), spread over the particles (a
    # scatter-add whose updates hit one row in a row is several times slower)
    pad = jnp.broadcast_to((jnp.arange(capacity, dtype=rows.dtype) % n)[:, None], (capacity, 2))
    out = pad.at[pos].set(edges, mode="drop")
    return out.T, jnp.sum(valid, dtype=jnp.int32)


class NeighborListFn:
    """Allocates and updates :class:`NeighborList` s of one box, range and format.

    Build it with :func:`neighbor_list_fn` (or ``model.neighbor_fn(skin=...)``).

    Attributes:
      box: ``[3, 3]`` box matrix (nm), or None (free space).
      cutoff: the interaction cutoff (nm).
      skin: extra range (nm); no particle may move ``skin / 2`` between rebuilds.
      format: jax-md's ``NeighborListFormat``.
      capacity_multiplier: head-room of allocated capacities over the counts.
      grid: cells along each axis of the cell list, or None (all pairs).
    """

    def __init__(
        self,
        box: Any,
        cutoff: float,
        *,
        skin: float = 0.1,
        format: str = "sparse",
        capacity_multiplier: float = 1.1,
        cell_list: bool | None = None,
    ):
        if format not in _FORMATS:
            raise ValueError(
                f"neighbor-list format must be one of {sorted(_FORMATS)}, got {format!r}"
            )
        if not (cutoff > 0 and skin >= 0):
            raise ValueError(f"need cutoff > 0 and skin >= 0 (nm), got {cutoff}, {skin}")
        if not capacity_multiplier > 0:
            raise ValueError(f"capacity_multiplier must be positive, got {capacity_multiplier}")
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.r_list = self.cutoff + self.skin
        self.format = _FORMATS[format]
        self.format_name = format
        self.capacity_multiplier = float(capacity_multiplier)
        self.box = None if box is None else box_matrix(box)
        if self.box is not None:
            check_box(self.box, self.r_list, name="box (cutoff + skin)")
        self.min_image = min_image_fn(self.box)
        grid = None
        if self.box is not None and is_orthorhombic(self.box):
            n_cells = np.floor(np.diag(self.box) / self.r_list).astype(int)
            if cell_list or (cell_list is None and np.all(n_cells >= 4)):
                if np.any(n_cells < 3):
                    raise ValueError(
                        f"a cell list needs 3 cells of cutoff + skin = {self.r_list:.4g} nm "
                        f"along every axis; the box {np.diag(self.box).tolist()} nm has "
                        f"{n_cells.tolist()}"
                    )
                grid = tuple(int(c) for c in n_cells)
        elif cell_list:
            raise ValueError("a cell list needs an orthorhombic periodic box")
        self.grid = grid
        if grid is not None:
            cells = np.stack(np.meshgrid(*[np.arange(g) for g in grid], indexing="ij"), -1)
            cells = cells.reshape(-1, 3)
            offsets = np.array(list(itertools.product((-1, 0, 1), repeat=3)))
            around = (cells[:, None, :] + offsets[None]) % np.asarray(grid)
            self._around = (around[..., 0] * grid[1] + around[..., 1]) * grid[2] + around[..., 2]
        self._update = self._make_update()
        # host-side allocation: compiled once per shape and capacity
        self._jit_max_cell = jax.jit(self._max_cell)
        self._jit_counts = jax.jit(self._counts, static_argnums=1)
        self._jit_build = jax.jit(self._build, static_argnums=(1, 2, 3))
        batched = lambda R, c, k, m: jax.vmap(lambda r: self._build(r, c, k, m))(R)  # noqa: E731
        self._jit_build_batched = jax.jit(batched, static_argnums=(1, 2, 3))

    # ------------------------------------------------------------------ building

    def _cells(self, R: jax.Array) -> jax.Array:
        """``[N]`` flat cell index of every particle (positions wrapped periodically)."""
        lengths = jnp.asarray(np.diag(self.box), R.dtype)
        grid = jnp.asarray(self.grid)
        c = jnp.floor(R / lengths * grid).astype(jnp.int32) % grid
        return (c[:, 0] * self.grid[1] + c[:, 1]) * self.grid[2] + c[:, 2]

    def _cell_table(self, cell: jax.Array, n: int, m_cap: int):
        """Particles of each cell, ``[n_cells, M]`` (padding ``n``), where each particle
        sits in it (flat index ``c M + slot``, ``[N]``), and the fullest cell's count."""
        n_cells = int(np.prod(self.grid))
        order = jnp.argsort(cell).astype(jnp.int32)
        sorted_cells = cell[order]
        ids = jnp.arange(n_cells, dtype=jnp.int32)
        start = jnp.searchsorted(sorted_cells, ids, side="left").astype(jnp.int32)
        count = jnp.searchsorted(sorted_cells, ids, side="right").astype(jnp.int32) - start
        slot = jnp.arange(m_cap, dtype=jnp.int32)
        at = jnp.minimum(start[:, None] + slot, n - 1)
        table = jnp.where(slot < count[:, None], order[at], n)
        rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
        where = cell * m_cap + jnp.minimum(rank - start[cell], m_cap - 1)
        return table, where, jnp.max(count)

    def _groups(self, R: jax.Array, m_cap: int):
        """Particles grouped with the candidates they share.

        Returns ``(members [G, M], candidates [G', P], row [G], where [N], max_cell)``:
        group ``g``'s members pair with the candidates of row ``row[g]``; padding
        is ``N``; ``where[i]`` is particle ``i``'s flat index in ``members``.
        A cell list groups by cell (27 cells of candidates); all pairs use one
        candidate row, every particle, for groups of 32.
        """
        n = R.shape[0]
        if self.grid is None:
            m = min(32, n)
            g = -(-n // m)
            members = jnp.arange(g * m, dtype=jnp.int32).reshape(g, m)
            members = jnp.where(members < n, members, n)
            candidates = jnp.arange(_round_up(n, 32), dtype=jnp.int32)[None]
            candidates = jnp.where(candidates < n, candidates, n)
            row = jnp.zeros(g, jnp.int32)
            return members, candidates, row, jnp.arange(n), jnp.asarray(0, jnp.int32)
        table, where, max_cell = self._cell_table(self._cells(R), n, m_cap)
        candidates = table[jnp.asarray(self._around, jnp.int32)].reshape(table.shape[0], -1)
        width = _round_up(candidates.shape[1], 32)
        candidates = jnp.pad(candidates, ((0, 0), (0, width - candidates.shape[1])),
                             constant_values=n)  # fmt: skip
        return table, candidates, jnp.arange(table.shape[0]), where, max_cell

    def _rows(self, R: jax.Array, k_cap: int, m_cap: int):
        """Neighbours of the grouped particles: ``(rows [G M, K], receivers [G M],
        counts [G M], where [N], max cell count)``.

        ``k_cap = 0`` counts without listing; ``m_cap`` is the cell capacity.
        """
        n = R.shape[0]
        half = self.format == partition.NeighborListFormat.OrderedSparse
        r2_max = jnp.asarray(self.r_list**2, R.dtype)
        members, candidates, row, where, max_cell = self._groups(R, m_cap)
        g, m = members.shape
        p = candidates.shape[1]
        Rp = jnp.concatenate([R, jnp.zeros((1, 3), R.dtype)])  # index n: padding

        def block(args):
            """Groups ``[B]`` -> ``([B M, K] neighbours, [B M] counts)``."""
            i, r = args  # [B, M] members, [B] candidate rows
            j = candidates[r]  # [B, P]
            d = self.min_image(Rp[j][:, None, :, :] - Rp[i][:, :, None, :])  # [B, M, P, 3]
            i, j = i[:, :, None], j[:, None, :]
            ok = (jnp.sum(d * d, -1) < r2_max) & (j < n) & (i < n) & (j != i)
            if half:  # each pair once, spread evenly over the rows
                ok = ok & ((j > i) ^ ((j + i) % 2 == 1))
            ok = ok.reshape(-1, p)
            if k_cap == 0:  # counting only
                return jnp.zeros((ok.shape[0], 0), jnp.int32), jnp.sum(ok, 1, dtype=jnp.int32)
            cols, count = _kth_set_bits(ok, k_cap)
            flat = (jnp.arange(j.shape[0], dtype=jnp.int32)[:, None, None] * p
                    + jnp.minimum(cols, p - 1).reshape(j.shape[0], m, k_cap))  # fmt: skip
            nbrs = j.reshape(-1)[flat].reshape(-1, k_cap)
            return jnp.where(cols < p, nbrs, n), count

        per_block = max(1, min(g, _BLOCK_PAIRS // (m * p)))
        n_blocks = -(-g // per_block)
        pad = n_blocks * per_block - g
        members_p = jnp.pad(members, ((0, pad), (0, 0)), constant_values=n)
        row_p = jnp.pad(row, (0, pad))
        if n_blocks == 1:
            rows, counts = block((members_p, row_p))
        else:
            rows, counts = lax.map(
                block, (members_p.reshape(n_blocks, per_block, m), row_p.reshape(n_blocks, -1))
            )
            rows, counts = rows.reshape(n_blocks * per_block * m, k_cap), counts.reshape(-1)
        return rows[: g * m], members.reshape(-1), counts[: g * m], where, max_cell

    def _build(self, R: jax.Array, capacity: int, k_cap: int, m_cap: int):
        """``(idx, overflow)`` of positions ``R`` with the given capacities."""
        n = R.shape[0]
        rows, receivers, counts, where, max_cell = self._rows(R, k_cap, m_cap)
        overflow = (jnp.max(counts) > k_cap) | (max_cell > m_cap)
        if self.format == partition.NeighborListFormat.Dense:
            rows = rows[where]
            own = jnp.arange(n, dtype=rows.dtype)[:, None]
            return jnp.where(rows < n, rows, own), overflow  # padding: (i, i)
        idx, total = _compact_scattered(rows, receivers, n, capacity)
        return idx, overflow | (total > capacity)

    def _max_cell(self, frames: jax.Array) -> jax.Array:
        """The most particles any cell holds over ``frames [T, N, 3]`` (nm)."""
        n = frames.shape[1]
        return jnp.max(lax.map(lambda R: self._cell_table(self._cells(R), n, 1)[2], frames))

    def _counts(self, frames: jax.Array, m_cap: int) -> jax.Array:
        """``[2]``: the most edges and neighbours per particle over ``frames`` (``m_cap``
        at least the fullest cell, so the counts are exact)."""

        def one(R):
            _, _, counts, _, _ = self._rows(R, 0, m_cap)
            return jnp.stack([jnp.sum(counts), jnp.max(counts)])

        return jnp.max(lax.map(one, frames), axis=0)

    # ------------------------------------------------------------------ public

    def allocate(
        self, R: Any, *, at_least: NeighborList | None = None, size_for: Any = None
    ) -> NeighborList:
        """A list for positions ``R`` (nm), ``[N, 3]`` or ``[B, N, 3]`` (one per replica).

        Capacities are the counts at ``R`` (the largest over replicas) times
        ``capacity_multiplier``; edge capacities are rounded up to
        :data:`CAPACITY_MULTIPLE`. Runs on the host (not jit-able: shapes
        depend on the positions).

        Args:
          R: positions (nm); concrete.
          at_least: an earlier list (e.g. one that overflowed): every capacity
            is then also at least 25 % above that list's.
          size_for: more configurations ``[T, N, 3]`` (nm) the capacities must
            hold (e.g. every training frame, each rebuilt into this list).
        """
        R = jnp.asarray(R)
        if R.ndim not in (2, 3) or R.shape[-1] != 3:
            raise ValueError(f"positions must be [N, 3] or [B, N, 3] (nm), got shape {R.shape}")
        frames = R.reshape((-1,) + R.shape[-2:])
        if size_for is not None:
            more = jnp.asarray(size_for, R.dtype)
            frames = jnp.concatenate([frames, more.reshape((-1,) + frames.shape[1:])])
        n = frames.shape[1]
        max_cell = 0 if self.grid is None else int(self._jit_max_cell(frames))
        edges, max_row = (int(c) for c in self._jit_counts(frames, max_cell))
        mult = self.capacity_multiplier
        dense = self.format == partition.NeighborListFormat.Dense
        k_cap = max_row * mult if dense else max(max_row * 1.5, max_row + 8)
        k_cap = _round_up(k_cap, CAPACITY_MULTIPLE // 8)
        capacity = _round_up(max(edges * mult, 1), CAPACITY_MULTIPLE)
        m_cap = 0 if self.grid is None else int(math.ceil(max(max_cell * 1.5, max_cell + 4)))
        if at_least is not None:
            grow = lambda new, old: max(new, int(math.ceil(1.25 * old)))  # noqa: E731
            k_cap = _round_up(grow(k_cap, at_least.row_capacity), CAPACITY_MULTIPLE // 8)
            if not dense:
                capacity = _round_up(grow(capacity, at_least.idx.shape[-1]), CAPACITY_MULTIPLE)
            if self.grid is not None:
                m_cap = grow(m_cap, at_least.cell_capacity)
        if dense:
            capacity = k_cap
        m_cap = min(m_cap, n) if self.grid is not None else 0
        build = self._jit_build_batched if R.ndim == 3 else self._jit_build
        idx, overflow = build(R, capacity, k_cap, m_cap)
        return NeighborList(
            idx=idx,
            reference_position=R,
            overflow=overflow,
            format=self.format,
            row_capacity=k_cap,
            cell_capacity=m_cap,
            update_fn=self._update,
        )

    def rebuild(self, R: jax.Array, neighbor: NeighborList) -> NeighborList:
        """The pairs at ``R`` (nm) built afresh with ``neighbor``'s capacities; jit-able.

        Unlike :meth:`update` it always rebuilds, so the result depends on
        ``R`` and the capacities only. Overflow is added to ``did_buffer_overflow``.
        """
        capacity = neighbor.idx.shape[-1]
        idx, overflow = self._build(R, capacity, neighbor.row_capacity, neighbor.cell_capacity)
        return neighbor.replace(
            idx=idx, reference_position=R, overflow=neighbor.overflow | overflow
        )

    def needs_rebuild(self, R: jax.Array, neighbor: NeighborList) -> jax.Array:
        """True once some particle has moved ``skin / 2`` (nm) since the list was built."""
        d = self.min_image(R - neighbor.reference_position)
        return jnp.max(jnp.sum(d * d, -1)) >= jnp.asarray((0.5 * self.skin) ** 2, R.dtype)

    def _make_update(self):
        def update(R, neighbor):
            return lax.cond(
                self.needs_rebuild(R, neighbor),
                lambda: self.rebuild(R, neighbor),
                lambda: neighbor,
            )

        return update

    def update(self, R: jax.Array, neighbor: NeighborList) -> NeighborList:
        """The list for positions ``R`` (nm); jit-able. Rebuilt (same capacities)
        only once some particle has moved ``skin / 2``, else ``neighbor`` itself."""
        return self._update(R, neighbor)

    def __repr__(self) -> str:
        grid = getattr(self, "grid", None)
        where = "all pairs" if grid is None else f"cells {grid}"
        return (
            f"NeighborListFn({self.format_name}, cutoff={self.cutoff:g} nm, "
            f"skin={self.skin:g} nm, {where})"
        )


def neighbor_list_fn(
    box: Any,
    cutoff: float,
    *,
    skin: float = 0.1,
    capacity_multiplier: float = 1.1,
    format: str = "sparse",
    cell_list: bool | None = None,
) -> NeighborListFn:
    """A neighbor-list function for a box in real coordinates (the same object for equal settings).

    Args:
      box: the periodic box (nm: scalar, ``[3]`` or ``[3, 3]``), or ``None`` for
        free space.
      cutoff: the potential's cutoff (nm).
      skin: extra range so the list stays valid while particles move (nm). The
        list is rebuilt once any particle moved ``skin / 2``.
      capacity_multiplier: head-room of the allocated capacities over the
        counts at allocation (below 1 the list overflows at once: for tests).
        1.1 (jax-md's is 1.25): every edge costs time at every step (paper
        004's model on 512 beads: 18 % faster than with 1.25), and in a liquid
        at fixed volume the pair count varies by ~1 %; an overflow is caught
        and the list reallocated wherever cgjax simulates or trains.
      format: ``"sparse"`` (directed pairs, both directions), ``"ordered_sparse"``
        (each pair once) or ``"dense"`` (``[N, max_neighbors]``).
      cell_list: True: a cell list (orthorhombic boxes with 3 cells of
        ``cutoff + skin`` per axis); False: all pairs; None: a cell list where
        the box holds at least 4 cells per axis.

    Returns:
      a :class:`NeighborListFn` with ``.allocate(R)``, ``.update(R, nbrs)`` and
      ``.rebuild(R, nbrs)``.

    Raises:
      ValueError: if the box is narrower than ``2 * (cutoff + skin)``, or on an
        unknown format.
    """
    key = (
        None if box is None else np.asarray(box_matrix(box), np.float64).tobytes(),
        float(cutoff), float(skin), float(capacity_multiplier), format, cell_list,
    )  # fmt: skip
    hit = _FN_CACHE.get(key)
    if hit is not None:
        return hit
    fn = NeighborListFn(
        box,
        cutoff,
        skin=skin,
        format=format,
        capacity_multiplier=capacity_multiplier,
        cell_list=cell_list,
    )
    if len(_FN_CACHE) >= 64:
        _FN_CACHE.pop(next(iter(_FN_CACHE)))
    _FN_CACHE[key] = fn
    return fn


#: One NeighborListFn per setting: the compiled simulations are cached by it (the
#: runner's chunks, the differentiable segments), so an equal setting must give
#: the same object or every call (a probe evaluation, an RDF update) recompiles.
_FN_CACHE: dict = {}


def allocate_neighbor_list(model: Any, positions: Any, **kwargs: Any) -> Any:
    """A neighbor list wide enough for every frame of ``positions`` ``[T, N, 3]`` (nm).

    Pass it as ``force_matching(..., neighbor=...)``: each batch rebuilds it
    from scratch per frame inside jit with this fixed capacity. Frames are
    independent, so the skin defaults to 0. The cell list is off by default:
    its occupancy is fixed at allocation and another frame could overflow it,
    while the O(N^2) search is cheap next to the model on the listed pairs.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel`.
      positions: all frames the trainer will see (train and validation).
      **kwargs: for ``model.neighbor_fn`` (``skin``, ``format``,
        ``capacity_multiplier``, ``cell_list``) and ``at_least`` (a list
        whose capacities the new one exceeds by 25 %).
    """
    at_least = kwargs.pop("at_least", None)
    kwargs.setdefault("skin", 0.0)
    kwargs.setdefault("cell_list", False)
    R = jnp.asarray(positions)
    R = R.reshape((-1,) + R.shape[-2:])
    return model.neighbor_fn(**kwargs).allocate(R[0], size_for=R, at_least=at_least)


def grow_neighbor_list(model: Any, neighbor: Any, positions: Any) -> Any:
    """A wider copy of ``neighbor``: fits every frame of ``positions`` ``[T, N, 3]`` (nm).

    Every capacity is at least 25 % above the old one (the rule of
    :meth:`NeighborListFn.allocate`, which :func:`cgjax.simulate.run` uses
    too), in the same format, skin 0.
    """
    fmt = next(name for name, f in _FORMATS.items() if f == neighbor.format)
    return allocate_neighbor_list(model, positions, format=fmt, at_least=neighbor)
