"""Potentials: flax linen terms that add, and the adapter to jax-md energy functions.

>>> from cgjax import potentials
>>> pot = potentials.LennardJones(sigma=0.3166, epsilon=0.65, cutoff=0.9)
>>> pot = pot + potentials.HighFrequency(amplitude=0.05, omega=1000.0)
>>> model = potentials.energy_model(pot, species=species, box=box)
>>> params = model.init_fn(key, R)          # {"lj": {...}, "hf": {...}}
>>> E = model.energy_fn(params)(R, neighbor=nbrs)   # kJ/mol
>>> gnn = potentials.build("gnn", config.model, cutoff=0.6)   # the zoo by name (MODELS)
"""

from cgjax.potentials._allegro import Allegro
from cgjax.potentials._base import PairTerm, Sum, Term, sum_of
from cgjax.potentials._cgnet import CGnet, cgnet_features, cgnet_normalization
from cgjax.potentials._cutoff import smooth_switch
from cgjax.potentials._deeppot import DeepPotSE
from cgjax.potentials._dihedral import (
    CollinearTorsionError,
    FourierDihedrals,
    dihedral_angles,
    fit_fourier_dihedrals,
    torsion_angles,
)
from cgjax.potentials._energy import EnergyModel, energy_model
from cgjax.potentials._gnn import GNN
from cgjax.potentials._graph import Graph, build_graph
from cgjax.potentials._harmonic import (
    HarmonicAngles,
    HarmonicBonds,
    fit_harmonic_angles,
    fit_harmonic_bonds,
)
from cgjax.potentials._high_frequency import HighFrequency, high_frequency
from cgjax.potentials._hipnn import HIPNN, StateAwareHIPNN, StateMissingError
from cgjax.potentials._lennard_jones import LennardJones, lennard_jones
from cgjax.potentials._nequip import NequIP
from cgjax.potentials._pair_repulsion import PairRepulsion, fit_pair_repulsion, nonbonded_pairs
from cgjax.potentials._repulsion import (
    ExponentialRepulsion,
    SoftRepulsion,
    exponential_repulsion,
    exponential_repulsion_parameters,
    soft_repulsion,
)
from cgjax.potentials._schnet import SchNet
from cgjax.potentials._species import lookup_pair, pair_table
from cgjax.potentials._spline import SplinePair, cubic_bspline_basis
from cgjax.potentials._zoo import MODELS, build

__all__ = [
    "MODELS",
    "Allegro",
    "CGnet",
    "CollinearTorsionError",
    "FourierDihedrals",
    "PairRepulsion",
    "cgnet_features",
    "cgnet_normalization",
    "dihedral_angles",
    "fit_fourier_dihedrals",
    "fit_pair_repulsion",
    "nonbonded_pairs",
    "torsion_angles",
    "HarmonicAngles",
    "HarmonicBonds",
    "SplinePair",
    "cubic_bspline_basis",
    "fit_harmonic_angles",
    "fit_harmonic_bonds",
    "DeepPotSE",
    "EnergyModel",
    "ExponentialRepulsion",
    "GNN",
    "HIPNN",
    "Graph",
    "HighFrequency",
    "LennardJones",
    "NequIP",
    "PairTerm",
    "SchNet",
    "StateAwareHIPNN",
    "StateMissingError",
    "SoftRepulsion",
    "Sum",
    "Term",
    "build",
    "build_graph",
    "energy_model",
    "exponential_repulsion",
    "exponential_repulsion_parameters",
    "high_frequency",
    "lennard_jones",
    "lookup_pair",
    "pair_table",
    "smooth_switch",
    "soft_repulsion",
    "sum_of",
]
