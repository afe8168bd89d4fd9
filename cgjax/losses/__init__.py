"""Losses: small pure functions that compose with ``+`` and scalar ``*``.

>>> from cgjax import losses
>>> fm = losses.force_matching_loss(model, error_fn=losses.force_rmse_mae)
>>> total = fm + 0.1 * other_loss          # a Loss: total(params, batch) -> scalar
>>> value, grads = jax.value_and_grad(total)(params, batch)

Trajectory terms (:func:`rdf_loss`, :func:`msd_loss`) hold a
``simulate(params)`` (e.g. :class:`cgjax.simulate.TrajectorySpec`); a ``Loss``
runs each distinct one once per call and shares the trajectory.
"""

from cgjax.losses._force_matching import (
    force_mae,
    force_matching_loss,
    force_mse,
    force_rmse_mae,
    predict_forces,
)
from cgjax.losses._loss import Loss, evaluate_trajectory_terms
from cgjax.losses._trajectory import TrajectoryTerm, msd_loss, rdf_loss

__all__ = [
    "Loss",
    "TrajectoryTerm",
    "evaluate_trajectory_terms",
    "force_mae",
    "force_matching_loss",
    "force_mse",
    "force_rmse_mae",
    "msd_loss",
    "predict_forces",
    "rdf_loss",
]
