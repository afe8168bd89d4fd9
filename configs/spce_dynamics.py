"""Base config and presets of ``experiments/spce_dynamics.py`` (paper 004, SPC/E water).

--config=configs/spce_dynamics.py:smoke   # about a minute: the test suite runs it
--config=configs/spce_dynamics.py:quick   # the default: 10-12 min measured on 2 CPU cores
--config=configs/spce_dynamics.py:full    # the paper's lengths; a GPU (see ``full``)

``configs/argon_dynamics.py`` and ``configs/methane_dynamics.py`` build on
:func:`base`, :func:`smoke`, :func:`full` and :data:`HELP` here.
"""

import ml_collections

from cgjax import train

#: Every key's meaning and unit (``python -m cgjax.run EXPERIMENT --help``).
HELP = {
    "seed": "seed of initialisation and of every simulation [-]",
    "dataset": "shipped dataset the CG frames come from (cgjax.datasets) [-]",
    "label": "the system's name in plot titles and results [-]",
    "temperature": "temperature of every simulation [K]",
    "cutoff": "cutoff of the GNN, LJ and HF terms (one neighbor list) [nm]",
    "model.embed_dim": "GNN node embedding width (over its default_config) [-]",
    "model.message_dim": "GNN message width (over its default_config) [-]",
    "model.n_rbf": "GNN radial basis functions (over its default_config) [-]",
    "lj.sigma": "LJ sigma at the start of REM [nm]",
    "lj.epsilon": "LJ epsilon at the start of REM [kJ/mol]",
    "lj.r_onset": "LJ switched smoothly to zero from here to the cutoff [nm]",
    "rem.reference_frames": "AA frames (evenly strided) REM matches [frames]",
    "rem.n_iterations": "Newton-Raphson iterations of REM at most (sampling: dynamics.*) [-]",
    "rem.ess_threshold": "reuse samples while the effective-sample-size fraction exceeds it [-]",
    "rem.tol": "stop when every parameter's relative change is below this [-]",
    "rem.max_relative_step": "Newton steps scaled so no parameter changes by more [-]",
    "fm.train_stride": "every k-th frame before val_span_ps trains [frames]",
    "fm.val_stride": "every k-th frame in val_span_ps validates [frames]",
    "fm.val_span_ps": "time span of the validation frames (start, end) [ps]",
    "fm.lr": "force matching: Adam's initial learning rate [-]",
    "fm.lr_final_fraction": "final learning rate of the cosine decay, as a fraction of lr [-]",
    "fm.n_steps": "force matching: optimiser updates [steps]",
    "fm.batch_size": "force matching: frames per update [frames]",
    "fm.eval_every": "force matching: updates between validations [steps]",
    "fm.checkpoint_every": "force matching: updates between checkpoints [steps]",
    "fm.clip_norm": "force matching: gradient clipped to this global norm [-]",
    "rdf_train.n_updates": "Adam updates on the RDF loss (0: stage skipped) [-]",
    "rdf_train.lr": "RDF training: Adam's initial learning rate [-]",
    "rdf_train.b1": "RDF training: Adam's momentum decay (0: none) [-]",
    "rdf_train.lr_decay": "learning rate multiplied by this after every update [-]",
    "rdf_train.keep_best": "keep the parameters of the lowest loss, not the last [-]",
    "rdf_train.dt": "differentiable Nose-Hoover time step [ps]",
    "rdf_train.tau": "Nose-Hoover thermostat time constant [ps]",
    "rdf_train.equilibration_steps": "Nose-Hoover steps before the first update [steps]",
    "rdf_train.n_steps": "differentiable trajectory length per update [steps]",
    "rdf_train.record_every": "steps between frames entering the RDF [steps]",
    "rdf_train.start_frame": "recorded frames dropped before the RDF [frames]",
    "rdf_train.rebin": "AA RDF bins merged into one loss bin [-]",
    "rdf_train.segment_steps": "steps between neighbor-list rebuilds [steps]",
    "rdf_train.skin": "neighbor-list skin of the differentiable trajectory [nm]",
    "rdf_train.sigma": "Gaussian smearing width of the differentiable RDF [nm]",
    "rdf_train.adjoint": "diffrax adjoint: 'checkpoint' or 'backsolve' [-]",
    "dynamics.dt": "CG sampling of REM, amplitude search and validation: time step [ps]",
    "dynamics.tau": "CG sampling: Nose-Hoover time constant [ps]",
    "dynamics.equilibration_steps": "CG sampling: steps before recording [steps]",
    "dynamics.production_steps": "CG sampling: recorded steps [steps]",
    "dynamics.record_every": "CG sampling: steps between recorded frames [steps]",
    "dynamics.fit_window": "MSD lag window of the Einstein fit of D (start, end) [ps]",
    "dynamics.n_blocks": "blocks of the production run for D's error bar [-]",
    "dynamics.aa_fit_window": "the AA fit window if not fit_window (None: the same) [ps]",
    "dynamics.equilibration_thermostat": "thermostat of the equilibration [-]",
    "dynamics.equilibration_friction": "Langevin friction of the equilibration [1/ps]",
    "dynamics.skin": "CG sampling: neighbor-list skin [nm]",
    "hf.omega": "U_HF wave number omega (paper 004: 100 1/A) [1/nm]",
    "hf.bracket": "amplitude A searched within (low, high) [kJ/mol nm^2]",
    "hf.max_evals": "simulations of the bracketing search at most [-]",
    "hf.method": "bracketing search: 'bisection' (the paper's) or 'illinois' [-]",
    "hf.estimate": "A from the evaluations: log_regression, log_interpolation, midpoint [-]",
    "hf.refine": "refits of A after a final run missing D_AA by > refine_rtol [-]",
    "hf.refine_rtol": "relative miss of D_AA by the final run that triggers a refit [-]",
    "hf.ftol_fraction": "search stops at a D within this fraction of the target [-]",
    "hf.xtol_fraction": "search stops at a bracket narrower than this fraction of it [-]",
    "hf.rdf_tolerance_A": "RDF shift by U_HF allowed before it is flagged [Å]",
    "hf.target_D": "target D (None: D_AA; 'between_ends': smoke runs) [nm^2/ps]",
    "omega_scan.enabled": "run the omega scan stage [-]",
    "omega_scan.omegas_per_nm": "wave numbers omega scanned [1/nm]",
    "omega_scan.production_steps": "recorded steps per run (None: the bisection's) [steps]",
    "omega_scan.amplitude": "U_HF amplitude A (None: the top of hf.bracket) [kJ/mol nm^2]",
    "omega_scan.noise_run": "add a run at A = 0 with another seed: RDF noise [-]",
    "validation.production_steps": "recorded steps of the final run at the tuned A [steps]",
    "validation.max_D_rel_err": "a validation D with a larger relative error is flagged [-]",
    "rdf_r_max": "RDF range and TAE range, 0 to this distance [nm]",
    "progress": "show progress bars [-]",
}


#: Ranges of values, checked by ``cgjax.run`` before it writes anything
#: (``cgjax.config.check_config``; lists are checked entry by entry).
CHECKS = {
    "temperature": "> 0",
    "cutoff": "> 0",
    "lj.sigma": "> 0",
    "lj.epsilon": "> 0",
    "lj.r_onset": "> 0",
    "rem.reference_frames": "> 0",
    "rem.n_iterations": "> 0",
    "rem.ess_threshold": "in [0, 1]",
    "rem.tol": "> 0",
    "rem.max_relative_step": "> 0",
    "fm.train_stride": "> 0",
    "fm.val_stride": "> 0",
    "fm.val_span_ps": ">= 0",
    "fm.lr": "> 0",
    "fm.lr_final_fraction": "in [0, 1]",
    "fm.n_steps": "> 0",
    "fm.batch_size": "> 0",
    "fm.eval_every": "> 0",
    "fm.checkpoint_every": "> 0",
    "fm.clip_norm": "> 0",
    "rdf_train.n_updates": ">= 0",
    "rdf_train.lr": "> 0",
    "rdf_train.b1": "in [0, 1)",
    "rdf_train.lr_decay": "in (0, 1]",
    "rdf_train.dt": "> 0",
    "rdf_train.tau": "> 0",
    "rdf_train.equilibration_steps": ">= 0",
    "rdf_train.n_steps": "> 0",
    "rdf_train.record_every": "> 0",
    "rdf_train.start_frame": ">= 0",
    "rdf_train.rebin": "> 0",
    "rdf_train.segment_steps": "> 0",
    "rdf_train.skin": ">= 0",
    "rdf_train.sigma": "> 0",
    "dynamics.dt": "> 0",
    "dynamics.tau": "> 0",
    "dynamics.equilibration_steps": ">= 0",
    "dynamics.production_steps": "> 0",
    "dynamics.record_every": "> 0",
    "dynamics.fit_window": ">= 0",
    "dynamics.n_blocks": "> 0",
    "dynamics.aa_fit_window": ">= 0",
    "dynamics.equilibration_friction": "> 0",
    "dynamics.skin": ">= 0",
    "hf.omega": "> 0",
    "hf.bracket": ">= 0",
    "hf.max_evals": "> 0",
    "hf.refine": ">= 0",
    "hf.refine_rtol": "> 0",
    "hf.ftol_fraction": ">= 0",
    "hf.xtol_fraction": ">= 0",
    "hf.rdf_tolerance_A": "> 0",
    "omega_scan.omegas_per_nm": "> 0",
    "omega_scan.production_steps": "> 0",
    "omega_scan.amplitude": ">= 0",
    "validation.production_steps": "> 0",
    "validation.max_D_rel_err": "> 0",
    "rdf_r_max": "> 0",
}


def base() -> ml_collections.ConfigDict:
    """The ``quick`` preset (the default): 10-12 min measured on 2 CPU cores (docs/results)."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "spce_512"
    c.label = "SPC/E water"
    c.temperature = 300.0  # K
    c.cutoff = 0.6  # nm: GNN (paper 004: 6 Å), LJ and HF share one neighbor list
    c.model = ml_collections.ConfigDict()  # GNN fields over its paper-004 default_config()
    # LJ start: SPC/E oxygen (paper 004 §3); switched to zero from r_onset to the cutoff.
    c.lj = ml_collections.ConfigDict(dict(sigma=0.3166, epsilon=0.650, r_onset=0.5))
    c.rem = ml_collections.ConfigDict(
        dict(
            reference_frames=200, n_iterations=10, ess_threshold=0.8, tol=2e-3,
            max_relative_step=0.3,
        )
    )  # fmt: skip
    c.fm = ml_collections.ConfigDict(
        dict(
            train_stride=10, val_stride=25, val_span_ps=(150.0, 200.0), lr=1e-2,
            lr_final_fraction=0.05, n_steps=300, batch_size=1, eval_every=50,
            checkpoint_every=50, clip_norm=100.0,
        )
    )  # fmt: skip
    c.rdf_train = ml_collections.ConfigDict(
        dict(
            n_updates=40, lr=3e-3, b1=0.0, lr_decay=0.94, keep_best=True, dt=0.002, tau=0.5,
            equilibration_steps=1000,
            n_steps=200, record_every=10, start_frame=5, rebin=2, segment_steps=10, skin=0.1,
            sigma=0.005, adjoint="checkpoint",
        )
    )  # fmt: skip
    # D of the CG model: Langevin equilibration (damps the start's transient), then
    # Nose-Hoover with tau = 0.2 ps. At tau = 1 ps (the AA run's coupling) the
    # temperature of 512 beads wandered by 9 K rms over 1-ps averages with a ~5 ps
    # period and D over 3-ps windows followed it (12.5 % scatter); at 0.2 ps the
    # wander is 4.3 K and the scatter 6.9 % (20-ps runs at the tuned A). A global
    # thermostat leaves D itself alone (Basconi & Shirts, JCTC 9, 2887 (2013)).
    c.dynamics = ml_collections.ConfigDict(
        dict(
            dt=0.001, tau=0.2, equilibration_steps=1000, production_steps=6000,
            record_every=50, fit_window=(1.0, 2.5), n_blocks=2, aa_fit_window=None,
            equilibration_thermostat="langevin", equilibration_friction=10.0, skin=0.03,
        )
    )  # fmt: skip
    c.hf = ml_collections.ConfigDict(
        dict(
            omega=train.PAPER_OMEGA, bracket=train.PAPER_AMPLITUDE_BRACKET, max_evals=4,
            method="illinois", estimate="log_regression", refine=1, refine_rtol=0.05,
            ftol_fraction=0.05, xtol_fraction=1 / 64, rdf_tolerance_A=0.15,
            target_D=ml_collections.FieldReference(None, field_type=object),
        )
    )  # fmt: skip
    c.omega_scan = ml_collections.ConfigDict(
        dict(
            enabled=True,
            omegas_per_nm=(100.0, 1000.0),
            production_steps=None,
            amplitude=None,
            noise_run=False,
        )  # amplitude None: the top of the bracket; production_steps None: the
        # bisection's length, whose runs at A = 0 and at the top are then reused
    )
    # max_D_rel_err: a validation D with a larger block error is flagged. 80k steps (80 ps):
    # at 40k the two-block error was 2.5 %, 1.6 %, 3.1 % and 2.6 % in four runs (the third
    # flagged); twice the length takes it ~0.7x (1.9 % and 1.4 % on seeds 0 and 1), for
    # ~3.5 min more (7.8 -> 11.3-11.6 min; final runs of 80k steps 174-191 s each on 2
    # quiet cores, 2026-12-06, docs/results)
    c.validation = ml_collections.ConfigDict(dict(production_steps=80000, max_D_rel_err=0.03))
    c.rdf_r_max = 1.0  # nm: RDF TAE over 0-10 Å
    c.progress = True
    return c


def smoke(c):
    """Shrinks any dynamics preset to seconds of work (the SPC/E, argon and methane configs)."""
    c.model.update(embed_dim=4, message_dim=4, n_rbf=6)
    c.rem.update(reference_frames=10, n_iterations=2)
    c.fm.update(n_steps=3, eval_every=3, checkpoint_every=3, train_stride=200, val_stride=200)
    c.rdf_train.update(n_updates=1, equilibration_steps=20, n_steps=40, record_every=10,
                       start_frame=1, segment_steps=10, rebin=4)  # fmt: skip
    c.dynamics.update(equilibration_steps=20, production_steps=200, record_every=10,
                      fit_window=(0.02, 0.05), n_blocks=2, aa_fit_window=(1.0, 4.0))  # fmt: skip
    # A ballistic 0.2 ps run says nothing about diffusion: the target is put
    # between the bracket's ends (whose top, 2.6x the paper's, traps the beads).
    c.hf.update(target_D="between_ends", bracket=(0.0, 0.5), max_evals=3)
    c.omega_scan.update(omegas_per_nm=(100.0, 1000.0), amplitude=0.19)  # A = 0 reused
    c.validation.production_steps = 200
    c.progress = False
    return c


def full(c):
    """The paper's lengths (shared by the SPC/E, argon and methane configs). Not run yet.

    Hardware: one GPU is meant. On 2 CPU cores it would take ~8 h for SPC/E,
    estimated (not measured) from the quick run's rates
    (``docs/results/spce_dynamics_quick``: ~105 MD steps/s of the full model,
    ~15 ms per differentiable step): RDF training ~2.2 h (200 updates of 1000
    + 2000 steps), amplitude search ~4.3 h (12 runs of 101k steps, then one or
    two final runs of 201k steps, the last of which is the validation run),
    omega scan ~1.1 h (8 runs of 51k steps: A = 0, its second seed, 6 omegas),
    REM and force matching ~0.4 h. The checkpoint adjoint's memory grows with the
    2000-step window (not measured for the GNN; ~0.9 MB per step for LJ in
    ``benchmarks/trajectory_gradient.py``).

    Expected numbers, reasoned from the quick run, not measured: RDF TAE
    (0-10 Å) ≤ 0.2 Å (the quick run's 40 annealed updates give 0.17-0.19 Å, ~0.15 Å of it
    U_HF's ripple); D_CG / D_AA
    within the 3 % refit tolerance (each D from a 100-ps run carries ~1.7 %
    noise, the quick run's ~7 % per 6 ps scaled by sqrt(6/100)); the RDF
    shift from U_HF at the tuned A ~0.15-0.2 Å, as in the quick run (0.18 Å).
    """
    # Paper 004: 100 ps trajectories for RDF and MSD (MSD to 10 ps), 1 fs.
    c.rem.update(reference_frames=1000, n_iterations=20)
    c.fm.update(n_steps=5000, train_stride=2, val_stride=5, batch_size=4, eval_every=250,
                checkpoint_every=250)  # fmt: skip
    # the quick run's annealing (lr x 0.94 per update, x 0.09 over 40) spread over 200 updates
    c.rdf_train.update(n_updates=200, n_steps=2000, record_every=20, segment_steps=20, skin=0.2,
                       start_frame=10, rebin=1, lr_decay=0.94 ** (40 / 200))  # fmt: skip
    c.dynamics.update(production_steps=100000, record_every=100, fit_window=(5.0, 20.0),
                      n_blocks=4)  # fmt: skip
    # the paper's bisection; runs long enough that each D carries ~1-2 % noise
    c.hf.update(method="bisection", max_evals=12, ftol_fraction=0.02, refine=1,
                refine_rtol=0.03)  # fmt: skip
    c.omega_scan.update(omegas_per_nm=(50.0, 100.0, 200.0, 500.0, 1000.0, 1500.0),
                        production_steps=50000, noise_run=True)  # fmt: skip
    c.validation.production_steps = 200000
    return c


def get_config(preset: str = "quick"):
    c = base()
    if preset == "quick":
        return c
    if preset == "smoke":
        return smoke(c)
    if preset == "full":
        return full(c)
    raise ValueError(f"unknown preset {preset!r}; presets: smoke, quick, full")


def liquid_preset(c: ml_collections.ConfigDict, preset: str) -> ml_collections.ConfigDict:
    """``preset`` of a simple liquid run as a config of this experiment (argon, methane),
    from its ``quick`` config ``c``."""
    if preset == "quick":
        return c
    if preset == "smoke":
        # the RDF training through the adjoint and the omega scan are covered by
        # the SPC/E smoke test; here they are left out to save their compiles
        c = smoke(c)
        c.rdf_train.n_updates = 0
        c.omega_scan.enabled = False
        # at ~100 K, A = 0.5 releases enough heat on switching U_HF on to trip the
        # runaway-temperature stop (5 T) within 3 steps; 0.1 stays below it
        c.hf.bracket = (0.0, 0.1)
        return c
    if preset == "full":
        return full(c)
    raise ValueError(f"unknown preset {preset!r}; presets: smoke, quick, full")
