"""cgjax: machine-learned coarse-grained potentials in JAX.

Namespaces by concept: ``from cgjax import potentials, simulate, observables, data,
losses, train, units``;
``cgjax.testing`` holds the public contract every potential passes.
Units everywhere are nm, ps, kJ/mol, amu, K, e (see :mod:`cgjax.units`).
"""

from cgjax import data, losses, observables, potentials, simulate, train, units
from cgjax._neighbor_list import (
    NeighborList,
    NeighborListFn,
    allocate_neighbor_list,
    grow_neighbor_list,
    neighbor_list_fn,
)
from cgjax._space import box_matrix, box_widths, check_box, make_space, wrap

__version__ = "0.1.0"

__all__ = [
    "allocate_neighbor_list",
    "box_matrix",
    "box_widths",
    "check_box",
    "data",
    "losses",
    "grow_neighbor_list",
    "make_space",
    "NeighborList",
    "NeighborListFn",
    "neighbor_list_fn",
    "observables",
    "potentials",
    "simulate",
    "train",
    "units",
    "wrap",
]
