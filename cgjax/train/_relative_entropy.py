"""Relative entropy minimisation (REM) of a chosen subset of a potential's parameters.

``S_rel = <beta (U_CG - U_AA)>_AA + ln(Z_CG / Z_AA)`` (Shell 2008; paper 004
eqs. 9-11) has the gradient

    dS/dlambda = beta (<dU/dlambda>_AA - <dU/dlambda>_CG)

and the Hessian

    d2S/dlambda2 = beta (<d2U/dlambda2>_AA - <d2U/dlambda2>_CG) + beta^2 Cov_CG(dU/dlambda).

``<.>_AA`` runs over the mapped reference frames, ``<.>_CG`` over NVT samples
of the CG model at the current parameters. Samples are reused across
iterations by reweighting with ``w ~ exp(-beta (U_new - U_sampled))`` while the
effective sample size stays above a threshold; below it the model is
sampled again (continuing the same simulation, so it stays equilibrated).
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
from jax.flatten_util import ravel_pytree

from cgjax._space import wrap
from cgjax._types import Params
from cgjax._validation import settings_from_config
from cgjax._xla import jit
from cgjax.train._state import TrainingDiverged

__all__ = ["REMResult", "REMSettings", "REMState", "relative_entropy", "relative_entropy_trainer"]


class REMResult(NamedTuple):
    """What :func:`relative_entropy` found.

    Attributes:
      params: the full parameters with the trained subset at its final value.
      history: one dict per iteration: ``values`` (the trained leaves by
        name, before the update), ``gradient`` (dS/dlambda), ``ess`` (effective
        sample size fraction of the CG samples used), ``resampled`` (whether
        the model was simulated in that iteration), ``wall_s``.
      converged: True when the last relative parameter change was below ``tol``.
      n_samplings: how many times the CG model was simulated.
    """

    params: Params
    history: list[dict]
    converged: bool
    n_samplings: int


def _leaf_names(subset: Any) -> list[str]:
    names = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(subset):
        base = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        size = int(np.size(leaf))
        names += [base] if size == 1 else [f"{base}[{i}]" for i in range(size)]
    return names


def _split(params: Params, trainable: Sequence[str]) -> tuple[dict, Callable]:
    """The trained subtrees by path (``"lj"``, ``"lj/sigma"``) and a function putting them back."""
    if trainable is None:
        return {"": params}, lambda full, sub: sub[""]
    subset = {}
    for path in trainable:
        node = params
        for part in path.split("/"):
            if not isinstance(node, dict) or part not in node:
                have = sorted(node) if isinstance(node, dict) else type(node).__name__
                raise ValueError(
                    f"relative_entropy: trainable {path!r} is not in the parameters "
                    f"(at {part!r} the keys are {have})"
                )
            node = node[part]
        subset[path] = node

    def merge(full: Params, sub: dict) -> Params:
        out = jax.tree_util.tree_map(lambda x: x, full)  # copy the containers

        def put(tree, parts, value):
            tree = dict(tree)
            tree[parts[0]] = value if len(parts) == 1 else put(tree[parts[0]], parts[1:], value)
            return tree

        for path, value in sub.items():
            out = put(out, path.split("/"), value)
        return out

    return subset, merge


@dataclasses.dataclass(frozen=True)
class REMSettings:
    """How :func:`relative_entropy` iterates (the sampling is a :class:`~cgjax.simulate.Protocol`).

    Attributes:
      n_iterations: updates made (at most).
      optimizer: an optax optimizer on ``dS/dlambda``; ``None`` is damped
        Newton-Raphson with the sampled Hessian (well suited to a few
        physical parameters such as LJ sigma and epsilon).
      max_relative_step: Newton steps are scaled so no parameter changes by
        more than this fraction of its magnitude in one iteration.
      ess_threshold: reuse samples while the effective-sample-size fraction
        is at least this (``1.0``: always resample).
      tol: stop when every parameter's relative change is below this.
      average_last: after the iterations, run ``average_last - 1`` more, each
        on fresh samples, and return the mean of the last ``average_last``
        parameter values that came from fresh samples (the ones before them
        included). Each Newton root carries the statistical error of one
        sampling; averaging ``K`` independent ones divides it by ``sqrt(K)``.
        Useful for weakly determined parameters (epsilon in a dense liquid).

    Raises:
      ValueError: a value out of range, naming it.
    """

    n_iterations: int = 20
    optimizer: optax.GradientTransformation | None = None
    max_relative_step: float = 0.1
    ess_threshold: float = 0.8
    tol: float = 0.0
    average_last: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < float(self.ess_threshold) <= 1.0:
            raise ValueError(
                f"REMSettings.ess_threshold must be in (0, 1], got {self.ess_threshold}"
            )
        if int(self.n_iterations) < 0 or int(self.average_last) < 1:
            raise ValueError(
                f"REMSettings: n_iterations ({self.n_iterations}) must be >= 0 and average_last "
                f"({self.average_last}) >= 1"
            )
        if not float(self.max_relative_step) > 0 or not float(self.tol) >= 0:
            raise ValueError(
                f"REMSettings: max_relative_step ({self.max_relative_step}) must be > 0 and tol "
                f"({self.tol}) >= 0"
            )

    @classmethod
    def from_config(cls, section: Any, **fixed: Any) -> REMSettings:
        """The section's keys that name a field (others ignored), plus ``fixed``
        (a field in both is an error)."""
        return settings_from_config(cls, section, fixed)


class REMState(NamedTuple):
    """Where relative entropy minimisation stands (host-side: the samples are numpy arrays).

    Attributes:
      params: the full parameters, the trained subset at ``theta``.
      theta: the trained parameters as one flat vector.
      opt_state: the optax state (``None`` for Newton-Raphson).
      samples: ``[F, N, 3]`` CG samples in use (nm), ``None`` before the first sampling.
      U_sampled: ``[F]`` their energies at the parameters they were sampled with (kJ/mol).
      start: where the next sampling starts: ``[N, 3]`` positions (nm) or the
        previous :class:`~cgjax.simulate.Sample` (it continues that simulation).
      n_samplings: how many times the model was simulated.
      fresh_roots: ``theta`` after each update made on fresh samples.
      update: updates done.
      always_resample: sample afresh in every update (for ``average_last``).
      context: the trainer's compiled pieces for these parameters (not data).
    """

    params: Params
    theta: Any
    opt_state: Any
    samples: np.ndarray | None
    U_sampled: np.ndarray | None
    start: Any
    n_samplings: int
    fresh_roots: tuple
    update: int
    always_resample: bool
    context: Any


class _Context(NamedTuple):
    """What one REM run compiles once: the trained subset's layout, ``U`` and its
    derivatives per frame, and the reference frames."""

    names: list[str]
    merge: Callable
    unravel: Callable
    theta_model: Any
    derivatives: Any
    reference: np.ndarray
    protocol: Any


def relative_entropy_trainer(
    model: Any,
    reference_positions: Any,
    protocol: Any,
    *,
    trainable: Sequence[str] | None = None,
    settings: REMSettings = REMSettings(),
    R0: Any = None,
    progress: bool | None = False,
) -> Any:
    """Relative entropy minimisation as an ``(init, update)`` trainer.

    Each update estimates ``dS/dlambda = beta (<dU/dlambda>_AA - <dU/dlambda>_CG)``
    (and, for the default Newton-Raphson update, the Hessian in the module
    docstring) over the trained parameters ``lambda`` only; the others stay
    fixed. CG averages come from NVT samples (:func:`cgjax.simulate.sample`
    with ``protocol``; one compilation for all updates: the parameters are a
    traced argument), reweighted to the current parameters while their
    effective sample size fraction ``(sum w)^2 / (n sum w^2)`` is at least
    ``settings.ess_threshold``; below it the model is sampled again,
    continuing the previous simulation. :func:`relative_entropy` drives it
    (with :func:`~cgjax.train.fit_sampling`) and averages the last roots.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel` (energies in kJ/mol)
        built on its :class:`~cgjax.simulate.System` (box, masses in amu).
      reference_positions: ``[T, N, 3]`` mapped AA frames (nm), Boltzmann
        samples at the protocol's temperature.
      protocol: the :class:`~cgjax.simulate.Protocol` of each CG sampling.
      trainable: top-level term names (``"lj"`` of a sum) or leaf paths
        (``"lj/sigma"``) to optimise; ``None``: all parameters.
      settings: :class:`REMSettings` (update rule, reweighting, ``tol``).
      R0: ``[N, 3]`` start of the CG simulation (nm); default the last reference frame.
      progress: progress bars of the MD runs.

    Returns:
      a :class:`~cgjax.train.SamplingTrainer`: ``init(params) -> REMState``;
      ``update``'s metrics: ``values`` (the trained leaves by name, before the
      update), ``gradient`` (dS/dlambda), ``ess`` (effective sample size
      fraction of the CG samples used), ``resampled``, ``n_cg_frames``,
      ``relative_change`` (the largest relative parameter change), ``converged``
      (it is below ``settings.tol``), ``loss`` (None: S_rel is not computed), ``wall_s``.

    Raises:
      TypeError: ``protocol`` is not a :class:`~cgjax.simulate.Protocol`.
      ValueError: bad reference frames; (from ``init``) an unknown trainable path.
      TrainingDiverged: (from ``update``) non-finite parameters.
    """
    from cgjax import simulate
    from cgjax._system import system_of
    from cgjax.train._sampling import SamplingTrainer

    system = system_of(model, "relative_entropy")
    X_aa = _checked_reference(reference_positions, system.n_particles)
    if not isinstance(protocol, simulate.Protocol):
        raise TypeError(f"protocol must be a simulate.Protocol, got {type(protocol).__name__}")
    wrapped = np.asarray([wrap(x, system.box) for x in X_aa])
    beta = 1.0 / protocol.kT

    def init(params: Params) -> REMState:
        subset, merge = _split(params, trainable)
        theta, unravel = ravel_pytree(subset)
        # The CG model is sampled with the flat trained vector as its parameters
        # (one compilation for every update).
        theta_model = model._replace(
            energy_fn=lambda th: model.energy_fn(merge(params, unravel(th)))
        )
        ctx = _Context(_leaf_names(subset), merge, unravel, theta_model,
                       _Derivatives(theta_model, wrapped), wrapped, protocol)  # fmt: skip
        R_start = jnp.asarray(X_aa[-1] if R0 is None else R0, theta.dtype)
        R_start = jnp.asarray(wrap(np.asarray(R_start), system.box), theta.dtype)
        opt_state = None if settings.optimizer is None else settings.optimizer.init(theta)
        return REMState(params, theta, opt_state, None, None, R_start, 0, (), 0, False, ctx)

    def update(state: REMState) -> tuple[REMState, dict]:
        t0 = time.perf_counter()
        ctx = state.context
        _, g_aa, H_aa = ctx.derivatives(state.theta, ctx.reference)
        state, (w, g_cg, H_cg, ess, resampled) = _cg_averages(state, settings, beta, progress)
        mean_cg = w @ g_cg
        grad = beta * (g_aa.mean(0) - mean_cg)
        d = g_cg - mean_cg
        cov = (w[:, None] * d).T @ d
        hess = beta * (H_aa.mean(0) - np.einsum("f,fij->ij", w, H_cg)) + beta**2 * cov
        th = np.asarray(state.theta, np.float64)
        step, opt_state = _step(settings, state, grad, hess, th)
        rel = float(np.max(np.abs(step) / np.maximum(np.abs(th), 1e-12)))
        theta = jnp.asarray(th + step, state.theta.dtype)
        n = state.update
        if not np.all(np.isfinite(np.asarray(theta))):
            raise TrainingDiverged(
                f"relative_entropy: update {n + 1} produced non-finite parameters {ctx.names}",
                step=n + 1,
            )
        roots = state.fresh_roots + ((np.asarray(theta, np.float64),) if resampled else ())
        summary = (", ".join(f"{k} {v:.5g}" for k, v in zip(ctx.names, th, strict=True))
                   + f" | dS/dl {np.array2string(grad, precision=3)} | ESS {ess:.2f}"
                   + (" (sampled)" if resampled else " (reweighted)"))  # fmt: skip
        metrics = dict(
            values=dict(zip(ctx.names, th.tolist(), strict=True)),
            gradient=dict(zip(ctx.names, grad.tolist(), strict=True)), ess=ess,
            resampled=resampled, n_cg_frames=int(len(state.samples)), relative_change=rel,
            converged=bool(settings.tol > 0 and rel < settings.tol), loss=None,
            wall_s=time.perf_counter() - t0, summary=summary,
        )  # fmt: skip
        params = ctx.merge(state.params, ctx.unravel(theta))
        new = state._replace(params=params, theta=theta, opt_state=opt_state,
                             fresh_roots=roots, update=n + 1)  # fmt: skip
        return new, metrics

    return SamplingTrainer(init, update, "REM", REMState, has_loss=False)


def relative_entropy(
    model: Any,
    params: Params,
    reference_positions: Any,
    protocol: Any,
    *,
    trainable: Sequence[str] | None = None,
    settings: REMSettings = REMSettings(),
    R0: Any = None,
    progress: bool | None = False,
    log: Callable[[str], None] | None = None,
) -> REMResult:
    """Minimises the relative entropy of the CG model to the reference in a parameter subset.

    :func:`relative_entropy_trainer` driven by :func:`~cgjax.train.fit_sampling`
    for ``settings.n_iterations`` updates (fewer when the relative change
    falls below ``settings.tol``), then ``settings.average_last - 1`` more on
    fresh samples, returning the mean of the last ``average_last`` roots
    computed on fresh samples.

    Statistical error: near the minimum the result is a maximum-likelihood
    estimate, with covariance ``(1/n_ref + 1/n_CG) Cov(dU/dlambda)^-1 / beta^2``
    over ``n`` independent frames of the reference and of the CG samples
    (both count). A weakly determined parameter needs many frames: for LJ in
    a dense liquid ``dU/dln eps`` and ``dU/dln sigma`` are ~95 % correlated,
    and ``scripts/rem_information.py`` measures that 256 argon atoms at 94 K
    inform ``ln eps`` at 26 per ps of Langevin sampling (friction 1/ps; 12 at
    5/ps), so sd(ln eps) = 1 % takes ~800 ps of each. Frames ~1 ps apart are
    nearly independent there; a longer step with the same integrator for the
    reference and the model is unbiased. Approach with short samplings and
    then rerun from the result with long ones and ``average_last``
    (``tests/train/test_relative_entropy.py``).

    Args:
      model, reference_positions, protocol, trainable, settings, R0, progress:
        as :func:`relative_entropy_trainer` (every sampling continues the
        previous one, so the first starts from ``R0``).
      params: the full parameters; the start of the trained subset.
      log: called with one line per update.

    Returns:
      :class:`REMResult`.

    Raises:
      ValueError: bad arguments (unknown trainable path, shapes, non-finite
        reference frames).
      SimulationError: when a CG sampling run blows up (from :func:`cgjax.simulate.run`).
      TrainingDiverged: an update produced non-finite parameters.

    References:
      M. S. Shell, J. Chem. Phys. 129, 144108 (2008); A. Chaimovich and M. S.
      Shell, J. Chem. Phys. 134, 094112 (2011) (Newton-Raphson REM); paper 004
      §2.2 and eqs. 9-11 (LJ sigma, epsilon by REM).
    """
    from cgjax.train._sampling import fit_sampling

    log = log or (lambda msg: None)
    trainer = relative_entropy_trainer(model, reference_positions, protocol, trainable=trainable,
                                       settings=settings, R0=R0, progress=progress)  # fmt: skip
    state, history, converged = trainer.init(params), [], False
    if int(settings.n_iterations) > 0:
        fit = fit_sampling(trainer, state, int(settings.n_iterations), log=log)
        state, history, converged = fit.state, fit.history, fit.converged
    average_last = int(settings.average_last)
    if average_last > 1:
        more = fit_sampling(trainer, state._replace(always_resample=True), average_last - 1,
                            log=log)  # fmt: skip
        state, history = more.state, history + more.history
        # the Newton roots computed on fresh samples (the last resampled updates)
        roots = state.fresh_roots[-average_last:]
        theta = jnp.asarray(np.mean(roots, 0), state.theta.dtype)
        names = state.context.names
        log(
            f"REM: mean of the last {len(roots)} fresh-sample roots: "
            + ", ".join(f"{k} {v:.5g}" for k, v in zip(names, np.asarray(theta), strict=True))
        )
        state = state._replace(
            theta=theta, params=state.context.merge(params, state.context.unravel(theta))
        )
    return REMResult(state.params, history, converged, state.n_samplings)


def _checked_reference(reference_positions: Any, n_particles: int) -> np.ndarray:
    X_aa = np.asarray(reference_positions)
    if X_aa.ndim != 3 or X_aa.shape[1:] != (n_particles, 3):
        raise ValueError(
            f"reference_positions must be [T, {n_particles}, 3] (nm), got {X_aa.shape}"
        )
    if not np.all(np.isfinite(X_aa)):
        bad = int(np.argmin(np.all(np.isfinite(X_aa), axis=(1, 2))))
        raise ValueError(f"reference_positions has non-finite values (first in frame {bad})")
    return X_aa


class _Derivatives:
    """``U``, ``dU/dlambda``, ``d2U/dlambda2`` per frame, on one fixed-capacity neighbor
    list rebuilt per frame (grown and recompiled when a frame overflows it)."""

    def __init__(self, theta_model: Any, frames: np.ndarray):
        from cgjax._neighbor_list import allocate_neighbor_list

        self.model = theta_model
        self.neighbor = allocate_neighbor_list(theta_model, frames[:: max(1, len(frames) // 20)])
        self._fn = self._compile(self.neighbor)

    def _compile(self, nb0):
        energy_fn = self.model.energy_fn

        def one(th, R):
            nb = nb0.update(R)
            e = lambda t: energy_fn(t)(R, neighbor=nb)  # noqa: E731
            return e(th), jax.grad(e)(th), jax.hessian(e)(th), nb.did_buffer_overflow

        @jit
        def derivs(th, X):
            return jax.lax.map(lambda R: one(th, R), X, batch_size=8)

        return derivs

    def __call__(self, th, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from cgjax._neighbor_list import grow_neighbor_list

        for _ in range(8):
            U, g, H, overflow = self._fn(th, jnp.asarray(X))
            if not bool(jnp.any(overflow)):
                return tuple(np.asarray(x, np.float64) for x in (U, g, H))
            self.neighbor = grow_neighbor_list(self.model, self.neighbor, X)
            self._fn = self._compile(self.neighbor)
        raise RuntimeError("relative_entropy: the frame neighbor list kept overflowing")


def _cg_averages(state: REMState, settings: REMSettings, beta: float, progress: Any):
    """``(state, (w, dU/dl, d2U/dl2, ess, resampled))`` over the CG samples: reweighted
    to ``state.theta``, or sampled afresh (continuing the last simulation) below the ESS."""
    from cgjax import simulate

    ctx = state.context
    ess = 0.0
    if state.samples is not None:
        U_now, g_cg, H_cg = ctx.derivatives(state.theta, state.samples)
        logw = -beta * (U_now - state.U_sampled)
        w = np.exp(logw - logw.max())
        w /= w.sum()
        ess = float(1.0 / (len(w) * np.sum(w * w)))
        if ess >= settings.ess_threshold and not state.always_resample:
            return state, (w, g_cg, H_cg, ess, False)
    th = jnp.asarray(state.theta)
    out = simulate.sample(ctx.theta_model, th, state.start, ctx.protocol, progress=progress)
    X_cg = np.asarray(out.trajectory.positions)
    U_now, g_cg, H_cg = ctx.derivatives(state.theta, X_cg)
    state = state._replace(samples=X_cg, U_sampled=U_now, start=out,
                           n_samplings=state.n_samplings + 1)  # fmt: skip
    return state, (np.full(len(U_now), 1.0 / len(U_now)), g_cg, H_cg, 1.0, True)


def _step(settings: REMSettings, state: REMState, grad, hess, th) -> tuple[np.ndarray, Any]:
    """The parameter change and the new optimizer state."""
    if settings.optimizer is None:
        step = _newton_step(grad, hess)
        scale = np.max(np.abs(step) / np.maximum(np.abs(th), 1e-12))
        scale /= float(settings.max_relative_step)
        return (step / scale if scale > 1.0 else step), None
    updates, opt_state = settings.optimizer.update(
        jnp.asarray(grad, state.theta.dtype), state.opt_state, state.theta
    )
    return np.asarray(updates, np.float64), opt_state


def _newton_step(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """``-H^-1 g``, with H shifted to positive definite (Levenberg) when it is not."""
    hess = 0.5 * (hess + hess.T)
    eig = np.linalg.eigvalsh(hess)
    shift = 0.0
    if eig.min() <= 1e-12 * max(abs(eig).max(), 1e-300):
        shift = abs(eig.min()) + 1e-3 * max(abs(eig).max(), 1e-12)
    return -np.linalg.solve(hess + shift * np.eye(len(grad)), grad)
