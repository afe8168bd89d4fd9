"""Presets of ``experiments/deepcg_water.py`` (paper 002).

--config=configs/deepcg_water.py:smoke   # seconds: the test suite runs it
--config=configs/deepcg_water.py:quick   # the default, ~25 min on 2 CPU cores
--config=configs/deepcg_water.py:full    # the paper's lengths; a GPU
"""

import os

from cgjax.workflow import load_module

_EXPERIMENT = os.path.join(os.path.dirname(__file__), "..", "experiments", "deepcg_water.py")


def get_config(preset: str = "quick"):
    c = load_module(_EXPERIMENT).get_config()
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
