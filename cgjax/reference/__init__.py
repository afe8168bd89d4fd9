"""All-atom reference systems built with OpenMM (the optional ``reference`` extra).

Generate a CG reference trajectory (centre of mass per molecule, summed forces):

    python -m cgjax.reference spce --out spce.npz --production 200

or from Python with :func:`generate` / :func:`generate_to_file` and a
:class:`GenerationConfig`. :data:`SYSTEMS` holds every system's parameters.

Capped alanine in implicit solvent, mapped to paper 001's six beads (many
non-interacting copies in one OpenMM system, resumable):

    python -m cgjax.reference alanine --out ala.npz --copies 64 --production 1600

or :func:`generate_alanine` with an :class:`AlanineConfig`.
"""

from cgjax.reference._alanine import (
    ALANINE_BEADS,
    AlanineConfig,
    alanine_system,
    generate_alanine,
)
from cgjax.reference._analysis import observables_to_file, reference_observables
from cgjax.reference._cli import main
from cgjax.reference._generate import (
    GenerationConfig,
    generate,
    generate_to_file,
    kinetic_temperature,
)
from cgjax.reference._grid import (
    GridSpec,
    PackingError,
    UnknownMoleculeError,
    generate_grid,
    load_grid,
    packing_fraction,
    point_name,
)
from cgjax.reference._openmm import lj_fluid_context, require_openmm
from cgjax.reference._systems import (
    EWALD_TOLERANCE,
    SYSTEMS,
    BoxTooSmallError,
    Molecule,
    ReferenceSystem,
    box_length,
    build_system,
    initial_positions,
)

__all__ = [
    "ALANINE_BEADS",
    "AlanineConfig",
    "alanine_system",
    "generate_alanine",
    "EWALD_TOLERANCE",
    "SYSTEMS",
    "BoxTooSmallError",
    "GridSpec",
    "PackingError",
    "UnknownMoleculeError",
    "generate_grid",
    "load_grid",
    "packing_fraction",
    "point_name",
    "GenerationConfig",
    "Molecule",
    "ReferenceSystem",
    "box_length",
    "build_system",
    "generate",
    "generate_to_file",
    "initial_positions",
    "kinetic_temperature",
    "lj_fluid_context",
    "main",
    "observables_to_file",
    "reference_observables",
    "require_openmm",
]
