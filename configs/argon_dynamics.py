"""Paper 004 Fig. 5B: liquid argon (shipped OpenMM ``argon_864``, 94.4 K) as a config
of ``experiments/spce_dynamics.py``.

The "AA" model is LJ argon itself (sigma 3.405 Å, epsilon/kB 119.8 K, Rahman's
state point), so REM alone should recover it and the GNN has little to add;
the dynamics stage then shows how far U_HF moves an already-correct D.

    python -m cgjax.run experiments/spce_dynamics.py --config=configs/argon_dynamics.py:quick

--config=configs/argon_dynamics.py:smoke   # about a minute: the test suite runs it
--config=configs/argon_dynamics.py:quick   # the default
--config=configs/argon_dynamics.py:full    # the paper's lengths; a GPU

Stages, outputs and resuming are those of ``experiments/spce_dynamics.py``:
REM of the LJ term, force matching then RDF training of the GNN through the
adjoint, the omega scan, the bisection of ``A`` and a validation run.
"""

import os

import ml_collections

from cgjax.config import load_module

_SPCE = load_module(os.path.join(os.path.dirname(__file__), "spce_dynamics.py"))

#: Every key's meaning and unit: those of the SPC/E config.
HELP = _SPCE.HELP
#: Ranges of values: those of the SPC/E config.
CHECKS = _SPCE.CHECKS


def base() -> ml_collections.ConfigDict:
    """The ``quick`` preset."""
    c = _SPCE.base()
    c.dataset = "argon_864"
    c.label = "liquid argon"
    c.temperature = 94.4
    c.cutoff = 0.85  # nm, 2.5 sigma
    # REM starts 6 % and 20 % off the AA values (0.3405 nm, 0.996 kJ/mol)
    c.lj.update(sigma=0.36, epsilon=0.8, r_onset=0.8)
    c.rdf_train.update(dt=0.004)
    c.fm.update(val_span_ps=(80.0, 100.0))
    return c


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    return _SPCE.liquid_preset(base(), preset)
