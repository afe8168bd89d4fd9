"""Differentiable trajectory reweighting (DiffTRe): gradients of ensemble averages.

An ensemble average at parameters ``theta`` is estimated from frames ``x_i``
sampled at ``theta_0`` by reweighting (Thaler & Zavadlav 2021, eqs. 3-4):

    w_i = exp(-beta (U_theta(x_i) - U_theta0(x_i))) / sum_j exp(...),
    <O>_theta = sum_i w_i O_theta(x_i),

which is differentiable in ``theta`` through the weights (and through
``O_theta`` for observables that depend on the potential, as the pressure's
virial does) without differentiating the simulation. A loss of the averages,
``L = sum_k weight_k mean((<O_k>_theta - O_k^target)^2)``, is then stepped by
an optax optimizer; the stored frames are reused while the effective sample
size fraction ``N_eff / N = exp(-sum_i w_i ln w_i) / N`` stays at or above a
threshold, and the model is sampled again (continuing the last simulation)
below it.

Targets are small objects (:class:`EnsembleTarget`): :func:`rdf_target` (the
Gaussian-smeared RDF), :func:`adf_target` (the three-body angle distribution)
and :func:`pressure_target` (the virial pressure, through a pressure function
of the potential's own derivative).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cgjax._types import Params
from cgjax._validation import settings_from_config
from cgjax._xla import jit
from cgjax.train._sampling import SamplingTrainer
from cgjax.train._state import TrainingDiverged

__all__ = [
    "DiffTReSettings",
    "DiffTReState",
    "EnsembleTarget",
    "Reweighted",
    "Reweighting",
    "adf_target",
    "difftre_trainer",
    "pressure_target",
    "rdf_target",
]


class EnsembleTarget(NamedTuple):
    """One ensemble average and its target value.

    Attributes:
      name: for messages and metrics (``"rdf"``, ``"adf"``, ``"pressure"``).
      target: the target average, any shape ``S`` (units of the observable).
      weight: its weight in the loss.
      frames_fn: ``frames_fn(X [T, N, 3] nm) -> [T, *S]``, the per-frame values
        of an observable that does not depend on the parameters (computed once
        per sampling); or None.
      frame_fn: ``frame_fn(energy, R [N, 3] nm, neighbor) -> [*S]`` for an
        observable that depends on the parameters (``energy`` is
        ``model.energy_fn(params)``, traced); or None. Exactly one of the two.
    """

    name: str
    target: Any
    weight: float = 1.0
    frames_fn: Callable | None = None
    frame_fn: Callable | None = None


def rdf_target(
    r: Any,
    g: Any,
    box: Any,
    *,
    sigma: float,
    weight: float = 1.0,
    species: Any = None,
    pair: tuple[int, int] | None = None,
) -> EnsembleTarget:
    """The Gaussian-smeared RDF (:func:`~cgjax.observables.rdf_smooth`) as a target.

    Args:
      r: ``[B]`` bin centres of the target (nm), uniform on ``[0, r_max)``.
      g: ``[B]`` target ``g(r)`` (dimensionless).
      box: the periodic box (nm).
      sigma: Gaussian smearing width (nm).
      weight: weight of ``mean_k (<g(r_k)> - g_target(r_k))^2`` in the loss.
      species, pair: as in :func:`~cgjax.observables.rdf_smooth`.

    Raises:
      ValueError: ``r`` and ``g`` of different shapes, or ``r`` not the centres
        of uniform bins from 0.
    """
    from cgjax.observables._rdf import rdf_smooth

    r, g = np.asarray(r, np.float64), np.asarray(g, np.float64)
    if r.ndim != 1 or r.shape != g.shape or r.size < 2:
        raise ValueError(f"rdf_target: r and g must be [B] arrays of one length (>= 2), "
                         f"got {r.shape} and {g.shape}")  # fmt: skip
    dr = r[1] - r[0]
    if not np.allclose(r, (np.arange(r.size) + 0.5) * dr, rtol=1e-6, atol=1e-9):
        raise ValueError("rdf_target: r must be the centres of uniform bins starting at 0 (nm), "
                         f"got {r[0]:.6g} .. {r[-1]:.6g} in {r.size} points")  # fmt: skip
    r_max, n_bins = float(dr * r.size), int(r.size)

    def frames_fn(X):
        return np.stack([np.asarray(rdf_smooth(x, box, r_max=r_max, n_bins=n_bins, sigma=sigma,
                                               species=species, pair=pair).g)
                         for x in np.asarray(X)])  # fmt: skip

    return EnsembleTarget("rdf", g, float(weight), frames_fn=frames_fn)


def adf_target(theta: Any, p: Any, box: Any, *, cutoff: float, weight: float = 1.0,
               max_neighbors: int = 16) -> EnsembleTarget:  # fmt: skip
    """The three-body angle distribution (:func:`~cgjax.observables.adf`) as a target.

    Each frame's ``P(theta)`` (density in 1/degree) is averaged with the
    weights; reweighting needs no derivative in positions, so the histogram serves.

    Args:
      theta: ``[B]`` bin centres (degrees), uniform on ``[0, 180]``.
      p: ``[B]`` target density (1/degree).
      box: the periodic box (nm).
      cutoff: neighbour cutoff of the angles (nm).
      weight: weight of ``mean_k (<P_k> - P_k^target)^2`` in the loss.
      max_neighbors: as in :func:`~cgjax.observables.adf`.

    Raises:
      ValueError: ``theta`` and ``p`` of different shapes.
    """
    from cgjax.observables._adf import adf

    theta, p = np.asarray(theta, np.float64), np.asarray(p, np.float64)
    if theta.ndim != 1 or theta.shape != p.shape:
        raise ValueError(f"adf_target: theta and p must be [B] arrays of one length, "
                         f"got {theta.shape} and {p.shape}")  # fmt: skip

    def frames_fn(X):
        return np.stack([np.asarray(adf(x, box, cutoff=cutoff, n_bins=theta.size,
                                        max_neighbors=max_neighbors).p)
                         for x in np.asarray(X)])  # fmt: skip

    return EnsembleTarget("adf", p, float(weight), frames_fn=frames_fn)


def pressure_target(pressure_bar: float, box: Any, kT: float, *, weight: float = 1.0,
                    pressure_fn: Callable | None = None) -> EnsembleTarget:  # fmt: skip
    """The virial pressure as a target (the pressure depends on the parameters).

    Args:
      pressure_bar: target pressure (bar).
      box: the periodic box (nm).
      kT: thermal energy (kJ/mol); the kinetic part is ``3/2 N kT``.
      weight: weight of ``(<P> - P_target)^2`` (bar^2) in the loss.
      pressure_fn: ``pressure_fn(energy, R, box, *, kT, neighbor) -> bar``;
        default ``cgjax.observables.instantaneous_pressure`` (the virial with
        the potential's own derivative, for any term).

    Raises:
      ImportError: no ``pressure_fn`` given and this cgjax has no
        ``observables.instantaneous_pressure``.
    """
    if pressure_fn is None:
        from cgjax import observables

        pressure_fn = getattr(observables, "instantaneous_pressure", None)
        if pressure_fn is None:
            raise ImportError("pressure_target: cgjax.observables has no instantaneous_pressure "
                              "in this version; pass pressure_fn=...")  # fmt: skip
    kT = float(kT)

    def frame_fn(energy, R, neighbor):
        return pressure_fn(energy, R, box, kT=kT, neighbor=neighbor)

    return EnsembleTarget("pressure", float(pressure_bar), float(weight), frame_fn=frame_fn)


@dataclasses.dataclass(frozen=True)
class DiffTReSettings:
    """How DiffTRe reuses samples (the sampling itself is a :class:`~cgjax.simulate.Protocol`).

    Attributes:
      ess_threshold: reuse the stored frames while ``N_eff / N`` (entropy form,
        module docstring) is at least this; below it, sample again. ``1.0``:
        sample in every update.
      frame_batch: frames per batch of the per-frame energies (``lax.map``).

    Raises:
      ValueError: a value out of range, naming it.
    """

    ess_threshold: float = 0.9
    frame_batch: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < float(self.ess_threshold) <= 1.0:
            raise ValueError(
                f"DiffTReSettings.ess_threshold must be in (0, 1], got {self.ess_threshold}"
            )
        if int(self.frame_batch) < 1:
            raise ValueError(f"DiffTReSettings.frame_batch must be >= 1, got {self.frame_batch}")

    @classmethod
    def from_config(cls, section: Any, **fixed: Any) -> DiffTReSettings:
        """From a config section; keys that name no field are ignored."""
        return settings_from_config(cls, section, fixed)


class DiffTReState(NamedTuple):
    """Where DiffTRe stands.

    Attributes:
      params: the current parameters.
      opt_state: the optimizer's state.
      samples: ``[T, N, 3]`` frames of the last sampling (nm), or None.
      U_sampled: ``[T]`` their energies at the sampling parameters (kJ/mol).
      observables: the per-frame values of the parameter-free targets, by index.
      start: the last :class:`~cgjax.simulate.Sample` (the next continues it),
        or ``[N, 3]`` start positions (nm).
      n_samplings: samplings made.
      simulated_ps: simulated time so far (equilibration included, ps).
      update: updates done.
      context: the compiled per-frame energies (not data).
    """

    params: Params
    opt_state: Any
    samples: Any
    U_sampled: Any
    observables: tuple
    start: Any
    n_samplings: int
    simulated_ps: float
    update: int
    context: Any


class _Reweighter:
    """Loss, its gradient, the averages and N_eff/N of stored frames, compiled once per
    neighbor-list capacity (grown and recompiled when a frame overflows it)."""

    def __init__(self, model, targets, kT, batch, skin):
        self.model, self.targets, self.beta, self.batch = model, targets, 1.0 / kT, batch
        self.neighbor, self.skin, self._fn = None, skin, None

    def _compile(self, nb0):
        energy_fn, targets, beta, batch = self.model.energy_fn, self.targets, self.beta, self.batch

        def loss(params, X, U0, static):
            energy = energy_fn(params)

            def frame(R):
                nb = None if nb0 is None else nb0.update(R)
                dyn = tuple(t.frame_fn(energy, R, nb) for t in targets if t.frame_fn is not None)
                overflow = False if nb is None else nb.did_buffer_overflow
                return energy(R, neighbor=nb), dyn, overflow

            U, dyn, overflow = jax.lax.map(frame, X, batch_size=batch)
            logw = -beta * (U - U0)
            w = jax.nn.softmax(logw - jax.lax.stop_gradient(logw.max()))
            ess = jnp.exp(-jnp.sum(jnp.where(w > 0, w * jnp.log(jnp.where(w > 0, w, 1.0)), 0.0)))
            total, averages, k_dyn, k_static = 0.0, [], 0, 0
            for t in targets:
                if t.frame_fn is None:
                    values, k_static = static[k_static], k_static + 1
                else:
                    values, k_dyn = dyn[k_dyn], k_dyn + 1
                avg = jnp.tensordot(w, values, axes=1)
                total = total + t.weight * jnp.mean((avg - jnp.asarray(t.target, avg.dtype)) ** 2)
                averages.append(avg)
            aux = (tuple(averages), ess / X.shape[0], jnp.any(overflow), U)
            return total, aux

        return jit(jax.value_and_grad(loss, has_aux=True))

    def __call__(self, params, X, U0, static):
        """``(loss, grads, averages, ess_fraction, U)`` at ``params`` over frames ``X``."""
        from cgjax._neighbor_list import allocate_neighbor_list, grow_neighbor_list

        X = jnp.asarray(X)
        if self._fn is None:
            if self.skin is not None:
                self.neighbor = allocate_neighbor_list(self.model, X[:: max(1, len(X) // 20)])
            self._fn = self._compile(self.neighbor)
        for _ in range(8):
            U0_ = jnp.zeros(X.shape[0], X.dtype) if U0 is None else jnp.asarray(U0, X.dtype)
            (v, (avg, ess, overflow, U)), g = self._fn(params, X, U0_, static)
            if not bool(overflow):
                return v, g, avg, ess, U
            self.neighbor = grow_neighbor_list(self.model, self.neighbor, X)
            self._fn = self._compile(self.neighbor)
        raise RuntimeError("difftre: the frame neighbor list kept overflowing")


class Reweighted(NamedTuple):
    """What :class:`Reweighting` returns.

    Attributes:
      loss: the loss of the reweighted averages (module docstring).
      gradient: its gradient in the parameters (a pytree like them).
      averages: the reweighted averages, one per target.
      ess: ``N_eff / N`` of the weights.
      U: ``[T]`` the frames' energies at the parameters (kJ/mol).
    """

    loss: Any
    gradient: Any
    averages: tuple
    ess: Any
    U: Any


class Reweighting:
    """The DiffTRe loss of stored frames, its gradient and the averages, compiled once.

    ``rw = Reweighting(model, targets, kT)``; ``rw(params, X, sampled_params)``
    reweights frames ``X`` sampled at ``sampled_params`` to ``params``.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel` (kJ/mol, nm).
      targets: :class:`EnsembleTarget` s.
      kT: thermal energy of the samples (kJ/mol).
      neighbor_list: build a neighbor list per frame (False: the energy sees all pairs).
      frame_batch: frames per ``lax.map`` batch.
    """

    def __init__(self, model: Any, targets: Sequence[EnsembleTarget], kT: float, *,
                 neighbor_list: bool = True, frame_batch: int = 8):  # fmt: skip
        self.targets = _checked_targets(targets)
        self._rw = _Reweighter(model, self.targets, float(kT), int(frame_batch),
                               0.0 if neighbor_list else None)  # fmt: skip

    def observables(self, X: Any) -> tuple:
        """The per-frame values of the parameter-free targets of frames ``X`` [T, N, 3] (nm)."""
        X = jnp.asarray(X)
        return tuple(jnp.asarray(t.frames_fn(X), X.dtype) for t in self.targets
                     if t.frame_fn is None)  # fmt: skip

    def __call__(self, params: Params, X: Any, sampled_params: Params,
                 observables: tuple | None = None) -> Reweighted:  # fmt: skip
        """Reweights ``X`` [T, N, 3] (nm), sampled at ``sampled_params``, to ``params``."""
        static = self.observables(X) if observables is None else observables
        U0 = self._rw(sampled_params, X, None, static)[4]
        return Reweighted(*self._rw(params, X, U0, static))


def _checked_targets(targets) -> tuple:
    targets = tuple(targets)
    if not targets or not all(isinstance(t, EnsembleTarget) for t in targets):
        raise ValueError("difftre: targets must be a non-empty sequence of EnsembleTarget, "
                         f"got {[type(t).__name__ for t in targets]}")  # fmt: skip
    for t in targets:
        if (t.frames_fn is None) == (t.frame_fn is None):
            raise ValueError(f"EnsembleTarget {t.name!r}: give exactly one of frames_fn, frame_fn")
    return targets


def _sample(state: DiffTReState, ctx, progress) -> DiffTReState:
    from cgjax import simulate

    out = simulate.sample(ctx.model, state.params, state.start, ctx.protocol, progress=progress)
    X = jnp.asarray(out.trajectory.positions)
    static = tuple(jnp.asarray(t.frames_fn(X), X.dtype) for t in ctx.targets if t.frame_fn is None)
    _, _, _, _, U = ctx.reweighter(state.params, X, None, static)
    p = ctx.protocol
    ps = (p.equilibration_steps + p.production_steps) * p.dt
    return state._replace(samples=X, U_sampled=U, observables=static, start=out,
                          n_samplings=state.n_samplings + 1,
                          simulated_ps=state.simulated_ps + ps)  # fmt: skip


class _Context(NamedTuple):
    model: Any
    targets: tuple
    protocol: Any
    reweighter: _Reweighter


def difftre_trainer(
    model: Any,
    targets: Sequence[EnsembleTarget],
    optimizer: optax.GradientTransformation,
    protocol: Any,
    R0: Any,
    *,
    settings: DiffTReSettings = DiffTReSettings(),
    frozen: tuple[str, ...] = (),
    progress: bool | None = False,
) -> SamplingTrainer:
    """DiffTRe as an ``(init, update)`` trainer: optax steps on a loss of reweighted averages.

    Each update reweights the stored frames to the current parameters; when
    ``N_eff / N`` falls below ``settings.ess_threshold`` (and in the first
    update) it samples the model at the current parameters first
    (:func:`cgjax.simulate.sample` with ``protocol``, continuing the previous
    sampling), so the weights are uniform again. Then one gradient of the loss
    (module docstring) over all stored frames, and one optimizer step.
    Works for any potential: only ``model.energy_fn(params)`` is used.

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel` built on its
        :class:`~cgjax.simulate.System` (energies kJ/mol, positions nm).
      targets: :class:`EnsembleTarget` s (:func:`rdf_target`,
        :func:`adf_target`, :func:`pressure_target`).
      optimizer: an optax transformation of the loss gradient.
      protocol: the :class:`~cgjax.simulate.Protocol` of every sampling
        (its temperature is the reweighting's).
      R0: ``[N, 3]`` start of the first sampling (nm).
      settings: :class:`DiffTReSettings`.
      frozen: top-level parameter subtrees left unchanged.
      progress: progress bars of the MD runs.

    Returns:
      a :class:`~cgjax.train.SamplingTrainer` (drive it with
      :func:`~cgjax.train.fit_sampling`): ``init(params) -> DiffTReState``;
      ``update``'s metrics: ``loss`` (at the parameters before the update),
      ``gradient`` (the loss gradient, a pytree of arrays), ``grad_norm``,
      ``averages`` (the reweighted averages by target name, lists), ``ess``
      (``N_eff / N`` of the frames used), ``resampled``, ``n_samplings``,
      ``simulated_ps``, ``wall_s``, ``end_positions`` (nm).

    Raises:
      TypeError: ``protocol`` is not a :class:`~cgjax.simulate.Protocol`.
      ValueError: no targets, or targets that are not :class:`EnsembleTarget`.
      TrainingDiverged: (from ``update``) a non-finite loss or gradient.

    References:
      S. Thaler and J. Zavadlav, Learning neural network potentials from
      experimental data via Differentiable Trajectory Reweighting, Nat.
      Commun. 12, 6884 (2021), eqs. 3-6.
    """
    from cgjax import simulate
    from cgjax.train._force_matching import _freeze, tree_all_finite

    if not isinstance(protocol, simulate.Protocol):
        raise TypeError(f"protocol must be a simulate.Protocol, got {type(protocol).__name__}")
    targets = _checked_targets(targets)
    frozen = tuple(frozen)
    if frozen:
        optimizer = _freeze(optimizer, frozen)
    ctx = _Context(model, targets, protocol,
                   _Reweighter(model, targets, protocol.kT, int(settings.frame_batch),
                               protocol.skin))  # fmt: skip

    def init(params: Params) -> DiffTReState:
        return DiffTReState(params, optimizer.init(params), None, None, (), jnp.asarray(R0),
                            0, 0.0, 0, ctx)  # fmt: skip

    def update(state: DiffTReState) -> tuple[DiffTReState, dict]:
        t0 = time.perf_counter()
        resampled = state.samples is None
        if resampled:
            state = _sample(state, ctx, progress)
        v, g, avg, ess, _ = ctx.reweighter(state.params, state.samples, state.U_sampled,
                                           state.observables)  # fmt: skip
        if float(ess) < float(settings.ess_threshold) and not resampled:
            state, resampled = _sample(state, ctx, progress), True
            v, g, avg, ess, _ = ctx.reweighter(state.params, state.samples, state.U_sampled,
                                               state.observables)  # fmt: skip
        n = state.update
        if not (np.isfinite(float(v)) and bool(tree_all_finite(g))):
            raise TrainingDiverged(f"difftre, update {n + 1}: the loss ({float(v)}) or its "
                                   "gradient is not finite; the state before it is unchanged",
                                   step=n + 1)  # fmt: skip
        updates, opt_state = optimizer.update(g, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        trained = {k: x for k, x in g.items() if k not in frozen} if frozen else g
        norm = float(optax.tree.norm(trained))
        averages = {t.name: np.asarray(a).tolist() for t, a in zip(targets, avg, strict=True)}
        end = state.start.trajectory.positions[-1]
        summary = (f"loss {float(v):.4g}, |grad| {norm:.3g}, N_eff/N {float(ess):.2f}"
                   + (" (sampled)" if resampled else " (reweighted)"))  # fmt: skip
        metrics = dict(loss=float(v), gradient=jax.tree.map(np.asarray, g), grad_norm=norm,
                       averages=averages, ess=float(ess), resampled=resampled,
                       n_samplings=state.n_samplings, simulated_ps=state.simulated_ps,
                       wall_s=time.perf_counter() - t0, end_positions=end,
                       summary=summary)  # fmt: skip
        return state._replace(params=params, opt_state=opt_state, update=n + 1), metrics

    return SamplingTrainer(init, update, "DiffTRe", DiffTReState, has_loss=True)
