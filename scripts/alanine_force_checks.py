"""Two checks of the alanine data and of BAOAB on it (paper 001, issue 18 diagnostics).

``torque``: the mapped forces against the phi/psi distribution. Rotating the end bead
of a dihedral about its middle bond (C_ACE about N->CA for phi, N_NME about CA->C for
psi) changes that dihedral only (no bond or angle), and the rotation is
volume-preserving, so the weighted mean torque of the mapped forces in a bin of the
dihedral is the mean force -dA/dx with ``A = -kT ln p(x)`` (kJ/mol, x in rad). The
script integrates the mean torque over the bins, starting from the least populated
one, and prints its largest difference from A of the weighted histogram over bins
whose density exceeds ``--min-density`` (1/rad). ``--force-scale 0.9`` shows what a
10 % error in the forces does.

``temperature``: the kinetic temperature ``2 KE / (3N kB)`` of a preset's
priors-only model under BAOAB at several time steps, and the five bond lengths'
means and widths (nm), against the AA's.

    PYTHONPATH=. python scripts/alanine_force_checks.py torque [--bins 36] [--min-density 0.05]
    PYTHONPATH=. python scripts/alanine_force_checks.py temperature [--dt-fs 2,1,0.5]
"""

from __future__ import annotations

import argparse
import os
import types

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import datasets, observables, simulate
from cgjax.config import load_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# bead order C_ACE, N, CA, C, N_NME, CB; (end bead, axis from, axis to, d dihedral / d rotation)
ROTATIONS = {"phi": (0, 1, 2, -1.0), "psi": (4, 2, 3, 1.0)}


def torque_check(R, F, w, temperature_K, *, bins, min_density, force_scale):
    angles = observables.ramachandran(R)  # rad
    out = {}
    for col, (name, (end, a, b, sign)) in enumerate(ROTATIONS.items()):
        x = angles[:, col]
        u = R[:, b] - R[:, a]
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        # generalized force conjugate to the dihedral: torque about the axis
        lever = R[:, end] - R[:, a]
        tau = sign * np.einsum("ij,ij->i", np.cross(lever, force_scale * F[:, end]), u)
        fes = observables.free_energy_surface(x, temperature_K, n_bins=bins, weights=w)
        h = fes.edges[1] - fes.edges[0]
        density = fes.counts / fes.counts.sum() / h  # 1/rad
        A = fes.free_energy  # kJ/mol, inf on empty bins (never inside the compared ones)
        idx = np.clip(np.digitize(x, fes.edges) - 1, 0, bins - 1)
        mean_tau = np.bincount(idx, w * tau, bins) / np.maximum(fes.counts, 1e-300)
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
    p.add_argument("check", choices=["torque", "temperature"])
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
    else:
        frames = frames.select(slice(None, None, 4))
        w = observables.frame_weights(frames)
        temperature_check(frames, w, [float(x) for x in a.dt_fs.split(",")], a.replicas, a.preset)


if __name__ == "__main__":
    main()
