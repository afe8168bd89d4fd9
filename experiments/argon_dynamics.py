"""Paper 004 Fig. 5B: liquid argon (shipped OpenMM ``argon_864``, 94.4 K), paper-004 stages.

The "AA" model is LJ argon itself (sigma 3.405 Å, epsilon/kB 119.8 K, Rahman's
state point), so REM alone should recover it and the GNN has little to add;
the dynamics stage then shows how far U_HF moves an already-correct D.

    python -m cgjax.run experiments/argon_dynamics.py --config=configs/argon_dynamics.py:quick

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
    c.dataset = "argon_864"
    c.label = "liquid argon"
    c.temperature = 94.4
    c.cutoff = 0.85  # nm, 2.5 sigma
    # REM starts 6 % and 20 % off the AA values (0.3405 nm, 0.996 kJ/mol)
    c.lj.update(sigma=0.36, epsilon=0.8, r_onset=0.8)
    c.rem.update(dt=0.004)
    c.rdf_train.update(dt=0.004)
    c.fm.update(val_span_ps=(80.0, 100.0))
    return c


def main(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs the paper-004 stages on ``config.dataset``; see ``spce_dynamics.main``."""
    return _BASE.main(config, workdir)
