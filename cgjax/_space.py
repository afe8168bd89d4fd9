"""Periodic boxes, spaces and neighbor lists, wrapped from jax-md.

Box convention (the one jax-md uses): a box is ``None`` (free space), a scalar
``L`` (cube), a vector ``[Lx, Ly, Lz]`` (orthorhombic) or a ``[3, 3]`` matrix
whose *columns* are the box vectors ``a, b, c`` (upper triangular for a
triclinic cell, positions ``R = T @ u`` for fractional ``u``). GROMACS and
MDAnalysis list box vectors as rows; readers transpose on the way in. All
lengths are in nm.

Positions are always stored in real (not fractional) coordinates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax_md import partition, space

from cgjax._validation import check_finite

__all__ = [
    "CAPACITY_MULTIPLE",
    "pad_neighbor_list",
    "box_matrix",
    "box_widths",
    "check_box",
    "is_orthorhombic",
    "make_space",
    "neighbor_list_fn",
    "NeighborListFn",
]


class NeighborListFn(NamedTuple):
    """jax-md's neighbor-list functions plus the ranges they were built for.

    Attributes:
      fns: jax-md's ``NeighborListFns``.
      cutoff: the interaction cutoff (nm).
      skin: the extra range (nm); the list is rebuilt once any particle has
        moved ``skin / 2``, so no particle may move farther in one step.
    """

    fns: Any
    cutoff: float
    skin: float

    def allocate(self, R, extra_capacity: int = 0, **kwargs):
        """A new list for positions ``R`` (nm), sized from the current pair count.

        The capacity (jax-md's, with its head-room) is rounded up to a multiple
        of :data:`CAPACITY_MULTIPLE` edges (of ``CAPACITY_MULTIPLE / 8`` per
        particle for the dense format), padded with the empty index. XLA's CPU
        code for the edge arrays runs far slower on lengths that are not: one
        force call of paper 004's GNN + LJ + HF on 512 beads took 18.2 ms with
        30195 edges and 8.0 ms with 30196 (7.4-7.7 ms for multiples of 8), so
        MD from some configurations ran at half speed.
        """
        nb = self.fns.allocate(R, extra_capacity=extra_capacity, **kwargs)
        return pad_neighbor_list(nb, R.shape[-2])

    def update(self, R, neighbor, **kwargs):
        """The list re-used (same capacity) for positions ``R``; jit-able.

        Like jax-md's, this rebuilds the pairs only once some particle has moved
        ``skin / 2`` from the positions the list was built at; otherwise it
        returns ``neighbor`` itself.
        """
        return self.fns.update(R, neighbor, **kwargs)

    def rebuild(self, R, neighbor, **kwargs):
        """The pairs of positions ``R`` (nm), built afresh with ``neighbor``'s capacity; jit-able.

        Unlike :meth:`update` it always rebuilds, so the result depends on ``R``
        and ``neighbor``'s capacity only, and stays valid while no particle moves
        ``skin / 2`` from ``R``. (jax-md's update rebuilds once a particle is
        ``skin / 2`` from the list's reference positions; these are set ``skin``
        away from ``R``, which the box, at least ``2 (cutoff + skin)`` wide,
        does not fold back.) Overflow is flagged in ``did_buffer_overflow``.
        """
        shift = jnp.zeros_like(R).at[..., 0].set(self.skin)
        return self.fns.update(R, neighbor.set(reference_position=R + shift), **kwargs)


#: Edge capacities of allocated neighbor lists are multiples of this (see
#: :meth:`NeighborListFn.allocate`).
CAPACITY_MULTIPLE = 64


def pad_neighbor_list(neighbor: Any, n_particles: int, multiple: int = CAPACITY_MULTIPLE):
    """``neighbor`` with its capacity rounded up to a multiple, padded with the empty index.

    Sparse lists (``idx [2, C]``) get ``C`` a multiple of ``multiple``; dense
    ones (``idx [N, K]``) ``K`` a multiple of ``multiple // 8``. The padding
    is jax-md's empty index ``N`` (no pair), and ``max_occupancy`` is raised
    with it, so later updates keep the new size. The padded size stays within
    the candidate pairs jax-md's rebuild produces (``N`` per particle dense,
    ``N^2`` sparse, ``N (N - 1) / 2`` ordered): a rebuild cuts its candidates
    to ``max_occupancy`` and must return the list's shape.
    """
    idx = neighbor.idx
    dense = neighbor.format == partition.Dense
    m = max(1, multiple // 8) if dense else multiple
    size = idx.shape[-1]
    if dense:
        limit = n_particles
    elif neighbor.format == partition.OrderedSparse:
        limit = n_particles * (n_particles - 1) // 2
    else:
        limit = n_particles * n_particles
    pad = min(-size % m, max(0, limit - size))
    if pad == 0:
        return neighbor
    fill = jnp.full(idx.shape[:-1] + (pad,), n_particles, idx.dtype)
    return neighbor.set(idx=jnp.concatenate([idx, fill], axis=-1),
                        max_occupancy=neighbor.max_occupancy + pad)  # fmt: skip


def box_matrix(box: Any) -> np.ndarray:
    """Returns the box as a ``[3, 3]`` matrix with box vectors as columns (nm).

    Args:
      box: scalar, ``[3]`` lengths or ``[3, 3]`` matrix (nm). Must be concrete.

    Raises:
      ValueError: if the box has another shape or is not finite and positive.
    """
    b = np.asarray(box, dtype=np.float64)
    if b.ndim == 0:
        b = np.full(3, float(b))
    if b.shape == (3,):
        if np.any(b <= 0):
            raise ValueError(f"box lengths must be positive (nm), got {b.tolist()}")
        b = np.diag(b)
    if b.shape != (3, 3):
        raise ValueError(
            f"box must be a scalar, [3] lengths or a [3, 3] matrix (nm), got shape {b.shape}"
        )
    check_finite(b, "box")
    if np.linalg.det(b) <= 0:
        raise ValueError(f"box matrix must have positive volume, got det = {np.linalg.det(b)}")
    return b


def is_orthorhombic(box: Any) -> bool:
    """True when the box matrix is diagonal."""
    b = box_matrix(box)
    return bool(np.allclose(b, np.diag(np.diag(b))))


def box_widths(box: Any) -> np.ndarray:
    """Perpendicular widths of the cell, ``V / |b x c|`` etc. (nm), shape ``[3]``.

    The minimum-image convention is exact for interactions shorter than half
    the smallest width.
    """
    b = box_matrix(box)
    a1, a2, a3 = b[:, 0], b[:, 1], b[:, 2]
    volume = abs(np.linalg.det(b))
    return np.array(
        [
            volume / np.linalg.norm(np.cross(a2, a3)),
            volume / np.linalg.norm(np.cross(a3, a1)),
            volume / np.linalg.norm(np.cross(a1, a2)),
        ]
    )


def check_box(box: Any, cutoff: float, *, name: str = "box") -> None:
    """Raises ``ValueError`` unless every perpendicular width is ``>= 2 * cutoff``.

    Args:
      box: the periodic box (see module docstring), or ``None`` for free space.
      cutoff: interaction range in nm (the largest cutoff of a potential, plus
        the neighbor-list skin where one is used).
      name: how the box is named in the message.
    """
    if box is None or cutoff is None or cutoff <= 0:
        return
    widths = box_widths(box)
    if np.any(widths < 2.0 * cutoff):
        raise ValueError(
            f"{name} is too small for the cutoff: its perpendicular widths are "
            f"{np.round(widths, 6).tolist()} nm but the minimum-image convention needs "
            f"every width >= 2 * cutoff = {2.0 * cutoff:.6g} nm. Use a larger box "
            "(replicate the system) or a shorter cutoff."
        )


def make_space(box: Any):
    """Returns jax-md's ``(displacement_fn, shift_fn)`` for a box in real coordinates.

    ``displacement_fn(Ra, Rb, box=new_box)`` accepts a per-call box (``[3, 3]``
    matrix, nm), which is how per-frame boxes reach the potentials.

    Args:
      box: ``None`` for free space, else scalar, ``[3]`` or ``[3, 3]`` (nm).
    """
    if box is None:
        return space.free()
    matrix = box_matrix(box)
    displacement, shift = space.periodic_general(jnp.asarray(matrix), fractional_coordinates=False)
    lengths = np.diag(matrix) if is_orthorhombic(matrix) else None

    # The box is handed over in the dtype of the positions, so float32 positions
    # stay float32 even where float64 is enabled (no silent promotion). An
    # orthorhombic box wraps in real coordinates: the round trip through
    # fractional coordinates costs a rounding per step that shows up as
    # energy drift in float32 NVE.
    def displacement_fn(Ra, Rb, **kwargs):
        if "box" in kwargs:
            return displacement(Ra, Rb, **kwargs)
        if lengths is not None:
            side = jnp.asarray(lengths, jnp.result_type(Ra))
            return space.periodic_displacement(side, space.pairwise_displacement(Ra, Rb))
        return displacement(Ra, Rb, box=jnp.asarray(matrix, jnp.result_type(Ra)))

    def shift_fn(R, dR, **kwargs):
        if "box" in kwargs:
            return shift(R, dR, **kwargs)
        if lengths is not None:
            return space.periodic_shift(jnp.asarray(lengths, jnp.result_type(R)), R, dR)
        return shift(R, dR, box=jnp.asarray(matrix, jnp.result_type(R)))

    return displacement_fn, shift_fn


def neighbor_list_fn(
    box: Any,
    cutoff: float,
    *,
    skin: float = 0.1,
    capacity_multiplier: float = 1.25,
    format: str = "sparse",
    **kwargs,
):
    """Builds a jax-md neighbor-list function for a box in real coordinates.

    Args:
      box: the periodic box (nm), or ``None`` for free space.
      cutoff: the potential's cutoff (nm).
      skin: extra range so the list stays valid while particles move (nm). The
        list must be rebuilt once any particle moved ``skin / 2``.
      capacity_multiplier: head-room for the allocated capacity.
      format: ``"sparse"`` (directed pairs, both directions), ``"ordered_sparse"``
        (each pair once) or ``"dense"`` (``[N, max_neighbors]``).

    Returns:
      a :class:`NeighborListFn` with ``.allocate(R)`` and ``.update(R, nbrs)``.

    Raises:
      ValueError: if the box is narrower than ``2 * (cutoff + skin)``.
    """
    formats = {
        "sparse": partition.Sparse,
        "ordered_sparse": partition.OrderedSparse,
        "dense": partition.Dense,
    }
    if format not in formats:
        raise ValueError(f"neighbor-list format must be one of {sorted(formats)}, got {format!r}")
    displacement_fn, _ = make_space(box)
    r_list = cutoff + skin
    if box is None:
        # Free space: jax-md needs a box only for its cell list.
        fns = partition.neighbor_list(
            displacement_fn,
            jnp.ones(3),
            cutoff,
            dr_threshold=skin,
            capacity_multiplier=capacity_multiplier,
            disable_cell_list=True,
            format=formats[format],
            **kwargs,
        )
        return NeighborListFn(fns, float(cutoff), float(skin))
    check_box(box, r_list, name="box (cutoff + skin)")
    matrix = box_matrix(box)
    if is_orthorhombic(matrix):
        cell_box = jnp.asarray(np.diag(matrix))
        disable_cell_list = False
    else:
        # jax-md's cell list needs fractional coordinates for triclinic cells.
        cell_box = jnp.asarray(matrix)
        disable_cell_list = True
    fns = partition.neighbor_list(
        displacement_fn,
        cell_box,
        cutoff,
        dr_threshold=skin,
        capacity_multiplier=capacity_multiplier,
        disable_cell_list=kwargs.pop("disable_cell_list", disable_cell_list),
        fractional_coordinates=False,
        format=formats[format],
        **kwargs,
    )
    return NeighborListFn(fns, float(cutoff), float(skin))
