"""The trajectory runner: chunks of jit-compiled steps, checked at every boundary.

A run is a sequence of chunks. Each chunk is one compiled ``lax.scan`` over
``chunk_steps`` steps that records a frame every ``record_every`` steps. At
each chunk boundary the host checks, before accepting the chunk:

- neighbor-list overflow: the list is reallocated (bigger) from the chunk's
  starting positions and the chunk is rerun, so no step is ever taken with
  missing pairs. A list that had overflowed before the run (the state was
  initialised with it, so its force misses pairs) is reallocated before the
  first chunk and the state's force recomputed with the new list;
- failure flags raised inside the scan (first bad step and reason): a
  non-finite position, a particle moving farther in one step than the
  neighbor-list skin allows (``skin / 2``), or a runaway temperature. The run
  stops with :class:`SimulationError` naming the step; the error carries the
  last good state and the frames recorded before the failing chunk.

Replicas (a leading axis on the state, from :func:`init_replicas`) run in one
vmapped scan with one neighbor list each.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import quantity
from tqdm.auto import tqdm

from cgjax import units
from cgjax._neighbor_list import NeighborListFn
from cgjax._validation import check_finite
from cgjax._xla import jit
from cgjax.simulate._integrators import Simulator

__all__ = ["Monitor", "RunResult", "SimulationError", "Trajectory", "init_replicas", "run"]

_REASONS = {
    1: "non-finite positions (NaN/inf)",
    2: "a particle moved farther in one step than the neighbor-list skin allows",
    3: "runaway temperature",
}


class SimulationError(RuntimeError):
    """A simulation stopped: says at which step and why.

    Attributes:
      step: the global index of the first bad step (counted from 1).
      reason: what went wrong.
      replica: the replica index, or None.
      last_good_state: the state at the start of the failing chunk.
      last_good_neighbor: its neighbor list.
      trajectory: the frames recorded before the failing chunk.
      stage: the stage of :func:`~cgjax.simulate.sample` it stopped in
        (``"equilibration"`` or ``"production"``), or None outside it.
    """

    def __init__(
        self,
        message,
        *,
        step,
        reason,
        replica=None,
        last_good_state=None,
        last_good_neighbor=None,
        trajectory=None,
    ):
        super().__init__(message)
        self.step = step
        self.reason = reason
        self.replica = replica
        self.last_good_state = last_good_state
        self.last_good_neighbor = last_good_neighbor
        self.trajectory = trajectory
        self.stage = None


class Trajectory(NamedTuple):
    """Recorded frames (host numpy arrays); replica runs have a leading ``[B]`` axis.

    Attributes:
      time: ``[F]`` simulated time of each frame (ps).
      positions: ``[..., F, N, 3]`` wrapped positions (nm).
      unwrapped: ``[..., F, N, 3]`` unwrapped positions (nm), for MSD.
      velocities: ``[..., F, N, 3]`` (nm/ps), or None (Brownian dynamics).
      potential_energy: ``[..., F]`` (kJ/mol).
      kinetic_energy: ``[..., F]`` (kJ/mol), or None.
      temperature: ``[..., F]`` instantaneous temperature (K) from ``3N - 3``
        degrees of freedom, or None.
    """

    time: np.ndarray
    positions: np.ndarray
    unwrapped: np.ndarray
    velocities: np.ndarray | None
    potential_energy: np.ndarray
    kinetic_energy: np.ndarray | None
    temperature: np.ndarray | None

    @property
    def n_frames(self) -> int:
        return int(self.time.shape[0])

    @property
    def total_energy(self) -> np.ndarray:
        """``[..., F]`` potential plus kinetic energy (kJ/mol)."""
        return self.potential_energy + self.kinetic_energy


class RunResult(NamedTuple):
    """What :func:`run` returns.

    Attributes:
      state: the final jax-md state.
      neighbor: the final neighbor list (or None).
      trajectory: the recorded :class:`Trajectory`.
      unwrapped: the final unwrapped positions (nm), to continue a run.
      reallocations: ``[(step, old_capacity, new_capacity), ...]``.
      steps_per_second: measured throughput (compile time excluded where possible).
    """

    state: Any
    neighbor: Any
    trajectory: Trajectory
    unwrapped: Any
    reallocations: list
    steps_per_second: float


_CHUNK_CACHE: dict = {}
_CHUNK_CACHE_SIZE = 32
_MAX_REALLOCATIONS = 8  # per chunk; each grows the capacity by at least 25 %


def _chunk_fn(
    sim: Simulator,
    neighbor_fn,
    *,
    record_every: int,
    n_records: int,
    max_move: float,
    max_T: float,
    batched: bool,
    kw_names: tuple = (),
) -> Callable:
    # The key holds the functions themselves (not ids), so a cached chunk can
    # never be served to a different simulator or neighbor list.
    key = (
        sim.step_fn,
        sim.energy_fn,
        neighbor_fn,
        record_every,
        n_records,
        max_move,
        max_T,
        batched,
        kw_names,
    )
    if key in _CHUNK_CACHE:
        return _CHUNK_CACHE[key]
    if len(_CHUNK_CACHE) >= _CHUNK_CACHE_SIZE:
        _CHUNK_CACHE.pop(next(iter(_CHUNK_CACHE)))
    disp = jax.vmap(sim.system.displacement_fn)
    n = sim.system.n_particles
    dof = 3 * n - 3

    def observe(state, nbrs, kw):
        pe = sim.energy_fn(state.position, neighbor=nbrs, **kw)
        if not sim.has_momentum:
            return pe, None, None, None
        ke = 0.5 * jnp.sum(state.momentum**2 / state.mass)
        return pe, ke, 2.0 * ke / (dof * units.kB), state.momentum / state.mass

    def one_step(carry, nbrs, kw):
        state, unwrapped, step, bad = carry
        R_old = state.position
        state = sim.step_fn(state, neighbor=nbrs, **kw)
        dR = disp(state.position, R_old)
        unwrapped = unwrapped + dR
        step = step + 1
        code = jnp.where(~jnp.all(jnp.isfinite(state.position)), 1, 0)
        code = jnp.where((code == 0) & (jnp.max(jnp.sum(dR * dR, -1)) > max_move**2), 2, code)
        if sim.has_momentum:
            T = jnp.sum(state.momentum**2 / state.mass) / (dof * units.kB)
            code = jnp.where((code == 0) & ~(T < max_T), 3, code)
        bad = jnp.where((bad[0] == 0) & (code > 0), jnp.stack([code, step]), bad)
        return state, unwrapped, step, bad

    def advance(carry, nbrs, n_steps, kw):
        """``n_steps`` steps; the list is rebuilt once a particle moved ``skin / 2``.

        Steps run in an inner loop over which the list is constant, and the
        rebuild check comes between inner loops: updating the list in every
        step (a ``lax.cond`` whose output is the list) made XLA copy it each
        step (LJ argon, 864 atoms: 0.46 -> 0.39 ms per step, same trajectory).
        """
        if nbrs is None:
            return jax.lax.fori_loop(0, n_steps, lambda _, c: one_step(c, None, kw), carry), None

        def outer(c):
            carry, k, nbrs = c
            carry, k = one_step(carry, nbrs, kw), k + 1  # at least one step per list

            def more(ic):
                return (ic[1] < n_steps) & ~neighbor_fn.needs_rebuild(ic[0][0].position, nbrs)

            carry, k = jax.lax.while_loop(
                more, lambda ic: (one_step(ic[0], nbrs, kw), ic[1] + 1), (carry, k)
            )
            R = carry[0].position
            nbrs = jax.lax.cond(
                neighbor_fn.needs_rebuild(R, nbrs),
                lambda: neighbor_fn.rebuild(R, nbrs),
                lambda: nbrs,
            )
            return carry, k, nbrs

        carry, _, nbrs = jax.lax.while_loop(lambda c: c[1] < n_steps, outer, (carry, 0, nbrs))
        return carry, nbrs

    def chunk(state, nbrs, unwrapped, step0, kw):
        def record(c, _):
            carry, nbrs = c
            carry, nbrs = advance(carry, nbrs, record_every, kw)
            state, unwrapped = carry[0], carry[1]
            pe, ke, T, v = observe(state, nbrs, kw)
            return (carry, nbrs), (state.position, unwrapped, v, pe, ke, T)

        bad = jnp.zeros(2, jnp.int32)
        (carry, nbrs), frames = jax.lax.scan(
            record, ((state, unwrapped, step0, bad), nbrs), None, length=n_records
        )
        state, unwrapped, step, bad = carry
        return (state, nbrs, unwrapped, step, bad), frames

    fn = jit(jax.vmap(chunk, in_axes=(0, 0, 0, None, None)) if batched else chunk)
    _CHUNK_CACHE[key] = fn
    return fn


def init_replicas(sim: Simulator, key: jax.Array, R: Any, *, neighbor_fn=None):
    """Initial states (and neighbor lists) of ``B`` replicas, stacked on axis 0.

    Args:
      key: PRNG key, split per replica (velocities differ).
      R: ``[B, N, 3]`` positions (nm); tile one configuration for identical starts.
      neighbor_fn: optional :class:`~cgjax.NeighborListFn`.

    Returns:
      ``(states, neighbors)`` with a leading ``[B]`` axis.
    """
    R = jnp.asarray(R)
    if R.ndim != 3:
        raise ValueError(
            f"init_replicas needs positions [B, N, 3] (nm), got shape {R.shape}; "
            "tile them for identical starts"
        )
    keys = jax.random.split(key, R.shape[0])
    # one capacity for all replicas: the largest any of them needs
    nbrs = None if neighbor_fn is None else neighbor_fn.allocate(R)
    init = lambda k, r, nb: sim.init_fn(k, r, neighbor=nb)
    states = jax.vmap(init, in_axes=(0, 0, 0 if nbrs is not None else None))(keys, R, nbrs)
    return states, nbrs


@dataclasses.dataclass(frozen=True)
class Monitor:
    """What the host does between :func:`run`'s compiled chunks. Frozen; validated.

    Every ``chunk_steps`` steps the host checks the chunk (NaN, a particle
    moving too far in one step, runaway temperature, neighbor-list overflow),
    updates the progress bar and logs reallocations.

    Attributes:
      chunk_steps: steps per compiled chunk; a multiple of ``record_every``;
        ``None``: about 1000.
      max_temperature_factor: stop when the instantaneous temperature exceeds
        this multiple of the target ``kT / kB`` [-].
      max_step_displacement: stop when a particle moves farther in one step
        (nm); ``None``: ``skin / 2`` of the neighbor list, else no limit.
      progress: show a progress bar; ``None``: when the run has > 5 chunks.
      log: called with a line on each neighbor-list reallocation.

    Raises:
      ValueError: naming the field and the value.
    """

    chunk_steps: int | None = None
    max_temperature_factor: float = 5.0
    max_step_displacement: float | None = None
    progress: bool | None = None
    log: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        c = self.chunk_steps
        if c is not None:
            if isinstance(c, bool) or not float(c).is_integer() or int(c) < 1:
                raise ValueError(
                    f"Monitor.chunk_steps must be a positive integer or None, got {c!r}"
                )
            object.__setattr__(self, "chunk_steps", int(c))
        if not float(self.max_temperature_factor) > 0:
            raise ValueError(
                f"Monitor.max_temperature_factor must be > 0, got {self.max_temperature_factor!r}"
            )
        d = self.max_step_displacement
        if d is not None and not float(d) > 0:
            raise ValueError(f"Monitor.max_step_displacement must be > 0 (nm) or None, got {d!r}")
        if self.log is not None and not callable(self.log):
            raise ValueError(f"Monitor.log must be callable or None, got {self.log!r}")

    def replace(self, **changes: Any) -> Monitor:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)


def _overflow_error(retries, old, state, neighbor, frames, sim, step0, done, length, re, batched):
    return SimulationError(
        f"the neighbor list overflowed {retries} times in steps {step0 + done + 1}"
        f"..{step0 + done + length} (capacity now {old}): particles are "
        "collapsing or the cell list cannot hold them",
        step=step0 + done,
        reason="neighbor-list overflow",
        last_good_state=state,
        last_good_neighbor=neighbor,
        trajectory=_assemble(frames, sim, step0, re, batched),
    )


def _failure_error(bad, state, neighbor, frames, sim, step0, done, re, batched):
    rep = int(np.argmax(bad[:, 0] > 0))
    code, step = int(bad[rep, 0]), int(bad[rep, 1])
    reason = _REASONS[code]
    where = f" (replica {rep})" if batched else ""
    return SimulationError(
        f"{sim.name} simulation stopped at step {step}{where}, t = "
        f"{step * sim.dt:.4g} ps: {reason}. The last good state is from step "
        f"{step0 + done}; try a smaller dt (now {sim.dt} ps) or check the potential.",
        step=step,
        reason=reason,
        replica=rep if batched else None,
        last_good_state=state,
        last_good_neighbor=neighbor,
        trajectory=_assemble(frames, sim, step0, re, batched),
    )


def _refresh_initial_list(sim, state, neighbor_fn, neighbor, step_kwargs, batched, step0, log):
    """``(state, neighbor, reallocations)``: a list that overflowed before the run
    (``did_buffer_overflow`` is sticky) reallocated at the state's positions, and
    the state's force recomputed with it.

    A state initialised with an overflowed list carries the force of the pairs
    the list held; rerunning from it with a bigger list would still take the
    first step with that truncated force (a 108-atom LJ run drifted from the
    all-pairs run by 7e-4 nm in 30 frames). The force is computed as jax-md's
    ``init_fn`` does (eagerly, the same force function), so the run equals one
    whose state was initialised with the reallocated list, bit for bit.
    """
    if neighbor is None or not bool(jnp.any(neighbor.did_buffer_overflow)):
        return state, neighbor, []
    reallocations = []
    for _ in range(_MAX_REALLOCATIONS):
        old = neighbor.idx.shape[-1]
        neighbor = neighbor_fn.allocate(state.position, at_least=neighbor)
        reallocations.append((step0, int(old), int(neighbor.idx.shape[-1])))
        if not bool(jnp.any(neighbor.did_buffer_overflow)):
            break
    else:
        raise SimulationError(
            f"the neighbor list given to run had overflowed and still overflows after "
            f"{_MAX_REALLOCATIONS} reallocations at the starting positions (capacity now "
            f"{neighbor.idx.shape[-1]}): particles are collapsing or the cell list cannot "
            "hold them",
            step=step0,
            reason="neighbor-list overflow",
            last_good_state=state,
            last_good_neighbor=neighbor,
        )
    if hasattr(state, "force"):  # Brownian states carry none
        kw = {k: v for k, v in step_kwargs.items() if k != "kT"}  # the thermostats' own keyword
        force_fn = quantity.canonicalize_force(sim.energy_fn)
        one = lambda R, nbrs: force_fn(R, neighbor=nbrs, **kw)  # noqa: E731
        state = state.set(force=(jax.vmap(one) if batched else one)(state.position, neighbor))
    log(
        f"the neighbor list given at step {step0} had overflowed (the state's force missed "
        f"pairs): capacity {reallocations[0][1]} -> {neighbor.idx.shape[-1]}, force recomputed"
    )
    return state, neighbor, reallocations


def _limits(monitor: Monitor, sim: Simulator, neighbor_fn, record_every: int):
    """``(chunk_steps, max_move (nm), max_T (K))`` of a run."""
    chunk_steps = monitor.chunk_steps
    if chunk_steps is None:
        chunk_steps = max(record_every, (1000 // record_every) * record_every)
    if chunk_steps % record_every:
        raise ValueError(f"chunk_steps ({chunk_steps}) must be a multiple of record_every")
    max_move = monitor.max_step_displacement
    if max_move is None:
        # without a neighbor list no pair can be missed, so only NaN/T stop a run
        max_move = 0.5 * neighbor_fn.skin if neighbor_fn is not None else np.inf
    max_T = monitor.max_temperature_factor * sim.kT / units.kB
    return chunk_steps, float(max_move), float(max_T)


def run(
    sim: Simulator,
    state: Any,
    *,
    n_steps: int,
    record_every: int = 100,
    neighbor_fn: NeighborListFn | None = None,
    neighbor: Any = None,
    unwrapped: Any = None,
    step0: int = 0,
    step_kwargs: dict | None = None,
    monitor: Monitor = Monitor(),
) -> RunResult:
    """Runs ``n_steps`` steps, recording a frame every ``record_every`` steps.

    Args:
      sim: the :class:`Simulator`.
      state: its state (from ``sim.init_fn`` or a previous run); a leading
        replica axis (from :func:`init_replicas`) runs the replicas vmapped.
        When ``neighbor`` had overflowed (the state's force then misses
        pairs), the list is reallocated and the force recomputed first.
      n_steps: number of steps; a multiple of ``record_every``.
      record_every: steps between recorded frames.
      neighbor_fn: the :class:`~cgjax.NeighborListFn`; required with ``neighbor``.
      neighbor: the current neighbor list (``None``: the energy uses all pairs).
      unwrapped: unwrapped positions (nm) to continue from (default: the state's).
      step0: global index of the first step (for messages and ``time``, ps).
      step_kwargs: keyword arrays passed to every ``sim.step_fn`` call and so
        to the energy (e.g. ``{"params": params}`` for an energy
        ``E(R, *, params, neighbor)``). They are traced, not baked into the
        compiled chunk, so changing them (relative entropy iterations, the
        amplitude bisection) reuses one compilation. Shared by all replicas.
      monitor: a :class:`Monitor`: chunk length, stop criteria, progress bar, log.

    Returns:
      :class:`RunResult`.

    Raises:
      SimulationError: on NaN, an oversized step or runaway temperature.
      ValueError: on bad arguments or non-finite starting positions.
      TypeError: ``monitor`` is not a :class:`Monitor`.
    """
    if n_steps <= 0 or record_every <= 0 or n_steps % record_every:
        raise ValueError(
            f"n_steps ({n_steps}) must be a positive multiple of record_every ({record_every})"
        )
    if (neighbor is None) != (neighbor_fn is None):
        raise ValueError("pass both neighbor_fn and neighbor, or neither")
    if not isinstance(monitor, Monitor):
        raise TypeError(f"monitor must be a simulate.Monitor, got {type(monitor).__name__}")
    batched = state.position.ndim == 3
    check_finite(state.position, "state.position")
    chunk_steps, max_move, max_T = _limits(monitor, sim, neighbor_fn, record_every)
    if unwrapped is None:
        unwrapped = state.position
    log = monitor.log or (lambda msg: None)
    step_kwargs = dict(step_kwargs or {})
    kw_names = tuple(sorted(step_kwargs))

    state, neighbor, reallocations = _refresh_initial_list(
        sim, state, neighbor_fn, neighbor, step_kwargs, batched, step0, log
    )
    frames: list = []
    done = 0
    n_chunks = math.ceil(n_steps / chunk_steps)
    show = monitor.progress if monitor.progress is not None else n_chunks > 5
    bar = tqdm(total=n_steps, disable=not show, unit="step", desc=sim.name, leave=False)
    t_run, steps_timed, retries = 0.0, 0, 0
    try:
        while done < n_steps:
            length = min(chunk_steps, n_steps - done)
            fn = _chunk_fn(sim, neighbor_fn, record_every=record_every,
                           n_records=length // record_every, max_move=max_move, max_T=max_T,
                           batched=batched, kw_names=kw_names)  # fmt: skip
            t0 = time.perf_counter()
            (new_state, new_nbrs, new_unwrapped, _, bad), out = fn(
                state, neighbor, unwrapped, jnp.asarray(step0 + done, jnp.int32), step_kwargs
            )
            bad = np.asarray(bad).reshape(-1, 2)
            overflow = neighbor is not None and bool(jnp.any(new_nbrs.did_buffer_overflow))
            # An exploding run also overflows its list; once the list has grown
            # for this chunk, a failure that comes back is the run's own.
            if overflow and not (retries and np.any(bad[:, 0] > 0)):
                old = neighbor.idx.shape[-1]
                retries += 1
                if retries > _MAX_REALLOCATIONS:
                    raise _overflow_error(retries, old, state, neighbor, frames, sim, step0,
                                          done, length, record_every, batched)  # fmt: skip
                neighbor = neighbor_fn.allocate(state.position, at_least=neighbor)
                reallocations.append((step0 + done, int(old), int(neighbor.idx.shape[-1])))
                log(
                    f"neighbor list overflowed in steps {step0 + done + 1}..{step0 + done + length}"
                    f": capacity {old} -> {neighbor.idx.shape[-1]}, chunk rerun"
                )
                continue
            if np.any(bad[:, 0] > 0):
                raise _failure_error(bad, state, neighbor, frames, sim, step0, done,
                                     record_every, batched)  # fmt: skip
            jax.block_until_ready(new_state.position)
            elapsed = time.perf_counter() - t0
            if done > 0:  # the first chunk includes compilation
                t_run += elapsed
                steps_timed += length
            frames.append(jax.device_get(out))
            retries = 0
            state, neighbor, unwrapped = new_state, new_nbrs, new_unwrapped
            done += length
            bar.update(length)
            if steps_timed:
                sps = steps_timed / t_run
                bar.set_postfix(ps=f"{done * sim.dt:.1f}", ns_day=f"{sps * sim.dt * 86400e-3:.2f}")
    finally:
        bar.close()
    sps = steps_timed / t_run if steps_timed else float("nan")
    traj = _assemble(frames, sim, step0, record_every, batched)
    return RunResult(state, neighbor, traj, unwrapped, reallocations, sps)


def _assemble(frames, sim, step0, record_every, batched) -> Trajectory:
    axis = 1 if batched else 0
    if not frames:
        empty = np.zeros((0,))
        return Trajectory(empty, empty, empty, None, empty, None, None)
    cat = lambda i: (
        None
        if frames[0][i] is None
        else np.concatenate([np.asarray(f[i]) for f in frames], axis=axis)
    )
    pos, unw, vel, pe, ke, T = (cat(i) for i in range(6))
    n_frames = pos.shape[axis]
    t = (step0 + record_every * (1 + np.arange(n_frames))) * sim.dt
    return Trajectory(t, pos, unw, vel, pe, ke, T)
