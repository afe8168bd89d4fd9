"""All-atom reference systems built with OpenMM (the optional ``reference`` extra)."""

from cgjax.reference._openmm import lj_fluid_context, require_openmm

__all__ = ["lj_fluid_context", "require_openmm"]
