"""Presets of ``experiments/argon_dynamics.py`` (paper 004 Fig. 5B).

--config=configs/argon_dynamics.py:smoke   # about a minute: the test suite runs it
--config=configs/argon_dynamics.py:quick   # the default
--config=configs/argon_dynamics.py:full    # the paper's lengths; a GPU
"""

import os

from cgjax.workflow import load_module

_HERE = os.path.dirname(__file__)
_EXPERIMENT = os.path.join(_HERE, "..", "experiments", "argon_dynamics.py")
_SPCE = load_module(os.path.join(_HERE, "spce_dynamics.py"))


def get_config(preset: str = "quick"):
    c = load_module(_EXPERIMENT).get_config()
    if preset == "quick":
        return c
    if preset == "smoke":
        # the RDF training through the adjoint and the omega scan are covered by
        # the SPC/E smoke test; here they are left out to save their compiles
        c = _SPCE.smoke(c)
        c.rdf_train.n_updates = 0
        c.omega_scan.enabled = False
        # at ~100 K, A = 0.5 releases enough heat on switching U_HF on to trip the
        # runaway-temperature stop (5 T) within 3 steps; 0.1 stays below it
        c.hf.bracket = (0.0, 0.1)
        return c
    if preset == "full":
        return _SPCE.full(c)
    raise ValueError(f"unknown preset {preset!r}; presets: smoke, quick, full")
