"""Base config and presets of ``experiments/structure_methods.py`` (issue 20).

--config=configs/structure_methods.py:smoke   # argon, 2 updates per method: the tests run it
--config=configs/structure_methods.py:quick   # the default: both systems, 10 updates per method
--config=configs/structure_methods.py:full    # longer samplings and more updates (not run yet)

The quick preset, measured on a fresh clone of ``a73891b`` (2 cores, beside other
engineers' jobs at nice 19, load average 4-7): 11.9 min wall, peak RSS 2.9 GB
(``docs/results/structure_methods_quick/``).
"""

import ml_collections

#: Every key's meaning and unit (``python -m cgjax.run EXPERIMENT --help``).
HELP = {
    "seed": "seed of every simulation [-]",
    "systems": "systems compared: 'argon' (argon_864), 'spce' (spce_512) [-]",
    "methods": "methods compared, in order (the experiment's METHODS registry) [-]",
    "rdf_r_max": "RDF range of the targets and of the TAE, 0 to this distance [nm]",
    "rdf_bin": "RDF bin width of the targets and the TAE (AA bins merged) [nm]",
    "lj_start.argon": "LJ (sigma, epsilon) every method starts argon from [nm, kJ/mol]",
    "lj_start.spce": "LJ (sigma, epsilon) every method starts SPC/E from [nm, kJ/mol]",
    "cutoff": "LJ cutoff, switched to zero from cutoff - 0.05 nm [nm]",
    "sampling.dt": "REM, DiffTRe and evaluation sampling: time step [ps]",
    "sampling.tau": "sampling: Nose-Hoover time constant [ps]",
    "sampling.equilibration_steps": "sampling: steps before recording [steps]",
    "sampling.production_steps": "sampling: recorded steps [steps]",
    "sampling.record_every": "sampling: steps between recorded frames [steps]",
    "sampling.skin": "sampling: neighbor-list skin [nm]",
    "n_updates": "updates of every method at most (its fixed budget) [-]",
    "rem.ess_threshold": "REM: reuse samples while the ESS fraction exceeds it [-]",
    "rem.max_relative_step": "REM: Newton steps scaled so no parameter changes by more [-]",
    "rem.reference_frames": "REM: AA frames (evenly strided) it matches [frames]",
    "rem.tol": "REM: converged when every parameter changes relatively less [-]",
    "difftre.lr": "DiffTRe: Adam step relative to each parameter's size [-]",
    "difftre.ess_threshold": "DiffTRe: reuse samples while N_eff / N exceeds it [-]",
    "difftre.sigma": "DiffTRe: Gaussian smearing of the RDF [nm]",
    "adjoint.lr": "adjoint RDF loss: Adam step relative to each parameter's size [-]",
    "adjoint.dt": "adjoint: differentiable Nose-Hoover time step [ps]",
    "adjoint.tau": "adjoint: Nose-Hoover time constant [ps]",
    "adjoint.n_steps": "adjoint: differentiable trajectory per update [steps]",
    "adjoint.record_every": "adjoint: steps between frames entering the RDF [steps]",
    "adjoint.segment_steps": "adjoint: steps between neighbor-list rebuilds [steps]",
    "adjoint.sigma": "adjoint: Gaussian smearing of the RDF [nm]",
    "eval.every": "updates between evaluation runs (the TAE-per-iteration curve) [-]",
    "eval.production_steps": "recorded steps of each evaluation run [steps]",
    "eval.final_production_steps": "recorded steps of the final evaluation run [steps]",
    "inversion.n_basis": "IBI/IMC: cubic B-spline functions of the pair spline [-]",
    "inversion.r_min": "IBI/IMC: start of the spline's range [nm]",
    "inversion.alpha": "IBI: damping of the update alpha kT ln(g / g*) [-]",
    "inversion.pressure_correction": "IBI ramp, IMC row: pressure to the AA one (argon) [-]",
    "inversion.regularization": "IMC: Tikhonov strength relative to the mean eigenvalue [-]",
    "inversion.imc_max_step_kT": "IMC: largest change of U per update (trust region) [kT]",
    "progress": "show progress bars [-]",
}

#: Ranges of values, checked by ``cgjax.run`` before it writes anything.
CHECKS = {
    "rdf_r_max": "> 0",
    "rdf_bin": "> 0",
    "lj_start.argon": "> 0",
    "lj_start.spce": "> 0",
    "cutoff": "> 0",
    "sampling.dt": "> 0",
    "sampling.tau": "> 0",
    "sampling.equilibration_steps": ">= 0",
    "sampling.production_steps": "> 0",
    "sampling.record_every": "> 0",
    "sampling.skin": ">= 0",
    "n_updates": "> 0",
    "rem.ess_threshold": "in (0, 1]",
    "rem.max_relative_step": "> 0",
    "rem.reference_frames": "> 0",
    "rem.tol": ">= 0",
    "difftre.lr": "> 0",
    "difftre.ess_threshold": "in (0, 1]",
    "difftre.sigma": "> 0",
    "adjoint.lr": "> 0",
    "adjoint.dt": "> 0",
    "adjoint.tau": "> 0",
    "adjoint.n_steps": "> 0",
    "adjoint.record_every": "> 0",
    "adjoint.segment_steps": "> 0",
    "adjoint.sigma": "> 0",
    "eval.every": "> 0",
    "inversion.n_basis": "> 0",
    "inversion.r_min": ">= 0",
    "inversion.alpha": "in (0, 1]",
    "inversion.regularization": ">= 0",
    "inversion.imc_max_step_kT": "> 0",
    "eval.production_steps": "> 0",
    "eval.final_production_steps": "> 0",
}


def base() -> ml_collections.ConfigDict:
    """The ``quick`` preset (the default)."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.systems = ("argon", "spce")
    c.methods = ("rem", "adjoint", "difftre", "ibi", "imc")
    c.rdf_r_max = 1.0  # nm
    c.rdf_bin = 0.01  # nm
    # every method starts from the same LJ pair; argon's truth is (0.3405, 0.996)
    c.lj_start = ml_collections.ConfigDict(dict(argon=(0.33, 0.85), spce=(0.30, 0.60)))
    c.cutoff = 0.9  # nm
    c.sampling = ml_collections.ConfigDict(
        dict(dt=0.004, tau=0.5, equilibration_steps=250, production_steps=1500, record_every=25,
             skin=0.1)
    )  # fmt: skip
    c.n_updates = 10
    c.rem = ml_collections.ConfigDict(
        dict(ess_threshold=0.8, max_relative_step=0.1, reference_frames=100, tol=1e-3)
    )
    c.difftre = ml_collections.ConfigDict(dict(lr=0.02, ess_threshold=0.6, sigma=0.01))
    # segments of 5 steps (20 fs): SPC/E beads (18 amu, 300 K) moved 0.066 nm, more than
    # skin / 2, within 10 steps of 4 fs in a quick run
    c.adjoint = ml_collections.ConfigDict(
        dict(lr=0.02, dt=0.004, tau=0.5, n_steps=100, record_every=5, segment_steps=5,
             sigma=0.01)
    )  # fmt: skip
    # IMC: one quick sampling is 60 frames (about 25 independent: the first-shell pair
    # count decorrelates in 2.4 frames); from it the Newton step at regularization 1e-3
    # scatters 1.4-4.6 times its own size between blocks (scripts/imc_noise.py), and
    # the pressure ran away to 6000 bar. At 0.1 the scatter is 0.6, the step bounded.
    c.inversion = ml_collections.ConfigDict(
        dict(n_basis=40, r_min=0.25, alpha=0.5, pressure_correction=False, regularization=0.1,
             imc_max_step_kT=0.5)
    )  # fmt: skip
    c.eval = ml_collections.ConfigDict(
        dict(every=5, production_steps=1000, final_production_steps=5000)
    )
    c.progress = True
    return c


def smoke(c):
    c.systems = ("argon",)
    c.n_updates = 2
    c.rem.reference_frames = 10
    c.sampling.update(equilibration_steps=20, production_steps=100, record_every=20)
    c.adjoint.update(n_steps=20, record_every=10, segment_steps=10)
    c.eval.update(every=2, production_steps=100, final_production_steps=100)
    c.progress = False
    return c


def full(c):
    c.n_updates = 40
    c.rem.reference_frames = 500
    c.sampling.update(production_steps=10000, record_every=50)
    c.adjoint.update(n_steps=400)
    c.eval.update(every=5, production_steps=2500, final_production_steps=25000)
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
