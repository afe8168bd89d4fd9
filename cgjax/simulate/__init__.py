"""Simulation: jax-md integrators in cgjax units and an overflow-safe trajectory runner."""

from cgjax._neighbor_list import NeighborListFn
from cgjax._system import System, fcc_lattice
from cgjax.simulate._differentiable import (
    Adjoint,
    Backsolve,
    Checkpoint,
    DiffTrajectory,
    TrajectorySpec,
    Truncated,
    maxwell_boltzmann,
    simulate_differentiable,
)
from cgjax.simulate._integrators import (
    Simulator,
    brownian,
    kinetic_energy,
    nve,
    nvt_langevin,
    nvt_nose_hoover,
)
from cgjax.simulate._protocol import THERMOSTATS, Protocol, Sample, sample
from cgjax.simulate._replicas import sample_replicas
from cgjax.simulate._runner import (
    Monitor,
    RunResult,
    SimulationError,
    Trajectory,
    init_replicas,
    run,
)
from cgjax.simulate._validate import (
    Structure,
    ValidationReport,
    min_pair_distance,
    plot_structures,
    structure,
    validate_by_simulation,
)

__all__ = [
    "sample_replicas",
    "Adjoint",
    "Backsolve",
    "Checkpoint",
    "DiffTrajectory",
    "NeighborListFn",
    "Protocol",
    "Monitor",
    "RunResult",
    "Sample",
    "SimulationError",
    "THERMOSTATS",
    "Structure",
    "Simulator",
    "System",
    "Trajectory",
    "TrajectorySpec",
    "Truncated",
    "ValidationReport",
    "brownian",
    "fcc_lattice",
    "init_replicas",
    "kinetic_energy",
    "maxwell_boltzmann",
    "min_pair_distance",
    "nve",
    "nvt_langevin",
    "nvt_nose_hoover",
    "plot_structures",
    "run",
    "sample",
    "simulate_differentiable",
    "structure",
    "validate_by_simulation",
]
