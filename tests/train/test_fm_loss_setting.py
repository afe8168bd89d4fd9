"""FMSettings.loss: paper 003's RMSE + MAE force loss through fit_force_matching."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgjax import data, losses, potentials, train

N, L = 32, 1.6


def test_rmse_mae_loss_is_the_trainers_loss():
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3)[:N]
    R = (grid + 0.5) * (L / 4) + 0.02 * rng.standard_normal((6, N, 3))
    F = rng.standard_normal((6, N, 3)) * 50.0
    frames = data.Frames(R, np.zeros(N, np.int32), np.full(N, 16.0), forces=F, box=np.eye(3) * L)
    lj = potentials.LennardJones(sigma=0.3, epsilon=0.5, cutoff=0.7, param_dtype=jnp.float64)
    model = potentials.energy_model(lj, species=frames.species, box=L)
    settings = train.FMSettings(lr=1e-3, n_steps=1, batch_size=2, eval_every=1,
                                checkpoint_every=1, loss="rmse_mae")  # fmt: skip
    _, trainer, _ = train.fit_force_matching(
        model, frames.select([0, 1, 2, 3]), frames.select([4, 5]), settings, workdir=None,
        progress=False,
    )  # fmt: skip
    p0 = model.init_fn(jax.random.key(0), jnp.asarray(R[0]))
    state = trainer.init_fn(jax.random.key(0), p0)
    batch = {"positions": jnp.asarray(R[:2]), "forces": jnp.asarray(F[:2])}
    _, metrics = trainer.update_fn(state, batch)
    pred = losses.predict_forces(model, p0, jnp.asarray(R[:2]))
    err = np.asarray(pred) - F[:2]
    expected = np.sqrt(np.mean(err**2)) + np.mean(np.abs(err))
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-6)
    assert train.FMSettings(lr=1e-3, n_steps=1, batch_size=1, eval_every=1,
                            checkpoint_every=1).loss == "mse"  # fmt: skip
    with pytest.raises(ValueError, match="FMSettings.loss must be one of"):
        train.FMSettings(lr=1e-3, n_steps=1, batch_size=1, eval_every=1, checkpoint_every=1,
                         loss="huber")  # fmt: skip


def test_per_frame_boxes_train_on_all_pairs():
    """Frames of two densities pooled (``"box"`` per frame): fit_force_matching must see each
    frame in its own box. A neighbor list of the model's (larger, 2.0 nm) box misses the
    1.6 nm frames' pairs across their boundary; the true parameters' forces would not match."""
    rng = np.random.default_rng(1)
    grid = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3)[:N]
    lj = potentials.LennardJones(sigma=0.3, epsilon=0.5, cutoff=0.7, param_dtype=jnp.float64)
    Rs, Fs, boxes = [], [], []
    for Lk in (L, 2.0, L, 2.0):
        R = ((grid + 0.5) * (Lk / 4) + 0.02 * rng.standard_normal((N, 3))) % Lk
        m = potentials.energy_model(lj, species=np.zeros(N, np.int32), box=Lk)
        p = m.init_fn(jax.random.key(0), jnp.asarray(R))
        Rs.append(R)
        Fs.append(np.asarray(losses.predict_forces(m, p, jnp.asarray(R[None])))[0])
        boxes.append(np.eye(3) * Lk)
    Rs, Fs, boxes = map(np.asarray, (Rs, Fs, boxes))
    model = potentials.energy_model(lj, species=np.zeros(N, np.int32), box=2.0)
    sets = [{"positions": Rs[i], "forces": Fs[i], "box": boxes[i]} for i in ([0, 1], [2, 3])]
    settings = train.FMSettings(lr=1e-12, n_steps=1, batch_size=2, eval_every=1,
                                checkpoint_every=1)  # fmt: skip
    _, _, metrics = train.fit_force_matching(model, *sets, settings, workdir=None,
                                             progress=False)  # fmt: skip
    assert float(metrics["val_force_rmse"]) < 1e-6 * float(np.sqrt(np.mean(Fs**2)))
