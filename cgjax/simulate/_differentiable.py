"""Differentiable molecular dynamics through diffrax (NVE and Nose-Hoover).

The integrators are diffrax solvers over the state ``y = (R, V)`` (NVE) or
``y = (R, V, xi)`` (Nose-Hoover), so gradients of any function of the
recorded frames with respect to the potential's parameters come from
diffrax's adjoints. The solver's time variable counts *steps* (one diffrax
step of length 1 is one MD step of ``dt`` ps), which keeps the step count
exact for the checkpointed adjoint.

A trajectory is a Python loop over segments of ``segment_steps`` steps; each
segment is one compiled function: it builds the neighbor list afresh from its
wrapped start positions (no gradient flows through the list: only its integer
pairs reach the energy), then runs one ``diffeqsolve`` with it, starting from
the acceleration the previous segment ended with (diffrax's solver state, so
a segment boundary costs no extra force evaluation). Between segments, on
concrete values, the host reallocates an overflowed list and reruns the
segment (no pair is dropped), and stops with
:class:`~cgjax.simulate.SimulationError` on non-finite positions or on a
particle that moved farther than ``skin / 2`` inside one segment (the list,
built at the segment's start, would then miss pairs); the segment reports both
as two numbers, so no frame crosses to the host. The state at a segment's end
is the next segment's start, so gradients flow through all segments (except
with the :class:`Truncated` adjoint). Because each list is a function of its
segment's start, ``jax.checkpoint`` of a segment (``Checkpoint(remat=True)``,
and always for :class:`Backsolve`) keeps neither its steps nor its list for
the backward pass: only its start state. The segments' frames are joined
pairwise as they arrive (:class:`_FrameStack`), so the compiled programs do not
depend on the trajectory's length either. With ``observe`` (a sum over frames,
e.g. an RDF histogram, evaluated inside each segment) no frame is kept at all;
with it and ``Checkpoint(remat=True)`` or :class:`Backsolve` the whole run is
one ``jax.custom_vjp`` (:func:`_streamed_group_checkpoints`) that keeps the
start of every ``g``-th segment only and reruns each group in the backward
pass, so neither start states nor JAX's records of linearised segment calls
accumulate per segment, and peak memory is flat in the trajectory's length
(benchmarks/README.md, "Gradient of an RDF loss through MD", run E).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from cgjax._space import wrap, wrap_traced
from cgjax._system import System, system_of
from cgjax._types import Params
from cgjax._xla import jit
from cgjax.simulate._protocol import Protocol
from cgjax.simulate._runner import SimulationError

__all__ = [
    "Adjoint",
    "Backsolve",
    "Checkpoint",
    "DiffTrajectory",
    "TrajectorySpec",
    "Truncated",
    "maxwell_boltzmann",
    "simulate_differentiable",
]


class DiffTrajectory(NamedTuple):
    """Frames of a differentiable trajectory (frames at ``record_every, 2 record_every, ...``).

    Attributes:
      time: ``[F]`` simulated time of each frame (ps), host numpy.
      positions: ``[F, N, 3]`` *unwrapped* positions (nm); differentiable.
      velocities: ``[F, N, 3]`` velocities (nm/ps); differentiable.
      thermostat: ``[F]`` Nose-Hoover friction ``xi`` (1/ps), or None for NVE.
      neighbor: the last segment's neighbor list (built at its start), or None; pass
        it as ``neighbor=`` to the next run to reuse its capacity (and compiles).
      reallocations: ``[(step, old_capacity, new_capacity), ...]``.
      observed: with ``observe=`` (see :func:`simulate_differentiable`), the sum
        of ``observe`` over all segments (differentiable); the frame fields then
        hold the last frame only (``F = 1``). None otherwise.
    """

    time: np.ndarray
    positions: Float[Array, "F N 3"]
    velocities: Float[Array, "F N 3"]
    thermostat: Float[Array, " F"] | None
    neighbor: Any
    reallocations: list
    observed: Any = None


class _Verlet(diffrax.AbstractSolver):
    """Velocity Verlet, optionally with a symmetric Nose-Hoover (one variable) splitting.

    Time is counted in steps: a diffrax step ``[t0, t1]`` advances ``(t1 - t0) dt`` ps.
    The acceleration at the end of a step is carried to the next (first same as
    last), so each step costs one force evaluation; a segment passes its last
    one to the next as diffrax's ``solver_state``.
    """

    accel_fn: Callable = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    kT: float | None = eqx.field(static=True, default=None)
    Q: float | None = eqx.field(static=True, default=None)
    dof: int = eqx.field(static=True, default=0)
    masses: Any = None

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return self.accel_fn(y0[0], args)

    def _xi_rate(self, V):
        return (jnp.sum(self.masses * V * V) - self.dof * self.kT) / self.Q

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        h = terms.contr(t0, t1) * self.dt
        a0 = solver_state
        if self.Q is None:
            R, V = y0
        else:
            R, V, xi = y0
            xi = xi + 0.5 * h * self._xi_rate(V)
            V = V * jnp.exp(-0.5 * h * xi)
        V = V + 0.5 * h * a0
        R = R + h * V
        a1 = self.accel_fn(R, args)
        V = V + 0.5 * h * a1
        if self.Q is None:
            y1 = (R, V)
        else:
            V = V * jnp.exp(-0.5 * h * xi)
            xi = xi + 0.5 * h * self._xi_rate(V)
            y1 = (R, V, xi)
        return y1, None, dict(y0=y0, y1=y1), a1, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


def _concrete(x: Any) -> np.ndarray | None:
    """The value of ``x`` on the host, or None inside ``jit`` (no value to check)."""
    try:
        return np.asarray(jax.lax.stop_gradient(x))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


_SEGMENT_CACHE: dict = {}
_SEGMENT_CACHE_SIZE = 32


def _every_step(n_steps: int) -> diffrax.RecursiveCheckpointAdjoint:
    """diffrax's checkpointed adjoint with a checkpoint at every step of a segment.

    A segment is short (tens of steps) and its state small (``R``, ``V``, the
    acceleration: ~25 kB for 512 beads per step), so keeping every step costs
    little memory and spares the recomputation of diffrax's default
    ``O(sqrt(steps))`` checkpoints (5 for 20 steps: each step run ~2 more
    times in the backward pass).
    """
    return diffrax.RecursiveCheckpointAdjoint(checkpoints=max(1, int(n_steps)))


@jax.jit
def _concat_pair(a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(lambda x, y: jnp.concatenate([x, y]), a, b)


class _FrameStack:
    """Frames of consecutive segments, joined as they arrive like a binary counter.

    Two pieces of equally many segments merge into one, so ``k`` segments cost
    ``O(log k)`` compiled two-piece concatenations (and their transposes in the
    backward pass). One ``jnp.concatenate`` of ``k`` pieces compiled a program
    (and a transpose of ``k`` slices) per trajectory length: 400 pieces took 4 s
    and 0.57 GB of compiler memory, the memory that grew with trajectory length.
    """

    def __init__(self) -> None:
        self._pieces: list = []  # [(segments, frames)], fewer segments to the right

    def push(self, frames: Any) -> None:
        count = 1
        while self._pieces and self._pieces[-1][0] == count:
            c, prev = self._pieces.pop()
            frames, count = _concat_pair(prev, frames), count + c
        self._pieces.append((count, frames))

    def result(self) -> Any:
        out = self._pieces[-1][1]
        for _, piece in reversed(self._pieces[:-1]):
            out = _concat_pair(piece, out)
        return out


class _Frames(NamedTuple):
    """The frames of one segment handed to ``observe``: ``[F, N, 3]`` positions (nm,
    unwrapped), velocities (nm/ps), ``[F]`` Nose-Hoover friction (1/ps) or None, and
    ``[F]`` int32 ``index``: each frame's number in the whole trajectory (0 first)."""

    positions: Any
    velocities: Any
    thermostat: Any
    index: Any


def _segment_fn(
    key: tuple,
    energy_fn_of_params: Callable,
    masses: np.ndarray,
    neighbor_fn: Any,
    box: Any,
    observe: Any = None,
) -> Callable:
    """A compiled segment for one setting.

    ``segment(params, y0, a0, fresh, template, frame0) -> (out, y1, a1, check, neighbor)``:

    - ``a0`` is the acceleration at ``y0`` carried from the previous segment's
      last step (first same as last across segments: no force evaluation is
      repeated at a segment boundary); ``fresh`` (a traced bool) recomputes it
      instead, for the first segment (one compiled program serves both);
    - ``out`` is the segment's frames, or with ``observe`` the observation of
      them (the frames then are not kept);
    - ``y1``, ``a1`` the end state and its acceleration;
    - ``check`` ``[2]``: the number of the first recorded frame with a
      non-finite position (or -1) and the largest distance a particle moved
      from ``y0`` (nm), so the host checks two numbers, not the frames.

    With a ``neighbor_fn``, the segment builds its neighbor list afresh from
    its own (``stop_gradient``-ed, wrapped) start positions with ``template``'s
    capacity, so the list is a function of the segment's inputs: ``jax.checkpoint``
    then keeps only those for the backward pass, not one list per segment.
    """
    if key in _SEGMENT_CACHE:
        return _SEGMENT_CACHE[key]
    if len(_SEGMENT_CACHE) >= _SEGMENT_CACHE_SIZE:
        _SEGMENT_CACHE.pop(next(iter(_SEGMENT_CACHE)))
    (_, _, _, dt, ensemble, kT, tau, adjoint, window, n_steps, record_every) = key[:11]
    remat = key[-1]
    n_particles = masses.shape[0]
    dof = 3 * n_particles - 3

    def accel_fn(R, args):
        params, neighbor = args
        m = jnp.asarray(masses, R.dtype)[:, None]
        energy = energy_fn_of_params(params)
        return -jax.grad(lambda r: energy(r, neighbor=neighbor))(R) / m

    nose_hoover = ensemble == "nose_hoover"
    Q = dof * kT * tau**2 if nose_hoover else None

    def vector_field(s, y, args):  # d y / d(step); used by the backsolve adjoint
        del s
        a = accel_fn(y[0], args)
        if not nose_hoover:
            return (dt * y[1], dt * a)
        R, V, xi = y
        m = jnp.asarray(masses, R.dtype)[:, None]
        rate = (jnp.sum(m * V * V) - dof * kT) / Q
        return (dt * V, dt * (a - xi * V), dt * rate)

    def solve(args, y0, a0, s0, s1, adjoint_obj):
        """Frames at ``s0 + record_every, ..., s1`` and the acceleration at ``s1``
        (``a0``: the one at ``s0``; None: computed by the solver's ``init``)."""
        m = jnp.asarray(masses, y0[0].dtype)[:, None]
        solver = _Verlet(accel_fn, dt, kT if nose_hoover else None, Q, dof, m)
        ts = jnp.arange(s0 + record_every, s1 + 1, record_every).astype(y0[0].dtype)
        backsolve = isinstance(adjoint_obj, diffrax.BacksolveAdjoint)
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            solver,
            t0=float(s0),
            t1=float(s1),
            dt0=1.0,
            y0=y0,
            args=args,
            saveat=diffrax.SaveAt(ts=ts, solver_state=not backsolve),
            stepsize_controller=diffrax.ConstantStepSize(),
            adjoint=adjoint_obj,
            max_steps=s1 - s0,
            solver_state=a0,
        )
        return sol.ys, (jnp.zeros_like(y0[0]) if backsolve else sol.solver_state)

    # Only the checkpointed adjoint carries the acceleration into a segment.
    # Backsolve: diffrax treats a passed solver state as a constant. Truncated:
    # the acceleration at the window's start must stay a function of the
    # parameters (as it is when recomputed there).
    carry = adjoint == "checkpoint"

    def frames(args, y0, a0):
        if adjoint == "checkpoint":
            return solve(args, y0, a0, 0, n_steps, _every_step(n_steps))
        if adjoint == "backsolve":
            # The backward pass integrates the augmented (adjoint) ODE, which is
            # not a separable Hamiltonian system, with a generic fixed-step solver.
            back = diffrax.BacksolveAdjoint(solver=diffrax.Tsit5())
            return solve(args, y0, None, 0, n_steps, back)
        # truncated: no gradient before the last `window` steps of the segment
        free = n_steps - window
        ckpt = _every_step(n_steps)
        if free == 0:
            return solve(args, jax.lax.stop_gradient(y0), None, 0, n_steps, ckpt)
        nograd = jax.lax.stop_gradient((args, y0))
        early, _ = jax.lax.stop_gradient(solve(*nograd, None, 0, free, ckpt))
        mid = jax.tree_util.tree_map(lambda x: x[-1], early)
        late, a1 = solve(args, mid, None, free, n_steps, ckpt)
        return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), early, late), a1

    def segment(params, y0, a0, fresh, template, frame0):
        neighbor = None
        if neighbor_fn is not None:
            # Built inside the segment from y0, so under jax.checkpoint the list is
            # rebuilt in the backward pass rather than kept. No gradient flows
            # through it (only its integer pairs reach the energy).
            neighbor = neighbor_fn.rebuild(wrap_traced(y0[0], box), template)
            neighbor = neighbor.replace(
                reference_position=jax.lax.stop_gradient(neighbor.reference_position)
            )
        args = (params, neighbor)
        if carry:  # the previous segment's last acceleration, or a fresh one
            a0 = jax.lax.cond(fresh, lambda: accel_fn(y0[0], args), lambda: a0)
        ys, a1 = frames(args, y0, a0 if carry else None)
        y1 = jax.tree_util.tree_map(lambda x: x[-1], ys)
        R = jax.lax.stop_gradient(ys[0])
        finite = jnp.all(jnp.isfinite(R), axis=(1, 2))
        first_bad = jnp.where(finite.all(), -1, jnp.argmin(finite))
        moved = jnp.sqrt(jnp.max(jnp.sum((R - jax.lax.stop_gradient(y0[0])[None]) ** 2, -1)))
        check = jnp.stack([first_bad.astype(R.dtype), moved])
        out = ys
        if observe is not None:
            index = frame0 + jnp.arange(R.shape[0], dtype=jnp.int32)
            out = observe(_Frames(ys[0], ys[1], ys[2] if nose_hoover else None, index))
        nb = None if neighbor is None else jax.lax.stop_gradient(neighbor)
        return out, y1, a1, check, nb

    # One jitted (and, with remat, checkpointed) function per setting, reused by
    # every segment: a fresh jax.checkpoint wrapper per segment was traced anew
    # each time (half of the per-segment peak-memory growth, measured).
    fn = jit(jax.checkpoint(segment) if remat else segment)
    _SEGMENT_CACHE[key] = fn
    return fn


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The exact gradient of the discrete trajectory (diffrax ``RecursiveCheckpointAdjoint``).

    Attributes:
      segment_steps: steps per compiled segment (a multiple of
        ``record_every``; ``None``: the whole run); a segment keeps its
        neighbor list fixed, so no particle may move ``skin / 2`` within one.
      remat: keep only segment starting states for the backward pass and
        recompute the segments there (``jax.checkpoint``) at the cost of one
        more forward pass per segment. With a streamed ``observe`` (e.g. the
        RDF loss) the run keeps only every ``g``-th start (``g = ceil(segments
        / 64)``, one more forward pass above 64 segments), so memory is flat
        in the run's length (benchmarks/README.md, run E; one ``jax.checkpoint``
        per segment, run D, grew 4 % to 10k steps and 11 % to 100k; without
        remat 1.96 GB at 1k steps and 9.69 GB at 10k). Off by default: with it on by
        default, the full test suite once hit a segfault inside XLA's compiler
        (not reproduced in isolation).
    """

    segment_steps: int | None = None
    remat: bool = False


@dataclasses.dataclass(frozen=True)
class Backsolve:
    """The continuous adjoint solved backwards in time (diffrax ``BacksolveAdjoint``, Tsit5).

    Memory nearly flat in length (segments are always ``jax.checkpoint``-ed, so
    no segment keeps its steps or its neighbor list; 512 beads, RDF loss: 1.15
    GB at 1k steps, 1.26 GB at 10k, benchmarks/README.md). It is the gradient
    of the continuous trajectory, so it differs from the discrete one by
    Verlet's O(dt^2) error (about 1e-4 relative over 100 steps), and since it
    re-integrates the trajectory backwards its error grows with length in a
    chaotic system (2e-4 at 50 steps, 4e-2 at 1000 in float32).

    Attributes:
      segment_steps: as in :class:`Checkpoint`.
    """

    segment_steps: int | None = None


@dataclasses.dataclass(frozen=True)
class Truncated:
    """Exact gradients through only the last ``window`` steps of each segment.

    The state before is ``stop_gradient``-ed (as mdgrad does for long runs).

    Attributes:
      window: steps differentiated at the end of each segment, a multiple of
        ``record_every``; ``None``: the whole segment (gradients are then cut
        at segment boundaries only).
      segment_steps: as in :class:`Checkpoint`.
    """

    window: int | None = None
    segment_steps: int | None = None


Adjoint = Checkpoint | Backsolve | Truncated


def _settings(protocol: Protocol, adjoint: Any) -> tuple:
    """``(dt, n_steps, record_every, ensemble, kT, tau, method, segment_steps, window)``
    of a differentiable run, validated."""
    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol must be a simulate.Protocol, got {type(protocol).__name__}")
    if not isinstance(adjoint, (Checkpoint, Backsolve, Truncated)):
        raise TypeError(
            "adjoint must be simulate.Checkpoint(), Backsolve() or Truncated(), got "
            f"{adjoint!r}"
        )
    if protocol.thermostat == "langevin":
        raise ValueError(
            "a differentiable simulation is deterministic: protocol.thermostat must be 'nve' or "
            "'nose_hoover' (one Nose-Hoover variable), got 'langevin'"
        )
    if protocol.equilibration_steps:
        raise ValueError(
            f"simulate_differentiable runs the production only, but protocol.equilibration_steps"
            f" = {protocol.equilibration_steps}: equilibrate with simulate.sample(..., adjoint="
            "...) or set equilibration_steps=0"
        )
    dt, n_steps = protocol.dt, protocol.production_steps
    record_every = protocol.record_every
    ensemble = "nve" if protocol.thermostat == "nve" else "nose_hoover"
    kT, tau = (protocol.kT, protocol.tau) if ensemble == "nose_hoover" else (None, None)
    method = type(adjoint).__name__.lower()
    segment_steps = n_steps if adjoint.segment_steps is None else int(adjoint.segment_steps)
    if segment_steps <= 0 or segment_steps % record_every:
        raise ValueError(
            f"{type(adjoint).__name__}.segment_steps ({segment_steps}) must be a positive "
            f"multiple of protocol.record_every ({record_every})"
        )
    window = None
    if isinstance(adjoint, Truncated):
        window = segment_steps if adjoint.window is None else int(adjoint.window)
        if not 0 < window <= segment_steps or window % record_every:
            raise ValueError(
                f"Truncated.window ({window}) must be a positive multiple of record_every "
                f"({record_every}) and at most segment_steps ({segment_steps})"
            )
    return dt, n_steps, record_every, ensemble, kT, tau, method, segment_steps, window


def simulate_differentiable(
    model: Any,
    params: Params,
    R0: Float[Array, "N 3"],
    V0: Float[Array, "N 3"],
    protocol: Protocol,
    adjoint: Adjoint = Checkpoint(),
    *,
    neighbor: Any = None,
    xi0: float = 0.0,
    observe: Callable | None = None,
) -> DiffTrajectory:
    """Runs the protocol's production as MD whose recorded frames are differentiable in ``params``.

    Integrators (diffrax solvers, one force evaluation per step), by
    ``protocol.thermostat``:

    - ``"nve"``: velocity Verlet, identical step by step to jax-md's ``simulate.nve``.
    - ``"nose_hoover"``: a single Nose-Hoover friction ``xi`` (1/ps) with
      ``d xi/dt = (sum m v^2 - g kT) / Q``, ``Q = g kT tau^2``, ``g = 3N - 3``,
      integrated by the symmetric (time-reversible, second-order) splitting
      ``xi/2, scale/2, kick/2, drift, kick/2, scale/2, xi/2`` written as a
      diffrax solver. Deterministic; no chain (:func:`sample` without an
      adjoint runs jax-md's chain).
    - ``"langevin"`` is refused: a differentiable run is deterministic.

    How gradients are taken is the ``adjoint`` (:class:`Checkpoint`,
    :class:`Backsolve`, :class:`Truncated`; each says its memory and accuracy).

    The trajectory is cut into segments of ``adjoint.segment_steps`` steps;
    with a neighbor list (``protocol.skin`` not None) each segment builds its
    list at its start and keeps it, so no particle may move ``skin / 2`` within
    one. Must run outside ``jax.jit`` (it may be under ``jax.grad``): the
    segments are compiled, the host checks between them need values. Under
    ``jit`` the checks and neighbor-list reallocation are skipped.

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel` built on its
        :class:`System` (box, masses in amu): ``model.energy_fn(params) ->
        E(R, *, neighbor=None)`` (kJ/mol; forces are ``-grad E``) and
        ``model.neighbor_fn(skin=)``.
      params: the potential's parameters (the differentiated input).
      R0: ``[N, 3]`` starting positions (nm); unwrapped inside the solve.
      V0: ``[N, 3]`` starting velocities (nm/ps).
      protocol: the :class:`~cgjax.simulate.Protocol`: ``dt``,
        ``production_steps`` (a multiple of ``record_every`` and of the
        segment length), ``thermostat``, ``tau``, ``temperature``, ``skin``
        (``None``: all pairs, no list). ``equilibration_steps`` must be 0 here:
        :func:`sample` with an adjoint equilibrates first.
      adjoint: :class:`Checkpoint` (default), :class:`Backsolve` or :class:`Truncated`.
      neighbor: a list allocated by ``model.neighbor_fn`` whose capacity the
        segments' lists take, e.g. the previous trajectory's
        ``DiffTrajectory.neighbor`` (not allocated again; an overflow still
        reallocates). Pass it when simulating repeatedly (a training loop):
        every allocation makes a list with new static fields, so the compiled
        segments (forward and backward) are traced and compiled again;
        measured on 512 SPC/E beads, 200 steps: 9 s per forward without it.
      xi0: Nose-Hoover friction at the start (1/ps).
      observe: ``observe(frames) -> pytree``, a *sum over the frames* it is given
        (e.g. a histogram: :func:`~cgjax.losses.rdf_loss` uses one), evaluated
        inside each compiled segment on that segment's frames (``frames``: a
        named tuple of ``positions`` ``[F, N, 3]`` nm unwrapped, ``velocities``
        nm/ps, ``thermostat`` 1/ps or None, and ``index`` ``[F]`` int32, each
        frame's number in the trajectory). The run returns the sum over segments
        as ``DiffTrajectory.observed`` and keeps no frames: peak memory is then
        flat in the number of recorded frames too (with ``Checkpoint(remat=True)``
        or :class:`Backsolve`, nothing is kept per segment: at most ``64 +
        ceil(segments / 64)`` start states, at the cost of one more forward
        pass above 64 segments; values and gradients are those of the
        per-segment checkpoints). It must be hashable (compiled segments are cached by it), e.g.
        a frozen dataclass or a module-level function.

    Returns:
      :class:`DiffTrajectory`.

    Raises:
      ValueError: bad arguments, naming them.
      SimulationError: non-finite positions (naming the first recorded frame's
        step), a particle moving more than ``skin / 2`` within a segment, or a
        neighbor list that keeps overflowing.

    References:
      Papers/004 Sec. 2 (Nose-Hoover NVT trajectories differentiated by the
      adjoint method); R. T. Q. Chen et al., Neural ODEs (2018); W. Wang et
      al., mdgrad (2020) (truncated backpropagation through MD).
    """
    (dt, n_steps, record_every, ensemble, kT, tau, adjoint_name, segment_steps,
     window) = _settings(protocol, adjoint)  # fmt: skip
    system = system_of(model, "simulate_differentiable")
    energy_fn_of_params = model.energy_fn
    _check_observe(observe)
    neighbor_fn = None if protocol.skin is None else model.neighbor_fn(skin=protocol.skin)
    system.check_positions(R0, "R0")
    system.check_positions(V0, "V0")
    R0 = jnp.asarray(R0)
    V0 = jnp.asarray(V0, R0.dtype)
    y = (R0, V0) if ensemble == "nve" else (R0, V0, jnp.asarray(xi0, R0.dtype))

    box = None if system.box is None else np.asarray(system.box, np.float64)
    if neighbor_fn is not None:
        R_host = _concrete(R0)
        if R_host is None:
            raise ValueError("simulate_differentiable with a neighbor list needs concrete R0")
        if neighbor is None:
            neighbor = neighbor_fn.allocate(jnp.asarray(wrap(R_host, box), R0.dtype))
        else:  # a template: each segment builds its own list with this one's capacity
            neighbor = jax.lax.stop_gradient(neighbor)
    elif neighbor is not None:
        raise ValueError(
            "simulate_differentiable: neighbor= needs a neighbor list, but protocol.skin is None "
            "(all pairs)"
        )
    max_move = np.inf if neighbor_fn is None else 0.5 * neighbor_fn.skin
    # backsolve: diffrax's custom VJP would keep each segment's neighbor list
    remat = bool(getattr(adjoint, "remat", False)) or adjoint_name == "backsolve"
    segs = _Segments(
        (energy_fn_of_params, system.displacement_fn, system.masses.tobytes(), float(dt),
         ensemble, kT, tau, adjoint_name),
        window, record_every, neighbor_fn, box, observe, remat, system.masses, neighbor,
        max_move, n_steps, segment_steps,
    )  # fmt: skip
    accel = jnp.zeros_like(R0)  # replaced by the first segment's own (fresh=True)
    if observe is not None and remat and window is None and _all_concrete((params, y)):
        observed, y = _streamed_group_checkpoints(segs, params, y)
    else:
        frames, observed = _FrameStack(), None
        for i in range(len(segs.schedule)):
            out, y, accel = segs.run(i, params, y, accel)
            if observe is None:
                frames.push(out)
            else:
                observed = out if observed is None else _add_tree(observed, out)
    if observe is None:
        cat = frames.result()
        time = (1 + np.arange(n_steps // record_every)) * record_every * float(dt)
    else:  # only the last frame is kept
        cat = jax.tree_util.tree_map(lambda x: x[None], y)
        time = np.array([n_steps * float(dt)])
    xi = cat[2] if ensemble == "nose_hoover" else None
    return DiffTrajectory(time, cat[0], cat[1], xi, segs.last, segs.reallocations, observed)


#: Most segment start states the grouped checkpointing keeps at a time (per level).
_SNAPSHOTS = 64


def _all_concrete(tree: Any) -> bool:
    """Whether every leaf has a value on the host (not under ``jit`` or ``vmap``)."""
    return all(_concrete(x) is not None for x in jax.tree_util.tree_leaves(tree))


class _Segments:
    """One run's segments: their compiled functions, neighbor-list template and host checks.

    ``schedule[i] = (first step, length)`` of segment ``i``. :meth:`run` runs a
    segment with the host's checks (reallocating and rerunning an overflowed
    list) and records the template it used, so the backward pass of
    :func:`_streamed_group_checkpoints` can rerun it (:meth:`forward`,
    :meth:`vjp`) exactly.
    """

    def __init__(self, head, window, record_every, neighbor_fn, box, observe, remat, masses,
                 template, max_move, n_steps, segment_steps):  # fmt: skip
        self.head, self.window, self.record_every = head, window, record_every
        self.neighbor_fn, self.box, self.observe, self.remat = neighbor_fn, box, observe, remat
        self.masses, self.template, self.max_move = masses, template, max_move
        self.schedule = [
            (d, min(segment_steps, n_steps - d)) for d in range(0, n_steps, segment_steps)
        ]
        self.templates: list = [None] * len(self.schedule)  # the template each segment used
        self.last, self.reallocations = None, []

    def _key(self, length: int, remat: bool) -> tuple:
        win = None if self.window is None else min(self.window, length)
        return (*self.head, win, length, self.record_every, self.neighbor_fn,
                None if self.box is None else self.box.tobytes(), self.observe, remat)  # fmt: skip

    def fn(self, length: int, remat: bool) -> Callable:
        """The compiled segment of ``length`` steps (checkpointed with ``remat``)."""
        key = self._key(length, remat)
        return _segment_fn(key, self.head[0], self.masses, self.neighbor_fn, self.box, self.observe)

    def _inputs(self, i: int) -> tuple:
        done, _ = self.schedule[i]
        return jnp.asarray(done == 0), jnp.asarray(done // self.record_every, jnp.int32)

    def run(self, i: int, params: Any, y: Any, accel: Any, remat: bool | None = None) -> tuple:
        """Segment ``i`` from ``(y, accel)`` with the host checks: ``(out, y1, accel1)``."""
        done, length = self.schedule[i]
        segment = self.fn(length, self.remat if remat is None else remat)
        fresh, frame0 = self._inputs(i)
        for _ in range(8):
            out, y1, accel1, check, last = segment(params, y, accel, fresh, self.template, frame0)
            overflow = None if last is None else _concrete(last.did_buffer_overflow)
            if overflow is None or not bool(overflow):
                break
            # the segment's list overflowed: a bigger template, and the segment rerun
            old = int(self.template.idx.shape[-1])
            wrapped = jnp.asarray(wrap(_concrete(y[0]), self.box), y[0].dtype)
            self.template = self.neighbor_fn.allocate(wrapped, at_least=self.template)
            self.reallocations.append((done, old, int(self.template.idx.shape[-1])))
        else:
            raise SimulationError(
                f"the neighbor list overflowed 8 times at step {done}: particles are "
                "collapsing or the cell list cannot hold them",
                step=done,
                reason="neighbor-list overflow",
            )
        _check_segment(_concrete(check), done, length, self.record_every, float(self.head[3]),
                       self.max_move)  # fmt: skip
        self.templates[i], self.last = self.template, last
        return out, y1, accel1

    def forward(self, i: int, params: Any, y: Any, accel: Any) -> tuple:
        """Segment ``i`` rerun with the template it used in :meth:`run`: ``(y1, accel1)``."""
        segment = self.fn(self.schedule[i][1], False)
        _, y1, accel1, _, _ = segment(params, y, accel, *self._with_template(i))
        return y1, accel1

    def _with_template(self, i: int) -> tuple:
        fresh, frame0 = self._inputs(i)
        return fresh, self.templates[i], frame0

    def vjp(self, i: int, params: Any, y: Any, accel: Any, cts: tuple) -> tuple:
        """Cotangents ``(params, y, accel)`` of segment ``i`` at ``(y, accel)`` given those of
        ``(out, y1, accel1)``; the segment is recomputed inside (one compiled program)."""
        length = self.schedule[i][1]
        key = ("vjp", *self._key(length, False))
        fn = _SEGMENT_CACHE.get(key)
        if fn is None:
            fn = _segment_vjp(self.fn(length, False))
            _SEGMENT_CACHE[key] = fn
        return fn(params, y, accel, *self._with_template(i), cts)


def _segment_vjp(segment: Callable) -> Callable:
    """``vjp(params, y0, a0, fresh, template, frame0, cts) -> (d params, d y0, d a0)``, jitted."""

    def vjp(params, y0, a0, fresh, template, frame0, cts):
        def f(p, y, a):
            out, y1, a1, _, _ = segment(p, y, a, fresh, template, frame0)
            return out, y1, a1

        _, pull = jax.vjp(f, params, y0, a0)
        return pull(cts)

    return jit(vjp)


def _streamed_group_checkpoints(segs: _Segments, params: Any, y0: Any) -> tuple:
    """``(observed, y_end)`` of a streamed run whose backward pass keeps O(sqrt) start states.

    One ``jax.custom_vjp`` over the whole run: the forward pass runs the
    segments with the host checks and keeps the start state (and carried
    acceleration) of every ``g``-th segment only, ``g = ceil(segments /
    _SNAPSHOTS)`` (1 up to 64 segments); the backward pass reruns each group of
    ``g`` segments forward from its start, keeping their starts, and then takes
    each segment's vjp (the segment recomputed inside) from the last to the
    first. At most ``_SNAPSHOTS + g`` states are held, however long the run,
    and JAX records one call, not one linearised call per segment (their
    records and residuals made the peak memory grow with the run's length;
    benchmarks/README.md, run E). The cost: above 64 segments, one more forward
    pass. Gradients are those of the per-segment ``jax.checkpoint`` (same
    segments, same order).
    """
    n = len(segs.schedule)
    group = 1 if n <= _SNAPSHOTS else -(-n // _SNAPSHOTS)
    starts = list(range(0, n, group))

    def forward(params, y, keep):
        accel, observed, kept = jnp.zeros_like(y[0]), None, []
        for i in range(n):
            if keep and i % group == 0:
                kept.append((y, accel))
            out, y, accel = segs.run(i, params, y, accel, remat=False)
            observed = out if observed is None else _add_tree(observed, out)
        return (observed, y), kept

    @jax.custom_vjp
    def run(params, y):
        return forward(params, y, False)[0]

    def run_fwd(params, y):
        out, kept = forward(params, y, True)
        return out, (params, kept)

    def run_bwd(res, cts):
        params, kept = res
        ct_obs, ct_y = cts
        ct_a, ct_p = jnp.zeros_like(ct_y[0]), None
        for g0, state in zip(reversed(starts), reversed(kept), strict=True):
            states = [state]
            for i in range(g0, min(g0 + group, n) - 1):
                states.append(segs.forward(i, params, *states[-1]))
            for i in reversed(range(g0, g0 + len(states))):
                y, a = states.pop()
                dp, ct_y, ct_a = segs.vjp(i, params, y, a, (ct_obs, ct_y, ct_a))
                ct_p = dp if ct_p is None else _add_tree(ct_p, dp)
        return ct_p, ct_y

    run.defvjp(run_fwd, run_bwd)
    return run(params, y0)


def _check_observe(observe: Any) -> None:
    """Raises ``TypeError`` for an ``observe`` the segment cache cannot key on."""
    if observe is None:
        return
    try:
        hash(observe)
    except TypeError as err:
        raise TypeError(
            f"observe must be hashable (the compiled segments are cached by it), got "
            f"{type(observe).__name__}: {err}; use a frozen dataclass or a module-level "
            "function"
        ) from None


@jax.jit
def _add_tree(a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(jnp.add, a, b)


def _check_segment(check, step0, length, record_every, dt, max_move) -> None:
    """Raises :class:`SimulationError` on a non-finite frame or a too large move.

    ``check`` is a segment's ``[first non-finite frame or -1, largest move (nm)]``
    (None inside ``jit``: no value to check).
    """
    if check is None:
        return
    first_bad, moved = int(check[0]), float(check[1])
    if first_bad >= 0:
        step = step0 + (first_bad + 1) * record_every
        reason = "non-finite positions (NaN/inf)"
        raise SimulationError(
            f"differentiable simulation blew up: {reason} by step {step} (t = {step * dt:.4g} "
            f"ps; the last finite frame is from step {step - record_every}). Try a smaller "
            f"dt (now {dt} ps) or check the potential's parameters.",
            step=step,
            reason=reason,
        )
    if np.isfinite(max_move) and moved > max_move:
        reason = "a particle moved farther in one segment than the neighbor-list skin allows"
        raise SimulationError(
            f"{reason}: {moved:.4g} nm > skin / 2 = {max_move:.4g} nm within steps "
            f"{step0 + 1}..{step0 + length}; use smaller segment_steps or a larger skin",
            step=step0 + length,
            reason=reason,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class TrajectorySpec:
    """A differentiable run bound to its start: ``spec(params) -> DiffTrajectory``.

    Trajectory loss terms hold a spec; a :class:`~cgjax.losses.Loss` runs each
    distinct spec (by identity) once per call and shares the trajectory.

    Attributes:
      model: an :class:`~cgjax.potentials.EnergyModel` built on its :class:`System`.
      R0, V0: ``[N, 3]`` start (nm, nm/ps).
      protocol: the :class:`~cgjax.simulate.Protocol` (no equilibration).
      adjoint: :class:`Checkpoint`, :class:`Backsolve` or :class:`Truncated`.
      neighbor: a neighbor-list template (see :func:`simulate_differentiable`).
    """

    model: Any
    R0: Any
    V0: Any
    protocol: Protocol
    adjoint: Adjoint = Checkpoint()
    neighbor: Any = None

    #: ``spec(params, observe=...)`` streams frame sums (no frames kept);
    #: :func:`~cgjax.losses.evaluate_trajectory_terms` checks this flag.
    streams: ClassVar[bool] = True

    @property
    def system(self) -> System:
        """The model's :class:`System` (its box serves the RDF loss)."""
        return system_of(self.model, "TrajectorySpec")

    @property
    def dt(self) -> float:
        """Time step (ps)."""
        return self.protocol.dt

    @property
    def frame_interval(self) -> float:
        """Time between recorded frames (ps)."""
        return self.protocol.dt * self.protocol.record_every

    @property
    def n_frames(self) -> int:
        return self.protocol.production_steps // self.protocol.record_every

    def __call__(self, params: Params, observe: Callable | None = None) -> DiffTrajectory:
        """The trajectory from ``params``; ``observe``: see :func:`simulate_differentiable`."""
        return simulate_differentiable(self.model, params, self.R0, self.V0, self.protocol,
                                       self.adjoint, neighbor=self.neighbor,
                                       observe=observe)  # fmt: skip


def maxwell_boltzmann(key: jax.Array, model: Any, kT: float, dtype=jnp.float32) -> jax.Array:
    """``[N, 3]`` velocities (nm/ps) drawn at ``kT`` (kJ/mol), centre-of-mass motion removed.

    Args:
      key: a PRNG key.
      model: the model (built on its :class:`System`) or the :class:`System`
        itself; only its masses (amu) are used.
      kT: kJ/mol.
      dtype: of the velocities.
    """
    system = model if isinstance(model, System) else system_of(model, "maxwell_boltzmann")
    m = jnp.asarray(system.masses, dtype)[:, None]
    V = jax.random.normal(key, (system.n_particles, 3), dtype) * jnp.sqrt(kT / m)
    return V - jnp.sum(m * V, 0) / jnp.sum(m)
