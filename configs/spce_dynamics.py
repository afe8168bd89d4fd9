"""Presets of ``experiments/spce_dynamics.py`` (paper 004, SPC/E water).

--config=configs/spce_dynamics.py:smoke   # about a minute: the test suite runs it
--config=configs/spce_dynamics.py:quick   # the default: 12.5 min measured on 2 CPU cores
--config=configs/spce_dynamics.py:full    # the paper's lengths; a GPU (see ``full``)
"""

import os

from cgjax.workflow import load_module

_EXPERIMENT = os.path.join(os.path.dirname(__file__), "..", "experiments", "spce_dynamics.py")


def smoke(c):
    """Shrinks any dynamics preset to seconds of work (shared by the three experiments)."""
    c.model.update(embed_dim=4, message_dim=4, n_rbf=6)
    c.rem.update(reference_frames=10, n_iterations=2, equilibration_steps=20,
                 production_steps=100, record_every=20)  # fmt: skip
    c.fm.update(n_steps=3, eval_every=3, checkpoint_every=3, train_stride=200, val_stride=200)
    c.rdf_train.update(n_updates=1, equilibration_steps=20, n_steps=40, record_every=10,
                       start_frame=1, segment_steps=10, rebin=4)  # fmt: skip
    c.dynamics.update(equilibration_steps=20, production_steps=200, record_every=10,
                      fit_window=(0.02, 0.05), n_blocks=2, aa_fit_window=(1.0, 4.0))  # fmt: skip
    # A ballistic 0.2 ps run says nothing about diffusion: the target is put
    # between the bracket's ends (whose top, 2.6x the paper's, traps the beads).
    c.hf.update(target_D="between_ends", bracket=(0.0, 0.5), max_evals=3)
    c.omega_scan.update(omegas_per_nm=(100.0, 1000.0), amplitude=0.19)  # A = 0 reused
    c.validation.production_steps = 200
    c.progress = False
    return c


def full(c):
    """The paper's lengths (shared by the three experiments). Not run yet.

    Hardware: one GPU is meant. On 2 CPU cores it would take ~8 h for SPC/E,
    estimated (not measured) from the quick run's rates
    (``docs/results/spce_dynamics_quick``: ~105 MD steps/s of the full model,
    ~15 ms per differentiable step): RDF training ~2.2 h (200 updates of 1000
    + 2000 steps), amplitude search ~4.3 h (12 runs of 101k steps, then one or
    two final runs of 201k steps, the last of which is the validation run),
    omega scan ~1.1 h (8 runs of 51k steps: A = 0, its second seed, 6 omegas),
    REM and force matching ~0.4 h. The checkpoint adjoint's memory grows with the
    2000-step window (not measured for the GNN; ~0.9 MB per step for LJ in
    ``benchmarks/trajectory_gradient.py``).

    Expected numbers, reasoned from the quick run, not measured: RDF TAE
    (0-10 Å) ≤ 0.3 Å (the quick run's 4 updates give 0.28 Å); D_CG / D_AA
    within the 3 % refit tolerance (each D from a 100-ps run carries ~1.7 %
    noise, the quick run's ~7 % per 6 ps scaled by sqrt(6/100)); the RDF
    shift from U_HF at the tuned A ~0.15-0.2 Å, as in the quick run (0.18 Å).
    """
    # Paper 004: 100 ps trajectories for RDF and MSD (MSD to 10 ps), 1 fs.
    c.rem.update(reference_frames=1000, n_iterations=20, production_steps=20000)
    c.fm.update(n_steps=5000, train_stride=2, val_stride=5, batch_size=4, eval_every=250,
                checkpoint_every=250)  # fmt: skip
    c.rdf_train.update(n_updates=200, n_steps=2000, record_every=20, segment_steps=20, skin=0.2,
                       start_frame=10, rebin=1)  # fmt: skip
    c.dynamics.update(production_steps=100000, record_every=100, fit_window=(5.0, 20.0),
                      n_blocks=4)  # fmt: skip
    # the paper's bisection; runs long enough that each D carries ~1-2 % noise
    c.hf.update(method="bisection", max_evals=12, ftol_fraction=0.02, refine=1,
                refine_rtol=0.03)  # fmt: skip
    c.omega_scan.update(omegas_per_nm=(50.0, 100.0, 200.0, 500.0, 1000.0, 1500.0),
                        production_steps=50000, noise_run=True)  # fmt: skip
    c.validation.production_steps = 200000
    return c


def get_config(preset: str = "quick"):
    c = load_module(_EXPERIMENT).get_config()
    if preset == "quick":
        return c
    if preset == "smoke":
        return smoke(c)
    if preset == "full":
        return full(c)
    raise ValueError(f"unknown preset {preset!r}; presets: smoke, quick, full")
