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
        """The section's keys that name a field (others ignored), plus ``fixed``."""
        items = dict(section.items()) if hasattr(section, "items") else dict(section)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in items.items() if k in names}, **fixed)


def relative_entropy(
    model: Any,
    params: Params,
    reference_positions: Any,
    protocol: Any,
    *,
    system: Any,
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
      model: the :class:`~cgjax.potentials.EnergyModel` (energies in kJ/mol).
      params: the full parameters; the start of the trained subset.
      reference_positions: ``[T, N, 3]`` mapped AA frames (nm), Boltzmann
        samples at the protocol's temperature.
      protocol: the :class:`~cgjax.simulate.Protocol` of each CG sampling
        (equilibration discarded, then production frames; every sampling
        continues the previous one, so the first starts from ``R0``).
      system: the :class:`~cgjax.simulate.System` (box, masses in amu).
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
    from cgjax._neighbor_list import allocate_neighbor_list, grow_neighbor_list

    X_aa = np.asarray(reference_positions)
    if X_aa.ndim != 3 or X_aa.shape[1:] != (system.n_particles, 3):
        raise ValueError(
            f"reference_positions must be [T, {system.n_particles}, 3] (nm), got {X_aa.shape}"
        )
    if not np.all(np.isfinite(X_aa)):
        bad = int(np.argmin(np.all(np.isfinite(X_aa), axis=(1, 2))))
        raise ValueError(f"reference_positions has non-finite values (first in frame {bad})")
    if not isinstance(protocol, simulate.Protocol):
        raise TypeError(f"protocol must be a simulate.Protocol, got {type(protocol).__name__}")
    log = log or (lambda msg: None)
    beta = 1.0 / protocol.kT
    optimizer, max_relative_step = settings.optimizer, float(settings.max_relative_step)
    ess_threshold, tol = float(settings.ess_threshold), float(settings.tol)
    n_iterations, average_last = int(settings.n_iterations), int(settings.average_last)

    subset, merge = _split(params, trainable)
    theta, unravel = ravel_pytree(subset)
    names = _leaf_names(subset)
    dtype = theta.dtype

    def energy_of_theta(th, R, neighbor):
        return model.energy_fn(merge(params, unravel(th)))(R, neighbor=neighbor)

    # Reference frames and CG samples share one fixed-capacity list, rebuilt per frame.
    wrapped = np.asarray([_wrap(x, system.box) for x in X_aa])
    nb_frames = allocate_neighbor_list(model, wrapped[:: max(1, len(wrapped) // 20)])

    def make_derivs(nb0):
        def one(th, R):
            nb = nb0.update(R)
            e = lambda t: energy_of_theta(t, R, nb)
            return e(th), jax.grad(e)(th), jax.hessian(e)(th), nb.did_buffer_overflow

        @jax.jit
        def derivs(th, X):
            return jax.lax.map(lambda R: one(th, R), X, batch_size=8)

        return derivs

    derivs = make_derivs(nb_frames)

    def evaluate(th, X):
        nonlocal derivs, nb_frames
        for _ in range(8):
            U, g, H, overflow = derivs(th, jnp.asarray(X))
            if not bool(jnp.any(overflow)):
                return (
                    np.asarray(U, np.float64),
                    np.asarray(g, np.float64),
                    np.asarray(H, np.float64),
                )
            nb_frames = grow_neighbor_list(model, nb_frames, X)
            derivs = make_derivs(nb_frames)
        raise RuntimeError("relative_entropy: the frame neighbor list kept overflowing")

    # <dU/dl>_AA and <d2U/dl2>_AA change with lambda only through U's form, so
    # they are recomputed each iteration (cheap next to sampling). The CG model is
    # sampled with the flat trained vector as its parameters (one compilation).
    theta_model = model._replace(energy_fn=lambda th: model.energy_fn(merge(params, unravel(th))))
    R_start = jnp.asarray(X_aa[-1] if R0 is None else R0, dtype)
    R_start = jnp.asarray(_wrap(np.asarray(R_start), system.box), dtype)
    last = None  # the previous sampling: the next one continues it

    def sample(th):
        nonlocal last
        start = R_start if last is None else last
        last = simulate.sample(theta_model, jnp.asarray(th, dtype), start, protocol,
                               system=system, progress=progress)  # fmt: skip
        return np.asarray(last.trajectory.positions)

    opt_state = None if optimizer is None else optimizer.init(theta)
    history: list[dict] = []
    X_cg, U_sampled, n_samplings = None, None, 0
    converged = False
    fresh_roots: list[np.ndarray] = []

    def iteration(it: int, force_resample: bool) -> float:
        nonlocal theta, X_cg, U_sampled, n_samplings, opt_state
        t0 = time.perf_counter()
        _, g_aa, H_aa = evaluate(theta, wrapped)
        resampled = False
        ess = 0.0
        if X_cg is not None:
            U_now, g_cg, H_cg = evaluate(theta, X_cg)
            logw = -beta * (U_now - U_sampled)
            w = np.exp(logw - logw.max())
            w /= w.sum()
            ess = float(1.0 / (len(w) * np.sum(w * w)))
        if X_cg is None or ess < ess_threshold or force_resample:
            X_cg = sample(np.asarray(theta))
            n_samplings += 1
            resampled = True
            U_now, g_cg, H_cg = evaluate(theta, X_cg)
            U_sampled = U_now
            w = np.full(len(U_now), 1.0 / len(U_now))
            ess = 1.0
        mean_cg = w @ g_cg
        grad = beta * (g_aa.mean(0) - mean_cg)
        d = g_cg - mean_cg
        cov = (w[:, None] * d).T @ d
        hess = beta * (H_aa.mean(0) - np.einsum("f,fij->ij", w, H_cg)) + beta**2 * cov
        th = np.asarray(theta, np.float64)
        if optimizer is None:
            step = _newton_step(grad, hess)
            scale = np.max(np.abs(step) / np.maximum(np.abs(th), 1e-12)) / max_relative_step
            if scale > 1.0:
                step = step / scale
        else:
            updates, opt_state = optimizer.update(jnp.asarray(grad, dtype), opt_state, theta)
            step = np.asarray(updates, np.float64)
        history.append(
            dict(
                iteration=it,
                values=dict(zip(names, th.tolist(), strict=True)),
                gradient=dict(zip(names, grad.tolist(), strict=True)),
                ess=ess,
                resampled=resampled,
                n_cg_frames=int(len(X_cg)),
                wall_s=time.perf_counter() - t0,
            )
        )
        rel = np.max(np.abs(step) / np.maximum(np.abs(th), 1e-12))
        theta = jnp.asarray(th + step, dtype)
        log(
            f"REM {it}: "
            + ", ".join(f"{k} {v:.5g}" for k, v in zip(names, th, strict=True))
            + f" | dS/dl {np.array2string(grad, precision=3)} | ESS {ess:.2f}"
            + (" (sampled)" if resampled else " (reweighted)")
        )
        if not np.all(np.isfinite(np.asarray(theta))):
            raise FloatingPointError(
                f"relative_entropy: iteration {it} produced non-finite parameters {names}"
            )
        if resampled:
            fresh_roots.append(np.asarray(theta, np.float64))
        return rel

    for it in range(int(n_iterations)):
        rel = iteration(it, False)
        if tol > 0 and rel < tol:
            converged = True
            break
    n_done = len(history)
    for k in range(max(0, int(average_last) - 1)):
        iteration(n_done + k, True)
    if int(average_last) > 1:
        # the Newton roots computed on fresh samples (the last resampled iterations)
        roots = fresh_roots[-int(average_last) :]
        theta = jnp.asarray(np.mean(roots, 0), dtype)
        values = zip(names, np.asarray(theta), strict=True)
        log(f"REM: mean of the last {len(roots)} fresh-sample roots: "
            + ", ".join(f"{k} {v:.5g}" for k, v in values))  # fmt: skip
    out_params = merge(params, unravel(theta))
    return REMResult(out_params, history, converged, n_samplings)


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
