"""How to sample a model: one frozen, validated object, and the one function that does it.

A :class:`Protocol` says *what* (thermostat, time step, temperature, how long
to equilibrate and to produce, how often to record, neighbor-list skin,
seed); :func:`sample` *does it*: equilibrate, then produce, with the model's
parameters passed to the energy as a traced argument, so every call with the
same model, system and protocol settings reuses one compiled simulation
(new parameters, new start, same program). Relative-entropy minimisation,
the dynamics probe, structural validation and the experiments all sample
through it.

    >>> protocol = simulate.Protocol(temperature=300.0, dt=0.002, production_steps=5000,
    ...                              record_every=50, equilibration_steps=1000)
    >>> model = potentials.energy_model(pot, system=system)   # box, species, masses
    >>> out = simulate.sample(model, params, R0, protocol)
    >>> out.trajectory.positions.shape        # [100, N, 3] nm
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from cgjax import units
from cgjax._system import System, system_of
from cgjax._validation import settings_from_config
from cgjax.simulate._integrators import Simulator, nve, nvt_langevin, nvt_nose_hoover
from cgjax.simulate._runner import Monitor, SimulationError, Trajectory, run

__all__ = ["THERMOSTATS", "Protocol", "Sample", "sample"]

#: The thermostats a :class:`Protocol` can name.
THERMOSTATS = ("nose_hoover", "langevin", "nve")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Sampling settings: what :func:`sample` runs. Frozen; validated on construction.

    Attributes:
      temperature: target temperature (K); for ``"nve"`` it sets the initial
        velocities only.
      dt: time step (ps).
      production_steps: recorded steps after equilibration.
      record_every: steps between recorded frames; divides both lengths.
      equilibration_steps: steps run (not returned) before production.
      thermostat: ``"nose_hoover"`` (jax-md chain, time constant ``tau``),
        ``"langevin"`` (BAOAB, ``friction``) or ``"nve"`` (velocity Verlet).
      tau: Nose-Hoover time constant (ps).
      friction: Langevin friction (1/ps).
      equilibration_thermostat: the equilibration's thermostat; ``None``: the
        production's (one continuous run). A different one hands its final
        positions and momenta to the production thermostat (e.g. Langevin
        damps a start's transient, then deterministic Nose-Hoover dynamics).
      equilibration_friction: Langevin friction of the equilibration (1/ps);
        ``None``: ``friction``.
      skin: neighbor-list skin (nm); the list covers cutoff + skin. ``None``:
        no list, the energy sees all pairs (a few particles only).
      seed: PRNG seed of the initial velocities (and of Langevin noise).

    Raises:
      ValueError: naming the field, the value and what was expected.
    """

    temperature: float
    dt: float
    production_steps: int
    record_every: int
    equilibration_steps: int = 0
    thermostat: str = "nose_hoover"
    tau: float = 0.5
    friction: float = 1.0
    equilibration_thermostat: str | None = None
    equilibration_friction: float | None = None
    skin: float | None = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        def positive(name, unit):
            v = getattr(self, name)
            try:
                ok = math.isfinite(float(v)) and float(v) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"Protocol.{name} must be a positive number ({unit}), got {v!r}")
            object.__setattr__(self, name, float(v))

        def steps(name, minimum):
            v = getattr(self, name)
            if isinstance(v, bool) or not float(v).is_integer() or int(v) < minimum:
                raise ValueError(
                    f"Protocol.{name} must be an integer number of steps >= {minimum}, got {v!r}"
                )
            object.__setattr__(self, name, int(v))

        positive("temperature", "K")
        positive("dt", "ps")
        steps("record_every", 1)
        steps("production_steps", 1)
        steps("equilibration_steps", 0)
        for name in ("production_steps", "equilibration_steps"):
            if getattr(self, name) % self.record_every:
                raise ValueError(
                    f"Protocol.{name} ({getattr(self, name)}) must be a multiple of "
                    f"record_every ({self.record_every})"
                )
        for name in ("thermostat", "equilibration_thermostat"):
            v = getattr(self, name)
            if not (v in THERMOSTATS or (v is None and name != "thermostat")):
                raise ValueError(f"Protocol.{name} must be one of {THERMOSTATS}, got {v!r}")
        if self.equilibration_thermostat == self.thermostat:
            object.__setattr__(self, "equilibration_thermostat", None)
        positive("tau", "ps")
        positive("friction", "1/ps")
        if self.equilibration_friction is not None:
            positive("equilibration_friction", "1/ps")
        if self.skin is not None:
            if not (math.isfinite(float(self.skin)) and float(self.skin) >= 0):
                raise ValueError(f"Protocol.skin must be >= 0 (nm) or None, got {self.skin!r}")
            object.__setattr__(self, "skin", float(self.skin))
        steps("seed", 0)

    @property
    def kT(self) -> float:
        """Thermal energy (kJ/mol)."""
        return units.kB * self.temperature

    def replace(self, **changes: Any) -> Protocol:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_config(cls, section: Mapping | Any, **fixed: Any) -> Protocol:
        """Builds a protocol from a config section (e.g. ``config.dynamics``).

        The section's keys that name a field are used; its other keys belong
        to the stage and are ignored. ``fixed`` supplies fields the section does
        not hold (e.g. ``temperature`` from the top level); a field given in both
        is an error, so a config cannot silently disagree with the code.
        """
        return settings_from_config(cls, section, fixed)

    def to_dict(self) -> dict:
        """Plain JSON-ready fields (units as in the attributes)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        def thermo(name, friction):
            if name == "nose_hoover":
                return f"Nose-Hoover tau {self.tau:g} ps"
            if name == "langevin":
                return f"Langevin friction {friction:g}/ps"
            return "NVE"

        eq = ""
        if self.equilibration_steps and self.equilibration_thermostat is None:
            eq = f"{self.equilibration_steps} steps to equilibrate, then "
        elif self.equilibration_steps:
            how = thermo(self.equilibration_thermostat,
                         self.equilibration_friction or self.friction)  # fmt: skip
            eq = f"{self.equilibration_steps} steps {how}, then "
        return (
            f"{self.temperature:g} K, dt {self.dt:g} ps: {eq}{self.production_steps} steps "
            f"{thermo(self.thermostat, self.friction)}, a frame every {self.record_every}, "
            + ("all pairs" if self.skin is None else f"skin {self.skin:g} nm")
            + f", seed {self.seed}"
        )


class Sample(NamedTuple):
    """What :func:`sample` returns.

    Attributes:
      trajectory: the production frames (:class:`~cgjax.simulate.Trajectory`,
        or a :class:`~cgjax.simulate.DiffTrajectory` from a run with an adjoint).
      state: the final simulator state, or ``(R, V[, xi])`` of a differentiable
        run (pass the :class:`Sample` as ``start`` to continue from it).
      neighbor: the final neighbor list.
      simulator: the production :class:`~cgjax.simulate.Simulator` (None for a
        differentiable run).
      protocol: the :class:`Protocol` that made it.
      wall_s: ``{"equilibration": s, "production": s}``.
      steps_per_second: the production's throughput.
    """

    trajectory: Trajectory
    state: Any
    neighbor: Any
    simulator: Simulator
    protocol: Protocol
    wall_s: dict
    steps_per_second: float


_SIM_CACHE: dict = {}
_SIM_CACHE_SIZE = 32


def _simulator(energy_fn_of_params: Callable, system: System, p: Protocol, which: str):
    """The jax-md simulator of ``which`` thermostat, cached so runs share compilations.

    The energy takes the parameters as a traced keyword (``params=``): one
    compiled program serves every parameter value.
    """
    name = p.thermostat if which == "production" else (p.equilibration_thermostat or p.thermostat)
    friction = p.friction
    if which == "equilibration" and p.equilibration_friction is not None:
        friction = p.equilibration_friction
    key = (energy_fn_of_params, id(system), name, p.dt, p.kT, p.tau if name == "nose_hoover"
           else friction if name == "langevin" else None)  # fmt: skip
    hit = _SIM_CACHE.get(key)
    if hit is not None and hit[0] is system:
        return hit[1]

    def energy(R, *, params=None, neighbor=None, **kw):
        del kw
        return energy_fn_of_params(params)(R, neighbor=neighbor)

    if name == "nose_hoover":
        sim = nvt_nose_hoover(energy, system, dt=p.dt, kT=p.kT, tau=p.tau)
    elif name == "langevin":
        sim = nvt_langevin(energy, system, dt=p.dt, kT=p.kT, friction=friction)
    else:
        sim = nve(energy, system, dt=p.dt, kT=p.kT)
    if len(_SIM_CACHE) >= _SIM_CACHE_SIZE:
        _SIM_CACHE.pop(next(iter(_SIM_CACHE)))
    _SIM_CACHE[key] = (system, sim)  # the system is kept alive: its id stays unique
    return sim


def _phase_point(start: Sample, system: System) -> tuple[Any, Any, Any]:
    """``(R, V, xi)`` (nm, nm/ps, 1/ps or None) at the end of a sample of either kind."""
    state = start.state
    if hasattr(state, "position"):  # a jax-md state
        m = jnp.asarray(system.masses, state.momentum.dtype)[:, None]
        return state.position, state.momentum / m, None
    R, V, *xi = state
    return R, V, (xi[0] if xi else None)


def _momenta(V: Any, system: System) -> Any:
    return V * jnp.asarray(system.masses, V.dtype)[:, None]


def _sample_differentiable(model, params, start, p, adjoint, progress, log) -> Sample:
    from cgjax.simulate._differentiable import maxwell_boltzmann, simulate_differentiable

    system = system_of(model, "sample")
    wall = {}
    template = None
    if isinstance(start, Sample):
        R0, V0, xi0 = _phase_point(start, system)
        template = start.neighbor
    else:
        R0 = jnp.asarray(start)
        system.check_positions(R0, "start positions")
        V0, xi0 = maxwell_boltzmann(jax.random.key(p.seed), system, p.kT, R0.dtype), None
    if p.equilibration_steps:  # not differentiated: the production starts from its end
        eq_p = p.replace(
            equilibration_steps=0, production_steps=p.equilibration_steps,
            thermostat=p.equilibration_thermostat or p.thermostat,
            friction=p.equilibration_friction or p.friction,
        )  # fmt: skip
        eq = sample(model, jax.lax.stop_gradient(params), start, eq_p, progress=progress,
                    log=log)  # fmt: skip
        R0, V0, xi0 = jax.lax.stop_gradient(_phase_point(eq, system))
        wall["equilibration"] = eq.wall_s["production"]
        template = None if p.skin is None else eq.neighbor
    t0 = time.perf_counter()
    prod = p.replace(equilibration_steps=0)
    traj = simulate_differentiable(model, params, R0, V0, prod, adjoint, neighbor=template,
                                   xi0=0.0 if xi0 is None else xi0)  # fmt: skip
    wall["production"] = time.perf_counter() - t0
    last = (traj.positions[-1], traj.velocities[-1])
    if traj.thermostat is not None:
        last = (*last, traj.thermostat[-1])
    return Sample(traj, last, traj.neighbor, None, p, wall,
                  p.production_steps / max(wall["production"], 1e-9))  # fmt: skip


def sample(
    model: Any,
    params: Any,
    start: Any,
    protocol: Protocol,
    *,
    adjoint: Any = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> Sample:
    """Equilibrates, then produces, as ``protocol`` says; the one sampling path.

    Without an adjoint the run is jax-md's (Nose-Hoover chain, BAOAB Langevin
    or velocity Verlet) through :func:`~cgjax.simulate.run`. With one
    (:class:`~cgjax.simulate.Checkpoint`, :class:`~cgjax.simulate.Backsolve`,
    :class:`~cgjax.simulate.Truncated`) the equilibration still is (not
    differentiated), and the production is
    :func:`~cgjax.simulate.simulate_differentiable`: its frames are
    differentiable in ``params`` (``trajectory`` is then a
    :class:`~cgjax.simulate.DiffTrajectory`, ``state`` is ``(R, V[, xi])``).

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel` built on its
        :class:`~cgjax.simulate.System` (``energy_model(potential, system=...)``:
        box, masses in amu): ``energy_fn(params) -> E(R, *, neighbor=None)``
        (kJ/mol), ``neighbor_fn(skin=...)``, ``system``. A different
        parameterisation: ``model._replace(energy_fn=...)``.
      params: the parameters, passed to the energy as a traced argument.
      start: ``[N, 3]`` positions (nm; velocities drawn at the protocol's
        temperature from its seed), or a previous :class:`Sample` of either
        kind to continue from (its phase point and neighbor list).
      protocol: the :class:`Protocol`.
      adjoint: ``None`` or an adjoint object (above).
      progress: progress bars; log: messages of the runner.

    Returns:
      :class:`Sample`.

    Raises:
      SimulationError: a run blew up; its ``stage`` attribute says which
        (``"equilibration"`` or ``"production"``), ``trajectory`` holds the
        frames recorded before it.
    """
    p = protocol
    if not isinstance(p, Protocol):
        raise TypeError(f"protocol must be a simulate.Protocol, got {type(p).__name__}")
    if adjoint is not None:
        return _sample_differentiable(model, params, start, p, adjoint, progress, log)
    system = system_of(model, "sample")
    prod = _simulator(model.energy_fn, system, p, "production")
    eq = _simulator(model.energy_fn, system, p, "equilibration") if p.equilibration_steps else prod
    kw = {"params": params}
    neighbor_fn = None if p.skin is None else model.neighbor_fn(skin=p.skin)
    key = jax.random.key(p.seed)
    first = eq if p.equilibration_steps else prod
    if isinstance(start, Sample):
        state, neighbor = start.state, start.neighbor
        if first is not start.simulator:  # this thermostat from the sample's phase point
            R, V, _ = _phase_point(start, system)
            state = first.init_fn(key, R, neighbor=neighbor, momenta=_momenta(V, system), **kw)
    else:
        R0 = jnp.asarray(start)
        system.check_positions(R0, "start positions")
        neighbor = None if neighbor_fn is None else neighbor_fn.allocate(R0)
        state = first.init_fn(key, R0, neighbor=neighbor, **kw)
    common = dict(record_every=p.record_every, neighbor_fn=neighbor_fn,
                  monitor=Monitor(progress=progress, log=log), step_kwargs=kw)  # fmt: skip
    wall = {}
    stage = "equilibration"
    try:
        if p.equilibration_steps:
            t0 = time.perf_counter()
            out = run(eq, state, n_steps=p.equilibration_steps, neighbor=neighbor, **common)
            state, neighbor = out.state, out.neighbor
            wall[stage] = time.perf_counter() - t0
            if eq is not prod:  # the production thermostat from the equilibrated phase point
                state = prod.init_fn(key, state.position, neighbor=neighbor,
                                     momenta=state.momentum, **kw)  # fmt: skip
        stage = "production"
        t0 = time.perf_counter()
        out = run(prod, state, n_steps=p.production_steps, neighbor=neighbor,
                  step0=p.equilibration_steps, **common)  # fmt: skip
        wall[stage] = time.perf_counter() - t0
    except SimulationError as e:
        e.stage = stage
        raise
    return Sample(out.trajectory, out.state, out.neighbor, prod, p, wall, out.steps_per_second)
