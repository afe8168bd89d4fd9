"""Base config and presets of ``experiments/deepcg_water.py`` (paper 002).

--config=configs/deepcg_water.py:smoke   # seconds: the test suite runs it
--config=configs/deepcg_water.py:quick   # the default, ~25 min on 2 CPU cores
--config=configs/deepcg_water.py:full    # the paper's lengths; a GPU
"""

import ml_collections

#: Every key's meaning and unit (``python -m cgjax.run EXPERIMENT --help``).
HELP = {
    "seed": "seed of initialisation, batch order and MD (member k: fold_in(seed, k)) [-]",
    "dataset": "shipped dataset the CG frames come from (cgjax.datasets) [-]",
    "train_span_ps": "time span of the training frames (start, end) [ps]",
    "val_span_ps": "time span of the validation frames (start, end) [ps]",
    "train_stride": "every k-th frame of the training span is used [frames]",
    "val_stride": "every k-th frame of the validation span is used [frames]",
    "n_members": "ensemble members trained together, differing in their seed [-]",
    "cutoff": "DeepPot-SE cutoff radius R_c (paper 002: 0.6) [nm]",
    "model.embedding_features": "DeepPot-SE embedding net widths (over its default_config) [-]",
    "model.fitting_features": "DeepPot-SE fitting net widths (over its default_config) [-]",
    "train.lr": "Adam's initial learning rate [-]",
    "train.lr_final_fraction": "final learning rate of the cosine decay, as a fraction of lr [-]",
    "train.n_steps": "optimiser updates [steps]",
    "train.batch_size": "frames per update [frames]",
    "train.eval_every": "updates between validation force errors [steps]",
    "train.checkpoint_every": "updates between checkpoints in the workdir [steps]",
    "train.patience": "early stop after this many evaluations without improvement [evaluations]",
    "train.clip_norm": "gradient clipped to this global norm (None: no clipping) [-]",
    "md.temperature": "Langevin bath temperature [K]",
    "md.dt": "MD time step [ps]",
    "md.friction": "Langevin friction coefficient gamma [1/ps]",
    "md.equilibration_steps": "Langevin steps before recording, at the training size [steps]",
    "md.production_steps": "recorded Langevin steps at the training size [steps]",
    "md.record_every": "steps between recorded frames at the training size [steps]",
    "md.nve_steps": "NVE steps after production, for the energy drift (0: none) [steps]",
    "md.skin": "neighbor-list skin beyond the cutoff [nm]",
    "large.replicas": "copies of the box along each axis for the size transfer [-]",
    "large.equilibration_steps": "Langevin steps before recording, large system [steps]",
    "large.production_steps": "recorded Langevin steps, large system [steps]",
    "large.record_every": "steps between recorded frames, large system [steps]",
    "structure.rdf_r_max": "RDF range, 0 to this distance [nm]",
    "structure.rdf_bin": "RDF bin width [nm]",
    "structure.adf_cutoff": "neighbours within this distance enter the three-body ADF [nm]",
    "structure.q_cutoff": "Steinhardt q-bar neighbour cutoff (switch ends) [nm]",
    "structure.q_switch": "Steinhardt q-bar neighbour switch start [nm]",
    "reference_frames": "AA frames (evenly strided) for the reference structure [frames]",
    "progress": "show progress bars [-]",
}


#: Ranges of values, checked by ``cgjax.run`` before it writes anything
#: (``cgjax.config.check_config``; lists are checked entry by entry).
CHECKS = {
    "train_span_ps": ">= 0",
    "val_span_ps": ">= 0",
    "train_stride": "> 0",
    "val_stride": "> 0",
    "n_members": "> 0",
    "train.lr": "> 0",
    "train.lr_final_fraction": "in [0, 1]",
    "train.n_steps": "> 0",
    "train.batch_size": "> 0",
    "train.eval_every": "> 0",
    "train.checkpoint_every": "> 0",
    "train.patience": "> 0",
    "train.clip_norm": "> 0",
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
    "md.friction": "> 0",
    "large.replicas": "> 0",
    "large.equilibration_steps": ">= 0",
    "large.production_steps": "> 0",
    "large.record_every": "> 0",
}


def base() -> ml_collections.ConfigDict:
    """The default (``quick``) preset: about 25 min on 2 CPU cores."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "spce_512"
    c.train_span_ps = (0.0, 160.0)
    c.val_span_ps = (170.0, 200.0)
    c.train_stride = 2  # every 2nd frame (0.4 ps apart)
    c.val_stride = 10  # 2 ps apart
    c.n_members = 4
    c.cutoff = 0.6  # nm, paper 002: R_c = 6 Å
    c.model = ml_collections.ConfigDict()  # DeepPotSE fields over its default_config()
    # Adam with a cosine decay (the paper: exponential); lr 3e-2 was the best of
    # {3e-3, 1e-2, 3e-2, 1e-1} for DeepPot-SE here (see water_data_efficiency).
    c.train = ml_collections.ConfigDict(
        dict(
            lr=3e-2, lr_final_fraction=0.01, n_steps=600, batch_size=2, eval_every=50,
            checkpoint_every=50, clip_norm=100.0,
        )
    )  # fmt: skip
    c.md = ml_collections.ConfigDict(
        dict(
            temperature=300.0, dt=0.002, friction=10.0, equilibration_steps=500,
            production_steps=2000, record_every=25, nve_steps=500, skin=0.1,
        )
    )  # fmt: skip
    c.large = ml_collections.ConfigDict(
        dict(replicas=2, equilibration_steps=100, production_steps=300, record_every=20)
    )
    c.structure = ml_collections.ConfigDict(
        dict(rdf_r_max=1.0, rdf_bin=0.005, adf_cutoff=0.34, q_cutoff=0.36, q_switch=0.31)
    )
    c.reference_frames = 200
    c.progress = True
    return c


def get_config(preset: str = "quick"):
    c = base()
    if preset == "quick":
        return c
    if preset == "smoke":
        c.train_stride = 100
        c.val_stride = 50
        c.n_members = 2
        c.cutoff = 0.45
        c.model.update(embedding_features=(4, 8), fitting_features=(8, 8))
        c.train.update(n_steps=3, eval_every=3, checkpoint_every=3, batch_size=1)
        c.md.update(equilibration_steps=10, production_steps=20, record_every=10, nve_steps=10)
        c.large.update(equilibration_steps=4, production_steps=8, record_every=4)
        c.reference_frames = 5
        c.progress = False
        return c
    if preset == "full":
        # Paper 002: batch 4, long training; 1 ns at 8x the size.
        c.train_stride = 1
        c.val_stride = 2
        c.train.update(n_steps=50000, batch_size=4, eval_every=1000, checkpoint_every=1000,
                       patience=10)  # fmt: skip
        c.md.update(equilibration_steps=5000, production_steps=50000, record_every=100,
                    nve_steps=10000)  # fmt: skip
        c.large.update(equilibration_steps=5000, production_steps=500000, record_every=500)
        c.reference_frames = 1000
        return c
    raise ValueError(f"unknown preset {preset!r}; presets: smoke, quick, full")
