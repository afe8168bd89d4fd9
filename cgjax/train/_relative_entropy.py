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

from cgjax._types import Params
from cgjax._validation import settings_from_config

__all__ = ["REMResult", "REMSettings", "relative_entropy"]


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

    Each iteration estimates ``dS/dlambda = beta (<dU/dlambda>_AA - <dU/dlambda>_CG)``
    (and, for the default Newton-Raphson update, the Hessian above) over the
    trained parameters ``lambda`` only; the others stay fixed. CG averages come
    from NVT samples (jax-md Langevin or Nose-Hoover through
    :func:`cgjax.simulate.run`, one compilation for all iterations: the
    parameters are a traced argument), reweighted to the current parameters
    while their effective sample size fraction ``(sum w)^2 / (n sum w^2)`` is at
    least ``ess_threshold``.

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
      model: the :class:`~cgjax.potentials.EnergyModel` (energies in kJ/mol)
        built on its :class:`~cgjax.simulate.System` (box, masses in amu).
      params: the full parameters; the start of the trained subset.
      reference_positions: ``[T, N, 3]`` mapped AA frames (nm), Boltzmann
        samples at the protocol's temperature.
      protocol: the :class:`~cgjax.simulate.Protocol` of each CG sampling
        (equilibration discarded, then production frames; every sampling
        continues the previous one, so the first starts from ``R0``).
      trainable: top-level term names (``"lj"`` of a sum) or leaf paths
        (``"lj/sigma"``) to optimise; ``None``: all parameters.
      settings: :class:`REMSettings` (iterations, update rule, reweighting).
      R0: ``[N, 3]`` start of the CG simulation (nm); default the last
        reference frame.
      progress: progress bars of the MD runs.
      log: called with one line per iteration.

    Returns:
      :class:`REMResult`.

    Raises:
      ValueError: bad arguments (unknown trainable path, shapes, non-finite
        reference frames).
      SimulationError: when a CG sampling run blows up (from :func:`cgjax.simulate.run`).

    References:
      M. S. Shell, J. Chem. Phys. 129, 144108 (2008); A. Chaimovich and M. S.
      Shell, J. Chem. Phys. 134, 094112 (2011) (Newton-Raphson REM); paper 004
      §2.2 and eqs. 9-11 (LJ sigma, epsilon by REM).
    """
    from cgjax import simulate
    from cgjax._system import system_of

    system = system_of(model, "relative_entropy")
    X_aa = _checked_reference(reference_positions, system.n_particles)
    if not isinstance(protocol, simulate.Protocol):
        raise TypeError(f"protocol must be a simulate.Protocol, got {type(protocol).__name__}")
    log = log or (lambda msg: None)
    subset, merge = _split(params, trainable)
    theta, unravel = ravel_pytree(subset)
    names = _leaf_names(subset)
    # The CG model is sampled with the flat trained vector as its parameters
    # (one compilation for every iteration).
    theta_model = model._replace(energy_fn=lambda th: model.energy_fn(merge(params, unravel(th))))
    wrapped = np.asarray([_wrap(x, system.box) for x in X_aa])
    derivatives = _Derivatives(theta_model, wrapped)
    R_start = jnp.asarray(X_aa[-1] if R0 is None else R0, theta.dtype)
    R_start = jnp.asarray(_wrap(np.asarray(R_start), system.box), theta.dtype)
    sampler = _Sampler(theta_model, R_start, protocol, progress)
    rem = _Iterations(theta, names, wrapped, derivatives, sampler, 1.0 / protocol.kT, settings, log)
    converged = False
    for it in range(int(settings.n_iterations)):
        rel = rem.iteration(it, False)
        if settings.tol > 0 and rel < settings.tol:
            converged = True
            break
    n_done = len(rem.history)
    average_last = int(settings.average_last)
    for k in range(max(0, average_last - 1)):
        rem.iteration(n_done + k, True)
    if average_last > 1:
        # the Newton roots computed on fresh samples (the last resampled iterations)
        roots = rem.fresh_roots[-average_last:]
        rem.theta = jnp.asarray(np.mean(roots, 0), theta.dtype)
        values = zip(names, np.asarray(rem.theta), strict=True)
        log(f"REM: mean of the last {len(roots)} fresh-sample roots: "
            + ", ".join(f"{k} {v:.5g}" for k, v in values))  # fmt: skip
    out_params = merge(params, unravel(rem.theta))
    return REMResult(out_params, rem.history, converged, rem.n_samplings)


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

        @jax.jit
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


class _Sampler:
    """CG samples at ``theta``: each sampling continues the previous one."""

    def __init__(self, theta_model, R_start, protocol, progress):
        self.model, self.start, self.protocol = theta_model, R_start, protocol
        self.progress, self.dtype = progress, R_start.dtype

    def __call__(self, th: Any) -> np.ndarray:
        from cgjax import simulate

        th = jnp.asarray(th, self.dtype)
        out = simulate.sample(self.model, th, self.start, self.protocol, progress=self.progress)
        self.start = out
        return np.asarray(out.trajectory.positions)


class _Iterations:
    """The state of one REM run and its iteration (reweight or resample, then step)."""

    def __init__(self, theta, names, X_aa, derivatives, sampler, beta, settings, log):
        self.theta, self.names, self.X_aa = theta, names, X_aa
        self.derivatives, self.sampler, self.beta = derivatives, sampler, beta
        self.settings, self.log = settings, log
        self.optimizer = settings.optimizer
        self.opt_state = None if self.optimizer is None else self.optimizer.init(theta)
        self.history: list[dict] = []
        self.X_cg, self.U_sampled, self.n_samplings = None, None, 0
        self.fresh_roots: list[np.ndarray] = []

    def _cg_averages(self, force_resample: bool):
        """Weights, ``dU/dl`` and ``d2U/dl2`` of the CG samples; resampled below the ESS."""
        ess = 0.0
        if self.X_cg is not None:
            U_now, g_cg, H_cg = self.derivatives(self.theta, self.X_cg)
            logw = -self.beta * (U_now - self.U_sampled)
            w = np.exp(logw - logw.max())
            w /= w.sum()
            ess = float(1.0 / (len(w) * np.sum(w * w)))
        if self.X_cg is None or ess < self.settings.ess_threshold or force_resample:
            self.X_cg = self.sampler(np.asarray(self.theta))
            self.n_samplings += 1
            U_now, g_cg, H_cg = self.derivatives(self.theta, self.X_cg)
            self.U_sampled = U_now
            return np.full(len(U_now), 1.0 / len(U_now)), g_cg, H_cg, 1.0, True
        return w, g_cg, H_cg, ess, False

    def _step(self, grad: np.ndarray, hess: np.ndarray, th: np.ndarray) -> np.ndarray:
        if self.optimizer is None:
            step = _newton_step(grad, hess)
            scale = np.max(np.abs(step) / np.maximum(np.abs(th), 1e-12))
            scale /= float(self.settings.max_relative_step)
            return step / scale if scale > 1.0 else step
        updates, self.opt_state = self.optimizer.update(
            jnp.asarray(grad, self.theta.dtype), self.opt_state, self.theta
        )
        return np.asarray(updates, np.float64)

    def iteration(self, it: int, force_resample: bool) -> float:
        """One update; returns the largest relative parameter change."""
        t0 = time.perf_counter()
        beta = self.beta
        _, g_aa, H_aa = self.derivatives(self.theta, self.X_aa)
        w, g_cg, H_cg, ess, resampled = self._cg_averages(force_resample)
        mean_cg = w @ g_cg
        grad = beta * (g_aa.mean(0) - mean_cg)
        d = g_cg - mean_cg
        cov = (w[:, None] * d).T @ d
        hess = beta * (H_aa.mean(0) - np.einsum("f,fij->ij", w, H_cg)) + beta**2 * cov
        th = np.asarray(self.theta, np.float64)
        step = self._step(grad, hess, th)
        names = self.names
        self.history.append(dict(
            iteration=it, values=dict(zip(names, th.tolist(), strict=True)),
            gradient=dict(zip(names, grad.tolist(), strict=True)), ess=ess,
            resampled=resampled, n_cg_frames=int(len(self.X_cg)),
            wall_s=time.perf_counter() - t0,
        ))  # fmt: skip
        rel = np.max(np.abs(step) / np.maximum(np.abs(th), 1e-12))
        self.theta = jnp.asarray(th + step, self.theta.dtype)
        self.log(
            f"REM {it}: "
            + ", ".join(f"{k} {v:.5g}" for k, v in zip(names, th, strict=True))
            + f" | dS/dl {np.array2string(grad, precision=3)} | ESS {ess:.2f}"
            + (" (sampled)" if resampled else " (reweighted)")
        )
        if not np.all(np.isfinite(np.asarray(self.theta))):
            raise FloatingPointError(
                f"relative_entropy: iteration {it} produced non-finite parameters {names}"
            )
        if resampled:
            self.fresh_roots.append(np.asarray(self.theta, np.float64))
        return rel


def _newton_step(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """``-H^-1 g``, with H shifted to positive definite (Levenberg) when it is not."""
    hess = 0.5 * (hess + hess.T)
    eig = np.linalg.eigvalsh(hess)
    shift = 0.0
    if eig.min() <= 1e-12 * max(abs(eig).max(), 1e-300):
        shift = abs(eig.min()) + 1e-3 * max(abs(eig).max(), 1e-12)
    return -np.linalg.solve(hess + shift * np.eye(len(grad)), grad)


def _wrap(R: np.ndarray, box: Any) -> np.ndarray:
    if box is None:
        return np.asarray(R)
    box = np.asarray(box, np.float64)
    box = np.diag(np.broadcast_to(box, (3,))) if box.ndim < 2 else box
    frac = np.linalg.solve(box, np.asarray(R, np.float64).T).T
    return ((frac - np.floor(frac)) @ box.T).astype(np.asarray(R).dtype)
