"""Many independent Langevin replicas of one model in one compiled run.

References:
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), Sec. III C
  (BAOAB Langevin simulations run in parallel from a set of initial coordinates).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cgjax._system import system_of
from cgjax.simulate._integrators import nvt_langevin
from cgjax.simulate._protocol import Protocol
from cgjax.simulate._runner import Monitor, RunResult, run

__all__ = ["sample_replicas"]


def sample_replicas(
    model: Any,
    params: Any,
    starts: Any,
    protocol: Protocol,
    *,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[RunResult, dict]:
    """BAOAB Langevin from each of ``starts``, all replicas vmapped, as ``protocol`` says.

    The replicas share the model and its parameters (passed as a traced
    argument) and differ in start and noise (velocities and Langevin noise
    from ``protocol.seed``, split per replica). The runner checks every chunk
    for NaN, runaway temperature and oversized steps and raises
    :class:`~cgjax.simulate.SimulationError`.

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel` on its system (masses amu;
        ``energy_fn(params) -> E(R, *, neighbor=None)`` in kJ/mol).
      params: its parameters (e.g. an ensemble's stacked ones for a mean-force energy).
      starts: ``[B, N, 3]`` start positions (nm).
      protocol: a :class:`Protocol` with ``thermostat="langevin"``; ``skin`` is
        ignored (all pairs: meant for small molecules).
      progress, log: the runner's progress bar and messages.

    Returns:
      ``(result, wall)``: the production :class:`RunResult` (trajectory
      ``[B, F, N, 3]``) and wall times (s) of ``equilibration`` and ``production``.
    """
    p = protocol
    if p.thermostat != "langevin" or p.equilibration_thermostat not in (None, "langevin"):
        raise ValueError(f"sample_replicas runs Langevin dynamics; the protocol says {p}")
    system = system_of(model, "sample_replicas")

    def energy(R, *, params=None, neighbor=None, **kw):
        del kw
        return model.energy_fn(params)(R, neighbor=neighbor)

    sim = nvt_langevin(energy, system, dt=p.dt, kT=p.kT, friction=p.friction)
    R = np.asarray(starts)
    system.check_positions(R[0], "start positions")
    if R.ndim != 3:
        raise ValueError(f"starts must be [B, N, 3] (nm), got shape {R.shape}")
    # as init_replicas, with the parameters the energy takes as a keyword
    keys = jax.random.split(jax.random.key(p.seed), R.shape[0])
    states = jax.vmap(lambda k, r: sim.init_fn(k, r, params=params))(keys, jnp.asarray(R))
    kw = dict(record_every=p.record_every, step_kwargs={"params": params},
              monitor=Monitor(progress=progress, log=log))  # fmt: skip
    wall = {}
    if p.equilibration_steps:
        eq = sim
        if p.equilibration_friction is not None:
            eq = nvt_langevin(energy, system, dt=p.dt, kT=p.kT, friction=p.equilibration_friction)
        t0 = time.perf_counter()
        states = run(eq, states, n_steps=p.equilibration_steps, **kw).state
        wall["equilibration"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = run(sim, states, n_steps=p.production_steps, step0=p.equilibration_steps, **kw)
    wall["production"] = time.perf_counter() - t0
    return out, wall
