"""Force-matching errors and the force-matching :class:`~cgjax.losses.Loss`.

Errors are pure functions of predicted and reference forces (kJ/mol/nm) with
keyword-only hyperparameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from cgjax._types import Params
from cgjax.losses._loss import Loss

__all__ = [
    "force_matching_loss",
    "force_mae",
    "force_mse",
    "force_rmse_mae",
    "predict_forces",
]

Batch = dict[str, Any]


def _weights(pred: jax.Array, mask: Any) -> jax.Array:
    """Per-component weights ``[..., N, 3]`` from a per-bead mask ``[..., N]`` (or None)."""
    if mask is None:
        return jnp.ones(pred.shape, pred.dtype)
    m = jnp.asarray(mask, pred.dtype)
    if m.shape != pred.shape[:-1]:
        raise ValueError(
            f"mask must have the shape of the forces without the last axis "
            f"{list(pred.shape[:-1])}, got {list(m.shape)}"
        )
    return jnp.broadcast_to(m[..., None], pred.shape)


def _check_shapes(pred: Any, ref: Any) -> None:
    if pred.shape != ref.shape or pred.shape[-1:] != (3,):
        raise ValueError(
            f"predicted and reference forces must have the same shape [..., N, 3], got "
            f"{list(pred.shape)} and {list(ref.shape)}"
        )


def force_mse(
    pred: Float[Array, "... N 3"], ref: Float[Array, "... N 3"], *, mask: Any = None
) -> Float[Array, ""]:
    """Mean squared force error per component, ``(kJ/mol/nm)^2``.

    Args:
      pred, ref: ``[..., N, 3]`` forces (kJ/mol/nm).
      mask: optional ``[..., N]`` bead weights (1 = counted, 0 = padding).

    Returns:
      ``sum(mask * |pred - ref|^2) / (3 * sum(mask))``.

    References:
      Paper 002 eq. (9) (instantaneous force matching).
    """
    _check_shapes(pred, ref)
    w = _weights(pred, mask)
    return jnp.sum(w * (pred - ref) ** 2) / jnp.maximum(jnp.sum(w), 1.0)


def force_mae(
    pred: Float[Array, "... N 3"], ref: Float[Array, "... N 3"], *, mask: Any = None
) -> Float[Array, ""]:
    """Mean absolute force error per component (kJ/mol/nm); ``mask`` as in :func:`force_mse`."""
    _check_shapes(pred, ref)
    w = _weights(pred, mask)
    return jnp.sum(w * jnp.abs(pred - ref)) / jnp.maximum(jnp.sum(w), 1.0)


def force_rmse_mae(
    pred: Float[Array, "... N 3"], ref: Float[Array, "... N 3"], *, mask: Any = None
) -> Float[Array, ""]:
    """Force RMSE + MAE per component (kJ/mol/nm), the training loss of paper 003.

    References:
      Paper 003 §2 ("the sum of the root mean square error and mean absolute error").
    """
    return jnp.sqrt(force_mse(pred, ref, mask=mask)) + force_mae(pred, ref, mask=mask)


def predict_forces(
    model: Any,
    params: Params,
    positions: Float[Array, "B N 3"],
    *,
    box: Any = None,
    neighbor: Any = None,
    state: Any = None,
) -> Float[Array, "B N 3"]:
    """``-grad(energy)`` of ``model`` (an :class:`~cgjax.potentials.EnergyModel`) per frame.

    Args:
      positions: ``[B, N, 3]`` (nm).
      box: ``None`` (the model's box), or ``[B, 3, 3]`` per-frame boxes (nm).
      neighbor: ``None`` (all pairs), or jax-md neighbor lists batched over
        the ``B`` frames (leading axis on every array).
      state: ``None``, or ``[B, 2]`` per-frame state points (T in K, rho in
        g/cm^3) for a state-aware potential.

    Returns:
      ``[B, N, 3]`` forces (kJ/mol/nm).
    """
    energy = model.energy_fn(params)
    grad = jax.grad(lambda R, b, nb, s: energy(R, box=b, neighbor=nb, state=s))
    axes = tuple(None if x is None else 0 for x in (box, neighbor, state))
    return -jax.vmap(grad, in_axes=(0, *axes))(positions, box, neighbor, state)


def force_matching_loss(model: Any, *, error_fn: Callable = force_mse) -> Loss:
    """The force-matching loss of ``model`` on a batch, as a :class:`Loss`.

    Args:
      model: an :class:`~cgjax.potentials.EnergyModel`.
      error_fn: ``error_fn(pred, ref, *, mask) -> scalar``, e.g. :func:`force_mse`
        or :func:`force_rmse_mae`.

    Returns:
      ``Loss`` of ``(params, batch)`` with ``batch["positions"]`` ``[B, N, 3]``
      (nm), ``batch["forces"]`` ``[B, N, 3]`` (kJ/mol/nm), optional
      ``batch["mask"]`` ``[B, N]``, ``batch["box"]`` ``[B, 3, 3]`` and
      ``batch["neighbor"]`` (neighbor lists batched over frames) and
      ``batch["state"]`` ``[B, 2]`` (state points, K and g/cm^3).

    References:
      Paper 002 eq. (9); paper 001 §II (force matching as supervised learning).
    """

    def fm(params: Params, batch: Batch) -> jax.Array:
        pred = predict_forces(model, params, batch["positions"], box=batch.get("box"),
                              neighbor=batch.get("neighbor"), state=batch.get("state"))  # fmt: skip
        return error_fn(pred, batch["forces"], mask=batch.get("mask"))

    return Loss(fm)
