"""Checks of the alanine data, trained models and BAOAB (paper 001, issue 18 diagnostics).

``torque``: the mapped forces against the phi/psi distribution. Rotating the end bead
of a dihedral about its middle bond (C_ACE about N->CA for phi, N_NME about CA->C for
psi) changes that dihedral only (no bond or angle), and the rotation is
volume-preserving, so the weighted mean torque of the mapped forces in a bin of the
dihedral is the mean force -dA/dx with ``A = -kT ln p(x)`` (kJ/mol, x in rad). The
script integrates the mean torque over the bins, starting from the least populated
one, and prints its largest difference from A of the weighted histogram over bins
whose density exceeds ``--min-density`` (1/rad). ``--force-scale 0.9`` shows what a
10 % error in the forces does.

``model-torque``: the same mean torque, per bin of phi and psi, of a trained run's
ensemble-mean forces (CGnet and CGSchNet, read from the run's ``train_<model>``
checkpoints; the run's config is read from its ``config.json``) on every other AA
frame, against the mapped forces' (kJ/mol/rad), and its weighted RMS error over bins
with density > ``--min-density``. Force matching's optimum has the data's conditional
mean force, so this tells how much of the backbone free energy's gradient a network
learned, on the data's own distribution and without simulating.

``fes-errors``: where a finished run's FES MSE (paper 001 eq. 15, over the 60 x 60
bins both histograms fill) comes from: each model's squared bin free-energy errors
split by the AA free energy of the bin (kJ/mol above the AA minimum) and by the CG
count in it, with the mean signed error ``kT (ln p_AA - ln p_CG)`` (negative: the CG
run oversamples), and a coarse ``--coarse`` x ``--coarse`` map of that signed error
(rows phi, columns psi, from -180 deg). Reads the run's ``phi_psi_<model>.npz``.

``temperature``: the kinetic temperature ``2 KE / (3N kB)`` of a preset's
priors-only model under BAOAB at several time steps, and the five bond lengths'
means and widths (nm), against the AA's.

    PYTHONPATH=. python scripts/alanine_force_checks.py torque [--bins 36] [--min-density 0.05]
    PYTHONPATH=. python scripts/alanine_force_checks.py model-torque --workdir WORKDIR
    PYTHONPATH=. python scripts/alanine_force_checks.py fes-errors --workdir WORKDIR [--coarse 12]
    PYTHONPATH=. python scripts/alanine_force_checks.py temperature [--dt-fs 2,1,0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cgjax import datasets, observables, potentials, simulate, train, units
from cgjax.config import load_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# bead order C_ACE, N, CA, C, N_NME, CB; (end bead, axis from, axis to, d dihedral / d rotation)
ROTATIONS = {"phi": (0, 1, 2, -1.0), "psi": (4, 2, 3, 1.0)}


def torques(R, F):
    """``{"phi": [T], "psi": [T]}``: each frame's torque of ``F`` (kJ/mol/nm) on the end
    bead about the dihedral's middle bond, i.e. the force conjugate to the dihedral
    (kJ/mol/rad)."""
    out = {}
    for name, (end, a, b, sign) in ROTATIONS.items():
        u = R[:, b] - R[:, a]
        u = u / np.linalg.norm(u, axis=1, keepdims=True)
        lever = R[:, end] - R[:, a]
        out[name] = sign * np.einsum("ij,ij->i", np.cross(lever, F[:, end]), u)
    return out


def mean_torque_per_bin(x, tau, w, temperature_K, bins):
    """``(fes, mean_tau [bins], density [bins])``: the weighted FES of dihedral ``x`` (rad),
    the weighted mean of ``tau`` (kJ/mol/rad) in each of its bins, and the bins' density
    (1/rad)."""
    fes = observables.free_energy_surface(x, temperature_K, n_bins=bins, weights=w)
    h = fes.edges[1] - fes.edges[0]
    idx = np.clip(np.digitize(x, fes.edges) - 1, 0, bins - 1)
    mean_tau = np.bincount(idx, w * tau, bins) / np.maximum(fes.counts, 1e-300)
    return fes, mean_tau, fes.counts / fes.counts.sum() / h


def torque_check(R, F, w, temperature_K, *, bins, min_density, force_scale):
    angles = observables.ramachandran(R)  # rad
    out = {}
    tau_all = torques(R, force_scale * F)
    for col, name in enumerate(ROTATIONS):
        fes, mean_tau, density = mean_torque_per_bin(angles[:, col], tau_all[name], w,
                                                     temperature_K, bins)  # fmt: skip
        h = fes.edges[1] - fes.edges[0]
        A = fes.free_energy  # kJ/mol, inf on empty bins (never inside the compared ones)
        order = (int(np.argmin(density)) + np.arange(bins)) % bins
        m = mean_tau[order]
        A_path = -np.concatenate([[0.0], np.cumsum(0.5 * (m[1:] + m[:-1]) * h)])
        A_int = np.empty(bins)
        A_int[order] = A_path
        ok = density > min_density
        A_int += np.average((A - A_int)[ok], weights=density[ok])
        out[name] = (float(np.abs(A - A_int)[ok].max()), int(ok.sum()))
        print(f"{name}: max |A - integrated mean torque| = {out[name][0]:.3f} kJ/mol over "
              f"{out[name][1]} bins with density > {min_density} /rad")  # fmt: skip
    return out


def model_torque_check(workdir, frames, w, *, bins, min_density):
    """Mean torque per bin of the run's CGnet and CGSchNet ensembles against the data's."""
    experiment = load_module(os.path.join(ROOT, "experiments", "alanine_cgschnet.py"), "exp")
    path = os.path.join(workdir, "config.json")
    for need in (path, os.path.join(workdir, "results.json")):
        if not os.path.exists(need):  # an unfinished run's ensembles would train on here
            raise FileNotFoundError(f"{need} missing: --workdir must be a finished run")
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    train_frames = frames.select(slice(None, None, int(config.frame_stride)))
    w_train = observables.frame_weights(train_frames, temperature_K=config.temperature)
    quiet = types.SimpleNamespace(log=lambda line: None)
    topology = experiment._topology(config)
    prior, _ = experiment._priors(train_frames, topology, config, quiet, w_train)
    nets = experiment._networks(config, topology, train_frames)
    settings = train.FMSettings.from_config(config.train, seed=config.seed,
                                            frozen=train.PRIOR_TERMS)  # fmt: skip
    ev = frames.select(slice(None, None, 2))
    w_ev = w[::2] / w[::2].sum()
    R = np.asarray(ev.positions, np.float64)
    angles = observables.ramachandran(R)

    def per_bin(tau):  # {angle: (mean torque, density)} per bin
        out = {}
        for col, name in enumerate(ROTATIONS):
            _, mean_tau, density = mean_torque_per_bin(
                angles[:, col], tau[name], w_ev, config.temperature, bins
            )
            out[name] = (mean_tau, density)
        return out

    data = per_bin(torques(R, np.asarray(ev.forces, np.float64)))
    for name in ("cgnet", "cgschnet"):
        ckpt = os.path.join(workdir, f"train_{name}", "checkpoints")
        if not os.path.isdir(ckpt):
            raise FileNotFoundError(f"{ckpt}: no checkpoints of the {name} ensemble")
        species = experiment._species(config, name, train_frames)
        terms = potentials.Sum(terms=(*prior.terms, (name, nets[name])))
        model = experiment._model(terms, train_frames, species)
        stacked, _ = train.fit_kfold_force_matching(
            model, train_frames, settings, n_folds=int(config.n_folds),
            workdir=os.path.join(workdir, f"train_{name}"), progress=False,
        )  # fmt: skip
        energy = train.ensemble_energy_fn(model, stacked)
        force = jax.jit(jax.vmap(jax.grad(lambda r, e=energy: -e(r))))
        F = np.concatenate([np.asarray(force(jnp.asarray(R[i : i + 2048], jnp.float32)))
                            for i in range(0, len(R), 2048)])  # fmt: skip
        fit = per_bin(torques(R, F.astype(np.float64)))
        for angle in ROTATIONS:
            (m_data, density), (m_model, _) = data[angle], fit[angle]
            ok = density > min_density
            rms = np.sqrt(np.average((m_model - m_data)[ok] ** 2, weights=density[ok]))
            print(f"{name} {angle}: RMS(model - data) mean torque {rms:.2f} kJ/mol/rad over "
                  f"{ok.sum()} bins; data {np.round(m_data[ok], 1).tolist()}, model "
                  f"{np.round(m_model[ok], 1).tolist()}")  # fmt: skip


def fes_error_check(workdir, frames, w, *, n_bins=60, coarse=12):
    """Prints each model's FES MSE split by AA free-energy band and by CG count per bin."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} missing: --workdir must be an alanine_cgschnet run")
    with open(path) as f:
        T = float(json.load(f)["temperature"])
    ref_pp = observables.ramachandran(frames.positions)

    def density(pp, weights, bins):
        counts = observables.free_energy_surface(pp, T, weights=weights, n_bins=bins).counts
        return counts, counts / counts.sum()

    _, p = density(ref_pp, w, n_bins)
    kT = units.kT(T)  # kJ/mol
    F = -kT * np.log(np.where(p > 0, p, 1.0))
    F = F - F[p > 0].min()  # kJ/mol above the AA minimum
    _, p_coarse = density(ref_pp, w, coarse)
    for name in ("priors", "cgnet", "cgschnet"):
        file = os.path.join(workdir, f"phi_psi_{name}.npz")
        if not os.path.exists(file):
            print(f"{name}: no {file} (not simulated, or the run stopped before)")
            continue
        pp = np.load(file)["phi_psi"]
        counts, q = density(pp, None, n_bins)
        both = (p > 0) & (q > 0)
        d = kT * (np.log(np.where(both, p, 1.0)) - np.log(np.where(both, q, 1.0)))
        total = np.sum(d[both] ** 2)
        print(f"{name}: MSE {total / both.sum():.2f} (kJ/mol)^2 over {both.sum()} bins; "
              f"mean signed error {d[both].mean():+.2f} kJ/mol")  # fmt: skip
        bands = [
            ("AA F", F, ((0, 5), (5, 10), (10, 15), (15, np.inf)), "kJ/mol"),
            ("CG count", counts, ((1, 1), (2, 3), (4, 9), (10, 99), (100, np.inf)), ""),
        ]
        for label, x, edges, unit in bands:
            for lo, hi in edges:
                s = both & (x >= lo) & (x <= hi if label == "CG count" else x < hi)
                if s.any():
                    print(f"  {label} {lo:g}-{hi:g}{' ' + unit if unit else ''}: {s.sum()} bins, "
                          f"{np.sum(d[s] ** 2) / total:.0%} of the squared error, mean "
                          f"{d[s].mean():+.2f} kJ/mol")  # fmt: skip
        _, q_coarse = density(pp, None, coarse)
        ok = (p_coarse > 0) & (q_coarse > 0)
        dc = np.where(ok, kT * (np.log(np.where(ok, p_coarse, 1.0))
                                - np.log(np.where(ok, q_coarse, 1.0))), np.nan)  # fmt: skip
        with np.printoptions(precision=1, suppress=True, linewidth=160, nanstr="  .  "):
            print(f"  kT ln(p_AA / p_CG) on {coarse} x {coarse} bins (kJ/mol; rows phi, "
                  f"columns psi, from -180 deg; '.': a histogram is empty):\n{dc}")  # fmt: skip


def temperature_check(frames, w, dts_fs, replicas, preset):
    experiment = load_module(os.path.join(ROOT, "experiments", "alanine_cgschnet.py"), "exp")
    configs = load_module(os.path.join(ROOT, "configs", "alanine_cgschnet.py"), "cfg")
    config = configs.get_config(preset)
    quiet = types.SimpleNamespace(log=lambda line: None)
    prior, _ = experiment._priors(frames, experiment._topology(config), config, quiet, w)
    model = experiment._model(prior, frames)
    params = model.init_fn(jax.random.key(0), jnp.asarray(frames.positions[0]))
    starts = experiment._starts(frames, replicas, 0, w)
    bonds = np.asarray(config.topology.bonds)

    def lengths(R):
        R = R.reshape(-1, 6, 3)
        return np.linalg.norm(R[:, bonds[:, 0]] - R[:, bonds[:, 1]], axis=-1)

    aa = lengths(frames.positions)
    mean = np.average(aa, 0, weights=w)
    sd = np.sqrt(np.average((aa - mean) ** 2, 0, weights=w))
    print(f"AA: bond means {np.round(mean, 5)} nm, widths {np.round(sd, 5)} nm")
    n = 6
    for dt_fs in dts_fs:
        dt = dt_fs / 1000
        protocol = simulate.Protocol(
            temperature=300.0, dt=dt, thermostat="langevin", friction=1.0,
            equilibration_steps=int(round(1 / dt)), production_steps=int(round(30 / dt)),
            record_every=int(round(0.5 / dt)), skin=None, seed=0,
        )  # fmt: skip
        out, _ = simulate.sample_replicas(model, params, starts, protocol, progress=False)
        # the runner counts 3N - 3 degrees of freedom; Langevin in free space thermalises 3N
        T = np.asarray(out.trajectory.temperature) * (3 * n - 3) / (3 * n)
        b = lengths(np.asarray(out.trajectory.positions))
        print(f"dt {dt_fs:g} fs: T {T.mean():.1f} K; bond means {np.round(b.mean(0), 5)} nm, "
              f"widths {np.round(b.std(0), 5)} nm", flush=True)  # fmt: skip


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("check", choices=["torque", "model-torque", "fes-errors", "temperature"])
    p.add_argument("--workdir", help="a finished alanine_cgschnet run (model-torque, fes-errors)")
    p.add_argument("--coarse", type=int, default=12, help="bins per axis of fes-errors' map")
    p.add_argument("--bins", type=int, default=36)
    p.add_argument("--min-density", type=float, default=0.05, help="1/rad")
    p.add_argument("--force-scale", type=float, default=1.0)
    p.add_argument("--dt-fs", default="2,1,0.5")
    p.add_argument("--replicas", type=int, default=64)
    p.add_argument("--preset", default="quick_phi_psi_prior", help="whose priors (temperature)")
    a = p.parse_args(argv)
    frames = datasets.load("alanine_dipeptide")
    if a.check == "torque":
        w = observables.frame_weights(frames)
        w = np.full(frames.n_frames, 1.0 / frames.n_frames) if w is None else w
        R = np.asarray(frames.positions, np.float64)
        F = np.asarray(frames.forces, np.float64)
        torque_check(R, F, w, float(frames.temperature), bins=a.bins, min_density=a.min_density,
                     force_scale=a.force_scale)  # fmt: skip
    elif a.check == "model-torque":
        if not a.workdir:
            p.error("model-torque needs --workdir")
        w = observables.frame_weights(frames)
        w = np.full(frames.n_frames, 1.0 / frames.n_frames) if w is None else w
        model_torque_check(a.workdir, frames, w, bins=a.bins, min_density=a.min_density)
    elif a.check == "fes-errors":
        if not a.workdir:
            p.error("fes-errors needs --workdir")
        fes_error_check(a.workdir, frames, observables.frame_weights(frames), coarse=a.coarse)
    else:
        frames = frames.select(slice(None, None, 4))
        w = observables.frame_weights(frames)
        temperature_check(frames, w, [float(x) for x in a.dt_fs.split(",")], a.replicas, a.preset)


if __name__ == "__main__":
    main()
