"""Thin wrappers over jax-md's integrators, in cgjax units.

Each returns a :class:`Simulator`: jax-md's ``(init_fn, step_fn)`` plus what
the trajectory runner needs to know (time step, target kT, masses, space).
Units: ``dt`` in ps, ``kT`` in kJ/mol, ``friction`` in 1/ps, masses in amu.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax_md import simulate

from cgjax._system import System

# jax-md's kinetic energy asks for a float64 sum (util.high_precision_sum);
# without jax_enable_x64 JAX warns on every trace and sums in float32, which
# is what a float32 simulation does anyway. The warning says nothing to users.
warnings.filterwarnings(
    "ignore",
    message=r"Explicitly requested dtype float64 requested in (sum|convert_element_type)",
    category=UserWarning,
)

__all__ = ["Simulator", "brownian", "nve", "nvt_langevin", "nvt_nose_hoover"]


class Simulator(NamedTuple):
    """An integrator bound to a system.

    Attributes:
      init_fn: ``init_fn(key, R, *, neighbor=None) -> state`` (velocities drawn
        from Maxwell-Boltzmann at ``kT``, centre-of-mass momentum removed).
      step_fn: ``step_fn(state, *, neighbor=None) -> state``, one step of ``dt``.
      energy_fn: ``E(R, *, neighbor=None) -> kJ/mol``.
      system: the :class:`System`.
      dt: time step (ps).
      kT: target (or initial, for NVE) thermal energy (kJ/mol).
      name: the ensemble, e.g. ``"nvt_langevin"``.
      has_momentum: False for Brownian dynamics (no velocities).
    """

    init_fn: Callable[..., Any]
    step_fn: Callable[..., Any]
    energy_fn: Callable[..., jax.Array]
    system: System
    dt: float
    kT: float
    name: str
    has_momentum: bool = True


def _check(dt: float, kT: float, **positive: float) -> None:
    for k, v in dict(dt=dt, kT=kT, **positive).items():
        if v is None or not float(v) > 0:
            raise ValueError(f"{k} must be positive, got {v}")


def _bind(init, step, energy_fn, system, dt, kT, name, *, needs_kT: bool, has_momentum=True):
    masses = system.mass_array()

    def init_fn(key: jax.Array, R: jax.Array, *, neighbor=None, **kw):
        system.check_positions(R)
        m = masses.astype(R.dtype)
        if needs_kT:
            return init(key, R, kT, mass=m, neighbor=neighbor, **kw)
        return init(key, R, mass=m, neighbor=neighbor, **kw)

    def step_fn(state, *, neighbor=None, **kw):
        return step(state, neighbor=neighbor, **kw)

    return Simulator(init_fn, step_fn, energy_fn, system, float(dt), float(kT), name, has_momentum)


def nve(energy_fn: Callable, system: System, *, dt: float, kT: float) -> Simulator:
    """Velocity Verlet (NVE); ``kT`` (kJ/mol) sets the initial velocities."""
    _check(dt, kT)
    init, step = simulate.nve(energy_fn, system.shift_fn, dt)
    return _bind(init, step, energy_fn, system, dt, kT, "nve", needs_kT=True)


def nvt_nose_hoover(
    energy_fn: Callable,
    system: System,
    *,
    dt: float,
    kT: float,
    tau: float | None = None,
    chain_length: int = 5,
    chain_steps: int = 2,
    sy_steps: int = 3,
) -> Simulator:
    """Nose-Hoover chain NVT (deterministic, dynamics-preserving).

    Args:
      tau: thermostat time constant (ps); default ``100 dt``.
      chain_length, chain_steps, sy_steps: chain length, sub-steps and
        Suzuki-Yoshida order of the chain integrator.
    """
    _check(dt, kT)
    init, step = simulate.nvt_nose_hoover(
        energy_fn,
        system.shift_fn,
        dt,
        kT,
        chain_length=chain_length,
        chain_steps=chain_steps,
        sy_steps=sy_steps,
        tau=tau,
    )
    return _bind(init, step, energy_fn, system, dt, kT, "nvt_nose_hoover", needs_kT=False)


def nvt_langevin(
    energy_fn: Callable, system: System, *, dt: float, kT: float, friction: float = 1.0
) -> Simulator:
    """BAOAB Langevin NVT with friction ``gamma`` (1/ps)."""
    _check(dt, kT, friction=friction)
    init, step = simulate.nvt_langevin(energy_fn, system.shift_fn, dt, kT, gamma=friction)
    return _bind(init, step, energy_fn, system, dt, kT, "nvt_langevin", needs_kT=False)


def brownian(
    energy_fn: Callable, system: System, *, dt: float, kT: float, friction: float = 1.0
) -> Simulator:
    """Overdamped Brownian dynamics; free particles diffuse with ``D = kT / (m gamma)``.

    Args:
      friction: ``gamma`` (1/ps); the mobility is ``1 / (m gamma)``.
    """
    _check(dt, kT, friction=friction)
    init, step = simulate.brownian(energy_fn, system.shift_fn, dt, kT, gamma=friction)

    def init_b(key, R, *, mass, neighbor=None, **kw):
        del neighbor, kw
        return init(key, R, mass=mass)

    return _bind(
        init_b, step, energy_fn, system, dt, kT, "brownian", needs_kT=False, has_momentum=False
    )


def kinetic_energy(state: Any) -> jax.Array:
    """``sum p^2 / 2m`` (kJ/mol) of a jax-md state with momenta."""
    return 0.5 * jnp.sum(state.momentum**2 / state.mass)
