"""Peak RSS of one streamed-RDF remat/backsolve gradient against run length, small system.

Argon 32 (FCC, float32, LJ sigma 0.3405 nm cut 0.5 nm, skin 0.05 nm, NVE, dt
1 fs, kT 0.785 kJ/mol velocities), 25-step segments and frames every 25 steps
as in ``trajectory_gradient.py``, so 1k / 10k / 100k steps are 40 / 400 / 4000
segments. One ``jax.value_and_grad`` of ``losses.rdf_loss`` (sigma 0.02 nm, 20
bins to 0.55 nm, target g = 1) per length, lengths ascending in one process
after a one-segment warm-up: the printed high-water mark (VmHWM, MB) after
each is the peak so far. ``--per-segment`` forces the per-segment
``jax.checkpoint`` path (the code of run D) instead of the grouped custom_vjp.

    python benchmarks/remat_memory_ladder.py [--method remat|backsolve]
        [--steps 1000,10000,100000] [--per-segment]
"""

import argparse
import gc
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import losses, potentials, simulate, units
from cgjax.simulate import _differentiable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trajectory_gradient import rss_gb  # noqa: E402

KT = 0.785  # kJ/mol
R_MAX, N_BINS = 0.55, 20  # nm
CENTRES = (np.arange(N_BINS) + 0.5) * R_MAX / N_BINS


def status_mb(field):
    """A /proc/self/status field in MB (``trajectory_gradient.rss_gb``, scaled)."""
    return 1e3 * rss_gb(field=field)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=("remat", "backsolve"), default="remat")
    p.add_argument("--steps", default="1000,10000,100000")
    p.add_argument("--per-segment", action="store_true")
    args = p.parse_args()
    if args.per_segment:
        _differentiable._all_concrete = lambda tree: False
    sigma, mass = 3.405 * units.angstrom, 39.948
    R, L = simulate.fcc_lattice(2, 1.374 * units.g_per_cm3 / mass)
    pot = potentials.LennardJones(sigma=sigma, epsilon=119.8 * units.kB, cutoff=0.5,
                                  r_onset=0.5 - 0.2 * sigma)  # fmt: skip
    system = simulate.System.create(box=L, species=np.zeros(len(R), np.int32), masses=mass)
    model = potentials.energy_model(pot, system=system)
    R = jnp.asarray(R, jnp.float32)
    params = model.init_fn(jax.random.key(0), R)
    V0 = simulate.maxwell_boltzmann(jax.random.key(1), system, KT, jnp.float32)
    for n_steps in [25] + [int(s) for s in args.steps.split(",")]:
        protocol = simulate.Protocol(temperature=KT / units.kB, dt=0.001,
                                     production_steps=n_steps, record_every=25,
                                     thermostat="nve", skin=0.05)  # fmt: skip
        adjoint = (simulate.Checkpoint(segment_steps=25, remat=True) if args.method == "remat"
                   else simulate.Backsolve(segment_steps=25))  # fmt: skip
        spec = simulate.TrajectorySpec(model, R, V0, protocol, adjoint=adjoint)
        loss = losses.rdf_loss(CENTRES, np.ones(N_BINS), simulate=spec, sigma=0.02)
        t0 = time.perf_counter()
        _, g = jax.value_and_grad(lambda p, f=loss: f(p, None))(params)
        jax.block_until_ready(g)
        gc.collect()
        print(f"{'per-segment' if args.per_segment else 'grouped'} {args.method} {n_steps:6d} "
              f"steps ({n_steps // 25} segments): peak RSS {status_mb('VmHWM'):.0f} MB, RSS "
              f"{status_mb('VmRSS'):.0f} MB, {time.perf_counter() - t0:.1f} s, grad "
              f"{float(g['epsilon'].ravel()[0]):.6g} {float(g['sigma'].ravel()[0]):.6g}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
