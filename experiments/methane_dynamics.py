"""Paper 004 Fig. 5C: methane (shipped five-site OpenMM ``methane_512``), paper-004 stages.

The AA model uses paper 004's printed parameters (epsilon_C = 0.066 kJ/mol),
which at 111.7 K and 0.4228 g/cm^3 make a weakly structured supercritical
fluid (first RDF peak 1.45, D_AA = 2.8e-4 cm^2/s; see cgjax/datasets/README.md),
not the boiling liquid; the CG beads are the molecules' centres of mass.

    python -m cgjax.run experiments/methane_dynamics.py --config=configs/methane_dynamics.py:quick

Stages, outputs and resuming are those of ``experiments/spce_dynamics.py``
(whose ``main`` this runs): REM of the LJ term, force matching then RDF
training of the GNN through the adjoint, the omega scan, the bisection of
``A`` and a validation run.
"""

from __future__ import annotations

import os

import ml_collections

from cgjax.workflow import load_module

_BASE = load_module(os.path.join(os.path.dirname(__file__), "spce_dynamics.py"))


def get_config() -> ml_collections.ConfigDict:
    """The ``quick`` preset."""
    c = _BASE.get_config()
    c.dataset = "methane_512"
    c.label = "methane"
    c.temperature = 111.7
    c.cutoff = 0.8  # nm
    c.lj.update(sigma=0.3345, epsilon=0.066, r_onset=0.75)  # paper 004's carbon LJ
    c.fm.update(val_span_ps=(80.0, 100.0))
    return c


def main(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs the paper-004 stages on ``config.dataset``; see ``spce_dynamics.main``."""
    return _BASE.main(config, workdir)
