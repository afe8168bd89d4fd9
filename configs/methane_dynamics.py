"""Paper 004 Fig. 5C: methane (shipped five-site OpenMM ``methane_512``) as a config
of ``experiments/spce_dynamics.py``.

The AA model uses paper 004's printed parameters (epsilon_C = 0.066 kJ/mol),
which at 111.7 K and 0.4228 g/cm^3 make a weakly structured supercritical
fluid (first RDF peak 1.45, D_AA = 2.8e-4 cm^2/s; see cgjax/datasets/README.md),
not the boiling liquid; the CG beads are the molecules' centres of mass.

    python -m cgjax.run experiments/spce_dynamics.py --config=configs/methane_dynamics.py:quick

--config=configs/methane_dynamics.py:smoke   # about a minute: the test suite runs it
--config=configs/methane_dynamics.py:quick   # the default
--config=configs/methane_dynamics.py:full    # the paper's lengths; a GPU

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
    c.dataset = "methane_512"
    c.label = "methane"
    c.temperature = 111.7
    c.cutoff = 0.8  # nm
    c.lj.update(sigma=0.3345, epsilon=0.066, r_onset=0.75)  # paper 004's carbon LJ
    c.fm.update(val_span_ps=(80.0, 100.0))
    return c


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    return _SPCE.liquid_preset(base(), preset)
