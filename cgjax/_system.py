"""The system being simulated: box, species, masses and its jax-md space."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import struct

from cgjax._neighbor_list import neighbor_list_fn
from cgjax._space import box_matrix, make_space
from cgjax._validation import check_finite, check_positions, check_species

__all__ = ["System", "fcc_lattice", "system_of"]


@struct.dataclass
class System:
    """A periodic (or free) system of ``N`` particles.

    Attributes:
      box: ``[3, 3]`` box matrix, columns are box vectors (nm), or ``None``.
      species: ``[N]`` int species.
      masses: ``[N]`` masses (amu).
      displacement_fn, shift_fn: the jax-md space in real coordinates.
    """

    box: Any = struct.field(pytree_node=False)
    species: np.ndarray = struct.field(pytree_node=False)
    masses: np.ndarray = struct.field(pytree_node=False)
    displacement_fn: Callable = struct.field(pytree_node=False)
    shift_fn: Callable = struct.field(pytree_node=False)

    @classmethod
    def create(cls, *, box: Any, species: Any, masses: Any) -> System:
        """Builds and validates a system.

        Args:
          box: ``None``, scalar, ``[3]`` or ``[3, 3]`` (nm).
          species: ``[N]`` int species.
          masses: ``[N]`` (or a scalar for all) masses in amu.

        Raises:
          ValueError: masses of the wrong length, non-positive or non-finite
            masses, a malformed box.
        """
        species = check_species(species, None)
        n = species.shape[0]
        m = np.asarray(masses, np.float64)
        if m.ndim == 0:
            m = np.full(n, float(m))
        if m.shape != (n,):
            raise ValueError(
                f"masses must have shape [N] = [{n}] (one per particle, amu), got {m.shape}"
            )
        check_finite(m, "masses")
        if np.any(m <= 0):
            raise ValueError(
                f"masses must be positive (amu); particle {int(np.argmin(m))} has {m.min()}"
            )
        matrix = None if box is None else box_matrix(box)
        displacement_fn, shift_fn = make_space(matrix)
        return cls(
            box=matrix,
            species=species,
            masses=m,
            displacement_fn=displacement_fn,
            shift_fn=shift_fn,
        )

    @property
    def n_particles(self) -> int:
        return int(self.species.shape[0])

    @property
    def volume(self) -> float:
        """Box volume (nm^3)."""
        return float(abs(np.linalg.det(self.box)))

    def check_positions(self, R: Any, name: str = "positions R") -> None:
        """Raises ``ValueError`` on a wrong shape or non-finite positions."""
        check_positions(R, self.n_particles, name)

    def neighbor_fn(self, cutoff: float, *, skin: float = 0.1, format: str = "sparse", **kw):
        """A jax-md neighbor-list function covering ``cutoff + skin`` (nm)."""
        return neighbor_list_fn(self.box, cutoff, skin=skin, format=format, **kw)

    def mass_array(self, dtype=jnp.float32) -> jnp.ndarray:
        return jnp.asarray(self.masses, dtype)


def fcc_lattice(n_cells: int, number_density: float) -> tuple[np.ndarray, float]:
    """A face-centred cubic crystal of ``4 n_cells^3`` particles filling a cube.

    Args:
      n_cells: unit cells along each axis.
      number_density: particles per nm^3.

    Returns:
      ``(R [4 n^3, 3] nm, L nm)``.
    """
    n = 4 * n_cells**3
    L = (n / number_density) ** (1 / 3)
    a = L / n_cells
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]) + 0.25
    cells = np.stack(np.meshgrid(*[np.arange(n_cells)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    return ((cells + basis[None]) * a).reshape(-1, 3), L


def system_of(model: Any, what: str) -> System:
    """The :class:`System` a model was built on; ``what`` (the caller) names who needs it.

    Raises:
      ValueError: the model was built from species and box alone (no masses).
    """
    system = getattr(model, "system", None)
    if system is None:
        raise ValueError(
            f"{what} simulates, so it needs a model built on a System (masses, amu): "
            "potentials.energy_model(potential, system=simulate.System.create(box=..., "
            "species=..., masses=...))"
        )
    return system
