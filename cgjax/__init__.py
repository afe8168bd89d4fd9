"""cgjax: machine-learned coarse-grained potentials in JAX.

Namespaces by concept: ``from cgjax import potentials, simulate, observables, units``;
``cgjax.testing`` holds the public contract every potential passes.
Units everywhere are nm, ps, kJ/mol, amu, K, e (see :mod:`cgjax.units`).
"""

from cgjax import data, observables, potentials, simulate, units
from cgjax._space import box_matrix, box_widths, check_box, make_space, neighbor_list_fn

__version__ = "0.1.0"

__all__ = [
    "box_matrix",
    "box_widths",
    "check_box",
    "data",
    "make_space",
    "neighbor_list_fn",
    "observables",
    "potentials",
    "simulate",
    "units",
]
