"""Observables: pure functions of positions and trajectories, and comparison metrics.

Structure (RDF, angle distribution, Steinhardt order) takes ``[T, N, 3]`` or
``[N, 3]`` positions and one box; dynamics (MSD, diffusion) takes unwrapped
``[T, N, 3]`` trajectories. Units are nm, ps, degrees for angles.

>>> from cgjax import observables
>>> res = observables.rdf(traj, box, r_max=1.0, n_bins=100)   # res.r (nm), res.g
>>> q4, q6 = observables.steinhardt(R, box, cutoff=0.35).mean
>>> d = observables.diffusion_from_trajectory(unwrapped, 1.0, fit_window=(5.0, 50.0))
>>> observables.total_absolute_error(res.r, res.g, ref.g)     # nm
"""

from cgjax.observables._adf import ADF, adf
from cgjax.observables._bias import TorsionBias, effective_sample_size, frame_weights
from cgjax.observables._fes import (
    FES,
    NoiseBaseline,
    basin_populations,
    equivalent_sigma,
    fes_metrics,
    free_energy_surface,
    noise_baseline,
    ramachandran,
    torsions_of,
)
from cgjax.observables._metrics import (
    force_errors,
    free_energy_mse,
    js_divergence,
    kl_divergence,
    mse,
    total_absolute_error,
)
from cgjax.observables._msd import (
    MSD,
    Diffusion,
    diffusion_coefficient,
    diffusion_from_trajectory,
    msd,
)
from cgjax.observables._pressure import (
    Pressure,
    instantaneous_pressure,
    lj_tail_pressure,
    pressure,
    virial,
)
from cgjax.observables._rdf import (
    RDF,
    coordination_number,
    rdf,
    rdf_smooth,
    rdf_smooth_frame_sum,
    rebin_rdf,
)
from cgjax.observables._steinhardt import Steinhardt, steinhardt

__all__ = [
    "ADF",
    "FES",
    "NoiseBaseline",
    "basin_populations",
    "equivalent_sigma",
    "fes_metrics",
    "free_energy_surface",
    "noise_baseline",
    "ramachandran",
    "torsions_of",
    "TorsionBias",
    "effective_sample_size",
    "frame_weights",
    "MSD",
    "RDF",
    "Diffusion",
    "Steinhardt",
    "Pressure",
    "instantaneous_pressure",
    "lj_tail_pressure",
    "pressure",
    "virial",
    "adf",
    "coordination_number",
    "diffusion_coefficient",
    "diffusion_from_trajectory",
    "force_errors",
    "free_energy_mse",
    "js_divergence",
    "kl_divergence",
    "msd",
    "mse",
    "rdf",
    "rdf_smooth",
    "rdf_smooth_frame_sum",
    "rebin_rdf",
    "steinhardt",
    "total_absolute_error",
]
