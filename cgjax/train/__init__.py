"""Trainers: ``(init, update)`` pairs over a frozen state, driven by one loop.

>>> from cgjax import train
>>> trainer = train.force_matching(model, optax.adam(1e-3), batch_size=4)
>>> state = trainer.init_fn(jax.random.key(0), model.init_fn(key, R0))
>>> schedule = train.Schedule(n_steps=1000, eval_every=50, checkpoint_every=100,
...                           early_stopping_patience=5)
>>> state = train.fit(trainer, state, train_frames, val_frames, schedule, workdir="runs/fm")
>>> params = state.best_params

Force matching from a config section, resumable (the experiments' stage):
``train.fit_force_matching(model, tr, va, train.FMSettings.from_config(config.train),
workdir=...)``.

Trajectory matching (RDF and MSD losses through diffrax, paper 004):
``train.fit_sampling(train.trajectory_matching(loss, optax.adam(3e-3)), params, 40,
keep_best=True)``. Relative entropy minimisation is a trainer of the same shape
(``train.relative_entropy_trainer``; ``train.relative_entropy`` drives it): both
sample the model themselves, so :func:`fit_sampling` drives them (and DiffTRe,
``train.difftre_trainer(model, [train.rdf_target(r, g, box, sigma=0.01)], optax.adam(1e-3),
protocol, R0)``, gradients of reweighted ensemble averages), while
:func:`fit` drives trainers of stored frames.

Ensembles: ``train.ensemble(trainer, 5)`` with
``train.init_ensemble_params(model, key, R0, 5)``; ``train.model_deviation``
(paper 002 eq. 15) and ``train.ensemble_energy_fn`` (mean force).
"""

from cgjax.train._bisection import BisectionResult, BracketError, bisect
from cgjax.train._difftre import (
    DiffTReSettings,
    DiffTReState,
    EnsembleTarget,
    Reweighted,
    Reweighting,
    adf_target,
    difftre_trainer,
    pressure_target,
    rdf_target,
)
from cgjax.train._dynamics import (
    PAPER_AMPLITUDE_BRACKET,
    PAPER_OMEGA,
    AmplitudeSearch,
    DynamicsProbe,
    HighFrequencyTuning,
    evaluation_key,
    omega_scan,
    rdf_tae_A,
    set_high_frequency,
    tune_high_frequency,
)
from cgjax.train._ensemble import (
    ensemble,
    ensemble_energy_fn,
    init_ensemble_params,
    kfold_indices,
    member_keys,
    model_deviation,
)
from cgjax.train._fit_force_matching import FMSettings, fit_force_matching
from cgjax.train._force_matching import force_matching, tree_all_finite
from cgjax.train._inversion import (
    IBISettings,
    IMCSettings,
    InversionState,
    anderson_step,
    hnc_correction,
    ibi_trainer,
    imc_pressure_row,
    imc_trainer,
    potential_of_mean_force,
)
from cgjax.train._kfold import fit_kfold_force_matching
from cgjax.train._loop import (
    Schedule,
    evaluate,
    fit,
    frame_arrays,
    minibatch_indices,
    restore_latest,
)
from cgjax.train._molecule_priors import (
    PRIOR_TERMS,
    MoleculeTopology,
    fit_molecule_priors,
    force_matched_harmonics,
)
from cgjax.train._mscg import MSCGFit, fit_spline_pair
from cgjax.train._priors import RepulsionPrior, exponential_repulsion_from_data
from cgjax.train._relative_entropy import (
    REMResult,
    REMSettings,
    REMState,
    relative_entropy,
    relative_entropy_trainer,
)
from cgjax.train._sampling import SamplingFit, SamplingTrainer, fit_sampling
from cgjax.train._state import Trainer, TrainingDiverged, TrainState, record_validation
from cgjax.train._trajectory import TrajectoryState, trajectory_matching

__all__ = [
    "DiffTReSettings",
    "DiffTReState",
    "EnsembleTarget",
    "Reweighted",
    "Reweighting",
    "adf_target",
    "difftre_trainer",
    "pressure_target",
    "rdf_target",
    "IBISettings",
    "IMCSettings",
    "InversionState",
    "anderson_step",
    "hnc_correction",
    "ibi_trainer",
    "imc_pressure_row",
    "imc_trainer",
    "potential_of_mean_force",
    "PRIOR_TERMS",
    "MoleculeTopology",
    "fit_molecule_priors",
    "force_matched_harmonics",
    "fit_kfold_force_matching",
    "PAPER_AMPLITUDE_BRACKET",
    "PAPER_OMEGA",
    "AmplitudeSearch",
    "BisectionResult",
    "BracketError",
    "DynamicsProbe",
    "FMSettings",
    "HighFrequencyTuning",
    "MSCGFit",
    "REMResult",
    "REMSettings",
    "REMState",
    "RepulsionPrior",
    "SamplingFit",
    "SamplingTrainer",
    "Schedule",
    "TrainState",
    "Trainer",
    "TrainingDiverged",
    "TrajectoryState",
    "bisect",
    "ensemble",
    "ensemble_energy_fn",
    "evaluate",
    "evaluation_key",
    "exponential_repulsion_from_data",
    "fit",
    "fit_force_matching",
    "fit_sampling",
    "fit_spline_pair",
    "force_matching",
    "frame_arrays",
    "init_ensemble_params",
    "kfold_indices",
    "member_keys",
    "minibatch_indices",
    "model_deviation",
    "omega_scan",
    "rdf_tae_A",
    "record_validation",
    "relative_entropy",
    "relative_entropy_trainer",
    "restore_latest",
    "set_high_frequency",
    "trajectory_matching",
    "tree_all_finite",
    "tune_high_frequency",
]
