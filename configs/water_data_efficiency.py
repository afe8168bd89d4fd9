"""Base config and presets of ``experiments/water_data_efficiency.py`` (paper 000).

--config=configs/water_data_efficiency.py:smoke   # seconds: the test suite runs it
--config=configs/water_data_efficiency.py:quick   # the default, ~30 min on 2 CPU cores
--config=configs/water_data_efficiency.py:full    # the paper's sizes; a GPU
"""

import ml_collections

from cgjax import potentials

#: Every key's meaning and unit (``python -m cgjax.run EXPERIMENT --help``).
HELP = {
    "seed": "seed of initialisation, batch order and MD [-]",
    "dataset": "shipped dataset the CG frames come from (cgjax.datasets) [-]",
    "frame_spacing_ps": "time between consecutive training frames (paper 000: 2) [ps]",
    "n_train_frames": "training-set sizes, each trained and simulated per model [frames]",
    "n_val_frames": "validation frames, half-way between training frames [frames]",
    "invariant": "the invariant model's name in the zoo (potentials.MODELS) [-]",
    "equivariant": "the equivariant model's name in the zoo (potentials.MODELS) [-]",
    "cutoff": "model cutoff radius (paper 000: 0.7) [nm]",
    "model_overrides.deeppot.embedding_features": "DeepPot-SE embedding net widths [-]",
    "model_overrides.deeppot.fitting_features": "DeepPot-SE fitting net widths [-]",
    "model_overrides.allegro.two_body_features": "Allegro two-body MLP widths [-]",
    "model_overrides.allegro.latent_features": "Allegro latent MLP widths [-]",
    "train.lr": "Adam's initial learning rate [-]",
    "train.lr_final_fraction": "final learning rate of the cosine decay, as a fraction of lr [-]",
    "train.n_steps": "optimiser updates [steps]",
    "train.batch_size": "frames per update [frames]",
    "train.eval_every": "updates between validation force errors [steps]",
    "train.checkpoint_every": "updates between checkpoints in the workdir [steps]",
    "train.clip_norm": "gradient clipped to this global norm (None: no clipping) [-]",
    "train.patience": "early stop after this many evaluations without improvement [evaluations]",
    "train_overrides.schnet.lr": "SchNet's initial learning rate (replaces train.lr) [-]",
    "train_overrides.hipnn.lr": "HIP-NN's initial learning rate (replaces train.lr) [-]",
    "md.temperature": "Nose-Hoover bath temperature [K]",
    "md.dt": "MD time step [ps]",
    "md.equilibration_steps": "Nose-Hoover steps before recording [steps]",
    "md.production_steps": "recorded Nose-Hoover steps [steps]",
    "md.record_every": "steps between recorded frames [steps]",
    "md.nve_steps": "NVE steps after production, for the energy drift (0: none) [steps]",
    "md.tau": "Nose-Hoover thermostat time constant [ps]",
    "md.skin": "neighbor-list skin beyond the cutoff [nm]",
    "structure.rdf_r_max": "RDF range, 0 to this distance [nm]",
    "structure.rdf_bin": "RDF bin width [nm]",
    "structure.adf_cutoff": "neighbours within this distance enter the three-body ADF [nm]",
    "structure.q_cutoff": "Steinhardt q-bar neighbour cutoff (switch ends) [nm]",
    "structure.q_switch": "Steinhardt q-bar neighbour switch start [nm]",
    "reference_frames": "AA frames (evenly strided) for the reference structure [frames]",
    "noise_floor_models": "zoo models trained on the largest set for the noise floor [-]",
    "spline_basis": "B-spline basis functions of the MS-CG pair spline [-]",
    "progress": "show progress bars [-]",
    "sweep_model": "the zoo model a --sweep member trains [-]",
    "sweep_train_frames": "training frames of a --sweep member, 2 ps apart [frames]",
}


#: Ranges of values, checked by ``cgjax.run`` before it writes anything
#: (``cgjax.config.check_config``; lists are checked entry by entry).
CHECKS = {
    "frame_spacing_ps": "> 0",
    "n_train_frames": "> 0",
    "n_val_frames": "> 0",
    "train.lr": "> 0",
    "train.lr_final_fraction": "in [0, 1]",
    "train.n_steps": "> 0",
    "train.batch_size": "> 0",
    "train.eval_every": "> 0",
    "train.checkpoint_every": "> 0",
    "train.patience": "> 0",
    "train.clip_norm": "> 0",
    "train_overrides.schnet.lr": "> 0",
    "train_overrides.hipnn.lr": "> 0",
    "md.temperature": "> 0",
    "md.dt": "> 0",
    "md.equilibration_steps": ">= 0",
    "md.production_steps": "> 0",
    "md.record_every": "> 0",
    "md.nve_steps": ">= 0",
    "md.skin": ">= 0",
    "structure.rdf_r_max": "> 0",
    "structure.rdf_bin": "> 0",
    "structure.adf_cutoff": "> 0",
    "structure.q_cutoff": "> 0",
    "structure.q_switch": "> 0",
    "reference_frames": "> 0",
    "cutoff": "> 0",
    "md.tau": "> 0",
    "spline_basis": "> 0",
    "sweep_train_frames": "> 0",
}


def base() -> ml_collections.ConfigDict:
    """The default (``quick``) preset: about 30 min on 2 CPU cores."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "spce_512"
    c.frame_spacing_ps = 2.0  # paper 000: frames every 2 ps
    c.n_train_frames = [1, 10, 100]
    c.n_val_frames = 50  # half-way frames (1 ps from training frames), evenly over 200 ps
    c.invariant = "deeppot"
    c.equivariant = "allegro"
    c.cutoff = 0.6  # nm; the paper uses 0.7 (7 Å): 0.6 halves the cost on CPU
    # Constructor fields per model on top of their default_config() (paper values).
    c.model_overrides = ml_collections.ConfigDict(
        {k: ml_collections.ConfigDict() for k in potentials.MODELS if k not in ("lj", "spline")}
    )
    # Adam, cosine decay to 1 % of lr, one frame (512 beads) per update. lr 3e-2 was
    # the best of {3e-3, 1e-2, 3e-2, 1e-1} for DeepPot-SE and Allegro on 10 frames;
    # SchNet and HIP-NN diverge or stall at 3e-2 and use 1e-2 (train_overrides).
    c.train = ml_collections.ConfigDict(
        dict(
            lr=3e-2, lr_final_fraction=0.01, n_steps=600, batch_size=1, eval_every=50,
            checkpoint_every=50, clip_norm=100.0,
        )
    )  # fmt: skip
    c.train_overrides = ml_collections.ConfigDict(
        {k: ml_collections.ConfigDict() for k in potentials.MODELS if k not in ("lj", "spline")}
    )
    c.train_overrides.schnet.lr = 1e-2
    c.train_overrides.hipnn.lr = 1e-2
    c.md = ml_collections.ConfigDict(
        dict(
            temperature=300.0, dt=0.002, equilibration_steps=500, production_steps=1500,
            record_every=25, nve_steps=500, tau=0.5, skin=0.1,
        )
    )  # fmt: skip
    # Paper 000: ADF of neighbours within 4.5 Å; paper 002 App. A: q-bar switch 3.1-3.6 Å.
    c.structure = ml_collections.ConfigDict(
        dict(rdf_r_max=1.0, rdf_bin=0.005, adf_cutoff=0.45, q_cutoff=0.36, q_switch=0.31)
    )
    c.reference_frames = 200  # AA frames (evenly strided) for the reference structure
    c.noise_floor_models = ["spline", "gnn", "schnet", "hipnn", "nequip"]
    c.spline_basis = 40
    c.progress = True
    # --sweep: which model and how many training frames a sweep member trains
    # (seeds and float train.* keys vmapped in one group; see sweep_group).
    c.sweep_model = "deeppot"
    c.sweep_train_frames = 10
    return c


def get_config(preset: str = "quick"):
    c = base()
    if preset == "quick":
        return c
    if preset == "smoke":
        c.n_train_frames = [1]
        c.n_val_frames = 2
        c.cutoff = 0.45
        c.model_overrides.deeppot.update(embedding_features=(4, 8), fitting_features=(8, 8))
        c.model_overrides.allegro.update(two_body_features=(8,), latent_features=(8,))
        c.train.update(n_steps=3, eval_every=3, checkpoint_every=3)
        c.md.update(equilibration_steps=10, production_steps=20, record_every=10, nve_steps=10)
        c.reference_frames = 5
        c.noise_floor_models = ["spline"]
        c.spline_basis = 12
        c.sweep_train_frames = 2
        c.progress = False
        return c
    if preset == "full":
        # Paper 000: 7 A cutoff; long training; 100 ps of production per model.
        c.cutoff = 0.7
        c.n_val_frames = 100
        c.train.update(n_steps=20000, eval_every=500, checkpoint_every=500, patience=10)
        c.md.update(equilibration_steps=5000, production_steps=50000, record_every=100,
                    nve_steps=10000)  # fmt: skip
        c.reference_frames = 1000
        return c
    raise ValueError(f"unknown preset {preset!r}; presets: smoke, quick, full")
