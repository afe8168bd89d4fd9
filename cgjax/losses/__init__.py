"""Losses: small pure functions that compose with ``+`` and scalar ``*``.

>>> from cgjax import losses
>>> fm = losses.force_matching_loss(model, error_fn=losses.force_rmse_mae)
>>> total = fm + 0.1 * other_loss          # a Loss: total(params, batch) -> scalar
>>> value, grads = jax.value_and_grad(total)(params, batch)
"""

from cgjax.losses._force_matching import (
    Loss,
    force_mae,
    force_matching_loss,
    force_mse,
    force_rmse_mae,
    predict_forces,
)

__all__ = [
    "Loss",
    "force_mae",
    "force_matching_loss",
    "force_mse",
    "force_rmse_mae",
    "predict_forces",
]
