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

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import space
from jaxtyping import Float

from cgjax._validation import check_finite

__all__ = [
    "box_matrices",
    "box_matrix",
    "box_widths",
    "check_box",
    "is_orthorhombic",
    "make_space",
    "min_image_fn",
    "min_image_in",
    "minimum_image",
    "wrap",
    "wrap_traced",
]


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


def min_image_fn(box: Any):
    """``dR -> `` the minimum image of displacements ``dR [..., 3]`` (nm) in ``box``.

    Orthorhombic boxes subtract the nearest multiple of each edge,
    ``dR - L round(dR / L)``: exact for any ``dR`` and, unlike jax-md's
    ``mod``-based wrap, cheap on a CPU (paper 004's 512-bead edge geometry:
    0.47 -> 0.15 ms). Triclinic boxes round fractional coordinates (the
    nearest image for interactions within half the perpendicular widths,
    which :func:`check_box` asks for). Free space (``None``): ``dR`` itself.
    """
    if box is None:
        return lambda dR: dR
    matrix = box_matrix(box)
    if is_orthorhombic(matrix):
        lengths = np.diag(matrix)

        def orthorhombic(dR):
            side = jnp.asarray(lengths, dR.dtype)
            return dR - side * jnp.round(dR * jnp.asarray(1.0 / lengths, dR.dtype))

        return orthorhombic
    inverse = np.linalg.inv(matrix)

    def triclinic(dR):
        u = dR @ jnp.asarray(inverse.T, dR.dtype)
        return (u - jnp.round(u)) @ jnp.asarray(matrix.T, dR.dtype)

    return triclinic


def min_image_in(dR: jax.Array, box: Any) -> jax.Array:
    """The minimum image of ``dR [..., 3]`` (nm) in a box matrix that may be traced.

    ``box`` is a ``[3, 3]`` matrix (columns are box vectors, nm), e.g. a
    per-frame box inside ``jit``; fractional coordinates are rounded.
    """
    box = jnp.asarray(box, dR.dtype)
    u = dR @ jnp.linalg.inv(box).T
    return (u - jnp.round(u)) @ box.T


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
    _, shift = space.periodic_general(jnp.asarray(matrix), fractional_coordinates=False)
    lengths = np.diag(matrix) if is_orthorhombic(matrix) else None
    min_image = min_image_fn(matrix)

    # The box is handed over in the dtype of the positions, so float32 positions
    # stay float32 even where float64 is enabled (no silent promotion). An
    # orthorhombic box wraps in real coordinates: the round trip through
    # fractional coordinates costs a rounding per step that shows up as
    # energy drift in float32 NVE. The minimum image is cgjax's own, not
    # jax-md's periodic_general displacement: jax 0.10.2 miscompiles that one
    # (jax-ml/jax#39103; benchmarks/jax_versions.py), not this.
    def displacement_fn(Ra, Rb, **kwargs):
        dR = space.pairwise_displacement(Ra, Rb)
        if kwargs.get("box") is not None:
            return min_image_in(dR, kwargs["box"])
        return min_image(dR)

    def shift_fn(R, dR, **kwargs):
        if "box" in kwargs:
            return shift(R, dR, **kwargs)
        if lengths is not None:
            return space.periodic_shift(jnp.asarray(lengths, jnp.result_type(R)), R, dR)
        return shift(R, dR, box=jnp.asarray(matrix, jnp.result_type(R)))

    return displacement_fn, shift_fn


def box_matrices(box: Any) -> np.ndarray | None:
    """``None``, a ``[3, 3]`` matrix or ``[T, 3, 3]`` matrices (columns = box vectors, nm).

    Like :func:`box_matrix`, and also passes a per-frame ``[T, 3, 3]`` box through.
    """
    if box is None:
        return None
    b = np.asarray(box, dtype=np.float64)
    if b.ndim == 3:
        return b
    return box_matrix(b)


def _lattice_shift(x: np.ndarray, box: np.ndarray, round_fn) -> np.ndarray:
    """``box @ round_fn(box^-1 x)`` for ``x`` ``[..., 3]`` (``[T, ..., 3]`` per-frame box)."""
    inv = np.linalg.inv(box)
    if box.ndim == 2:
        return round_fn(x @ inv.T) @ box.T
    if x.shape[0] != box.shape[0]:
        raise ValueError(
            f"per-frame box has {box.shape[0]} frames but the positions have {x.shape[0]}"
        )
    flat = x.reshape(x.shape[0], -1, 3)
    s = round_fn(np.einsum("tij,tkj->tki", inv, flat))
    return np.einsum("tij,tkj->tki", box, s).reshape(x.shape)


def minimum_image(dR: Float[np.ndarray, "... 3"], box: Any) -> np.ndarray:
    """Displacements brought to the nearest periodic image (nm).

    The lattice vector is found by rounding fractional coordinates, which is
    the nearest image for orthorhombic cells and, for (reduced) triclinic ones,
    for displacements well inside half the smallest perpendicular width.

    Args:
      dR: ``[..., 3]`` displacements (nm); ``[T, ..., 3]`` with a per-frame box.
      box: ``None``, scalar, ``[3]``, ``[3, 3]`` or ``[T, 3, 3]`` (nm).

    Returns:
      an array like ``dR`` (same dtype; computed in float64).
    """
    b = box_matrices(box)
    if b is None:
        return np.array(dR, copy=True)
    d = np.asarray(dR, dtype=np.float64)
    out = d - _lattice_shift(d, b, np.round)
    return out.astype(np.result_type(dR), copy=False)


def wrap(positions: Float[np.ndarray, "... 3"], box: Any) -> np.ndarray:
    """Positions moved into the primary cell ``R = box @ s`` with ``0 <= s < 1`` (nm).

    Args:
      positions: ``[..., 3]`` (nm); ``[T, ..., 3]`` with a per-frame box.
      box: ``None`` (returned unchanged), scalar, ``[3]``, ``[3, 3]`` or
        ``[T, 3, 3]`` (nm).
    """
    b = box_matrices(box)
    if b is None:
        return np.array(positions, copy=True)
    r = np.asarray(positions, dtype=np.float64)
    # Only whole lattice vectors are subtracted, so in-cell positions come back
    # bit-identical.
    out = r - _lattice_shift(r, b, np.floor)
    return out.astype(np.result_type(positions), copy=False)


def wrap_traced(R: Float[jax.Array, "N 3"], box: Any) -> jax.Array:
    """:func:`wrap` inside ``jit``: ``R`` moved into ``0 <= s < 1`` of ``box`` (nm).

    For the cell grid of a neighbor-list rebuild inside a traced computation;
    computed in ``R``'s dtype.

    Args:
      R: ``[N, 3]`` positions (nm).
      box: ``None`` (returned unchanged), scalar, ``[3]`` or ``[3, 3]`` (nm), a
        constant (not traced).
    """
    if box is None:
        return R
    matrix = box_matrix(box)
    # the inverse on the host (the box is a constant): no LU factorisation and
    # triangular solves in the compiled segment, where a profile showed them
    inverse = jnp.asarray(np.linalg.inv(matrix).T, R.dtype)
    box = jnp.asarray(matrix, R.dtype)
    frac = R @ inverse
    frac = frac - jnp.floor(frac)
    frac = jnp.where(frac >= 1, frac - 1, frac)  # -tiny - floor(-tiny) rounds to 1
    return frac @ box.T
