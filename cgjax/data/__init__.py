"""Reference data: frames, atom-to-bead maps, splits and file readers.

Units: positions nm, forces kJ/mol/nm, velocities nm/ps, masses amu, time ps,
temperature K; boxes are ``[3, 3]`` (or ``[T, 3, 3]``) with box vectors as columns.

>>> from cgjax import data
>>> aa = data.read_gromacs("traj.trr", "topol.tpr")            # needs cgjax[io]
>>> cg_map = data.center_of_mass_map(aa.metadata["molecule_index"], aa.masses)
>>> cg = cg_map.apply(aa)                  # COM positions, summed forces
>>> train, val, test = cg.split((0.8, 0.1, 0.1), n_blocks=10, seed=0)
>>> cg.save("cg.npz"); cg = data.Frames.load("cg.npz")
"""

from cgjax.data._constraints import (
    BrokenMoleculeError,
    MappingError,
    check_molecule,
    constrained_slice_map,
)
from cgjax.data._frames import Frames, minimum_image, provenance, unwrap_trajectory, wrap
from cgjax.data._mapping import (
    LinearMap,
    center_of_geometry_map,
    center_of_mass_map,
    make_whole,
    slice_map,
)
from cgjax.data._readers import LAMMPS_UNITS, from_universe, read_gromacs, read_lammps_dump
from cgjax.data._split import split_blocks

__all__ = [
    "BrokenMoleculeError",
    "LAMMPS_UNITS",
    "Frames",
    "LinearMap",
    "MappingError",
    "center_of_geometry_map",
    "center_of_mass_map",
    "check_molecule",
    "constrained_slice_map",
    "from_universe",
    "make_whole",
    "minimum_image",
    "provenance",
    "read_gromacs",
    "read_lammps_dump",
    "slice_map",
    "split_blocks",
    "unwrap_trajectory",
    "wrap",
]
