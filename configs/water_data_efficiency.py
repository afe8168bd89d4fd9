"""Presets of ``experiments/water_data_efficiency.py`` (paper 000).

--config=configs/water_data_efficiency.py:smoke   # seconds: the test suite runs it
--config=configs/water_data_efficiency.py:quick   # the default, ~30 min on 2 CPU cores
--config=configs/water_data_efficiency.py:full    # the paper's sizes; a GPU
"""

import os

from cgjax.workflow import load_module

_EXPERIMENT = os.path.join(
    os.path.dirname(__file__), "..", "experiments", "water_data_efficiency.py"
)


def get_config(preset: str = "quick"):
    c = load_module(_EXPERIMENT).get_config()
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
