"""The energy contract, written once.

Shapes use jaxtyping names: ``N`` particles, ``T`` frames, ``E`` edges, ``S``
species. Units are cgjax's (nm, ps, kJ/mol, amu, K, e).
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
from jaxtyping import Array, Float, Int

__all__ = [
    "Box",
    "Energy",
    "EnergyFn",
    "EnergyFnFactory",
    "Forces",
    "Params",
    "Positions",
    "Species",
    "Trajectory",
]

Params = Any  # a pytree of arrays: {term_name: {param_name: array}}
Positions = Float[Array, "N 3"]  # nm
Forces = Float[Array, "N 3"]  # kJ/mol/nm
Trajectory = Float[Array, "T N 3"]  # nm
Species = Int[Array, " N"]
Energy = Float[Array, ""]  # kJ/mol
Box = Float[Array, "3 3"] | Float[Array, " 3"] | float | None  # nm


class EnergyFn(Protocol):
    """``E(R, *, neighbor=None, box=None, **kw) -> scalar`` (kJ/mol), ``R`` in nm."""

    def __call__(self, R: Positions, *, neighbor: Any = None, **kwargs: Any) -> Energy: ...


class EnergyFnFactory(Protocol):
    """``energy_fn(params) -> EnergyFn``: what every trainer and simulator takes."""

    def __call__(self, params: Params) -> EnergyFn: ...


def forces(energy: EnergyFn, R: Positions, **kwargs: Any) -> Forces:
    """``-dE/dR`` (kJ/mol/nm). Forces are never written by hand."""
    return -jax.grad(energy)(R, **kwargs)
