"""Export: pair terms as engine tables, any potential as a ``jax.export`` artifact.

>>> from cgjax import export
>>> table = export.pair_table(model.potential, params, r_min=0.25, dr=0.0005)  # nm, kJ/mol
>>> export.write_lammps_table(table, "cg.table", units_style="real")    # Å, kcal/mol
>>> export.write_gromacs_table(table, "table.xvg", precision="double")  # nm, kJ/mol
>>> force = export.openmm_force(table, species)                         # openmm.Force
>>> export.export_potential(model, params, R, "model.cgjax")            # StableHLO + metadata
>>> E, F = export.load("model.cgjax").energy_and_forces(R)             # jax alone

:func:`load` lives in ``cgjax/export/_load.py``, which imports only numpy and
jax: copy that file beside an artifact to run it where cgjax is not installed.
"""

from cgjax.export._artifact import export_potential
from cgjax.export._gromacs import GROMACS_SPACING, read_gromacs_table, write_gromacs_table
from cgjax.export._lammps import LAMMPS_UNITS, read_lammps_table, write_lammps_table
from cgjax.export._load import (
    FORMAT,
    FORMAT_VERSION,
    ArtifactError,
    ArtifactVersionError,
    CapacityOverflowError,
    Evaluation,
    ExportedPotential,
    load,
    read_metadata,
)
from cgjax.export._openmm import openmm_force
from cgjax.export._table import NotAPairTermError, PairTable, TableRangeError, pair_table

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "GROMACS_SPACING",
    "LAMMPS_UNITS",
    "ArtifactError",
    "ArtifactVersionError",
    "CapacityOverflowError",
    "Evaluation",
    "ExportedPotential",
    "NotAPairTermError",
    "PairTable",
    "TableRangeError",
    "export_potential",
    "load",
    "openmm_force",
    "pair_table",
    "read_gromacs_table",
    "read_lammps_table",
    "read_metadata",
    "write_gromacs_table",
    "write_lammps_table",
]
