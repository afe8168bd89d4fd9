"""Basin free-energy offset of a trained alanine network, without MD (a quick diagnosis).

Trains the K-fold ensemble of one network of ``experiments/alanine_cgschnet.py``
on top of the fitted priors (a config preset plus overrides) and scores the
ensemble's correction ``U_net = U_model - U_priors`` (kJ/mol) over the AA frames by

    dG = -kT ln <exp(-U_net/kT)>_alpha_R + kT ln <exp(-U_net/kT)>_beta   (kJ/mol)

the shift the network applies to alpha_R's free energy relative to beta (0 for a
network that leaves the priors' populations alone); averages over the phi-biased
shipped frames are Boltzmann-weighted (:func:`cgjax.observables.frame_weights`).
What the data ask for is ``kT ln(p_beta / p_alpha_R)`` of the priors-only model
minus that of the AA data.

    PYTHONPATH=. python scripts/alanine_basin_offset.py cgschnet \
        --set priors.harmonic_fit="'boltzmann'" --set schnet.n_rbf=8 --seed 0

Prints one JSON line (dG, mean U_net difference, validation RMSE in kcal/mol/Å).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import datasets, observables, potentials, train, units

_HERE = os.path.dirname(os.path.abspath(__file__))


def _experiment():
    path = os.path.join(_HERE, "..", "experiments", "alanine_cgschnet.py")
    spec = importlib.util.spec_from_file_location("alanine_cgschnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _config(preset: str, overrides: list[str], seed: int):
    spec = importlib.util.spec_from_file_location(
        "alanine_config", os.path.join(_HERE, "..", "configs", "alanine_cgschnet.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    c = mod.get_config(preset)
    c.seed = seed
    for item in overrides:
        key, value = item.split("=", 1)
        *path, last = key.split(".")
        node = c
        for p in path:
            node = node[p]
        node[last] = ast.literal_eval(value)
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("network", choices=("cgnet", "cgschnet"))
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--set", action="append", default=[], help="key=python-literal override")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-stride", type=int, default=5, help="every k-th AA frame scored")
    args = ap.parse_args()
    exp = _experiment()
    config = _config(args.preset, args.set, args.seed)
    all_frames = datasets.load(config.dataset)
    frames = all_frames.select(slice(None, None, int(config.frame_stride)))
    topology = exp._topology(config)
    # the shipped set is phi-biased: priors and averages over AA frames take its weights
    w_train = observables.frame_weights(frames, temperature_K=config.temperature)
    prior, _ = exp._priors(frames, topology, config, types.SimpleNamespace(log=print), w_train)
    net = exp._networks(config, topology, frames)[args.network]
    base = exp._model(
        potentials.Sum(terms=(*prior.terms, (args.network, net))),
        frames,
        exp._species(config, args.network, frames),
    )
    prior_model = exp._model(prior, frames)
    settings = train.FMSettings.from_config(
        config.train, seed=config.seed, frozen=train.PRIOR_TERMS
    )
    t0 = time.time()
    stacked, metrics = train.fit_kfold_force_matching(
        base, frames, settings, n_folds=int(config.n_folds), workdir=None, progress=False
    )
    wall = time.time() - t0
    R = jnp.asarray(all_frames.positions[:: args.eval_stride])
    w_all = observables.frame_weights(all_frames, temperature_K=config.temperature)
    w = np.ones(len(R)) if w_all is None else w_all[:: args.eval_stride]
    p_prior = prior_model.init_fn(jax.random.key(0), R[0])
    e_model = jax.jit(jax.vmap(train.ensemble_energy_fn(base, stacked)))
    e_prior = jax.jit(jax.vmap(prior_model.energy_fn(p_prior)))
    u = np.concatenate(
        [
            np.asarray(e_model(R[i : i + 4096]) - e_prior(R[i : i + 4096]))
            for i in range(0, len(R), 4096)
        ]
    )
    kT = units.kB * config.temperature
    a = np.rad2deg(observables.ramachandran(np.asarray(R)))
    beta = (a[:, 0] < 0) & ((a[:, 1] > 50) | (a[:, 1] < -120))
    alpha = (a[:, 0] < 0) & ~beta

    def f(mask):  # -kT ln <exp(-U_net / kT)> over the basin, Boltzmann-weighted
        x = -u[mask] / kT
        return -kT * (np.log(np.average(np.exp(x - x.max()), weights=w[mask])) + x.max())

    def mean(mask):
        return np.average(u[mask], weights=w[mask])

    out = {
        "network": args.network,
        "seed": args.seed,
        "overrides": args.set,
        "dG_alphaR_minus_beta_kJ": round(float(f(alpha) - f(beta)), 3),
        "mean_U_alphaR_minus_beta_kJ": round(float(mean(alpha) - mean(beta)), 3),
        "val_rmse_kcal_A": round(float(metrics["val_force_rmse_mean_kcal_per_mol_per_A"]), 3),
        "train_wall_s": round(wall, 1),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
