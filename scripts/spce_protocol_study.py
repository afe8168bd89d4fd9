"""SPC/E diffusion vs generation protocol (issue 23): segments from one equilibrated state.

    python scripts/spce_protocol_study.py --out /tmp/ref23/study --threads 1
    python scripts/spce_protocol_study.py --analyse /tmp/ref23/study_*tol*.npz \
        cgjax/datasets/spce_512.npz --json table.json

Protocol: 512 SPC/E at 300 K and 0.997 g/cm^3 (cgjax.reference's system),
PME tolerance 1e-4, lattice start, minimisation, ``--langevin`` ps
LangevinMiddle (1/ps), ``--nh-equilibration`` ps Nose-Hoover (1/ps). From that
one state (positions and velocities) three segments of ``--segment`` ps each:

- ``nh_tol1e-4``: Nose-Hoover (chain 3, 1/ps), Ewald tolerance 1e-4;
- ``nve_tol1e-4``: velocity Verlet (NVE), Ewald tolerance 1e-4;
- ``nh_tol5e-4``: Nose-Hoover, Ewald tolerance 5e-4 (OpenMM's default).

Each segment writes ``<out>_<name>.npz``: COM positions ``[T, N, 3]`` (nm,
unwrapped, float64) every 0.2 ps, the AA kinetic temperature (K) and the
potential and total energy (kJ/mol) per frame. The equilibration's
temperature series is written to ``<out>_equilibration.npz``. Analyse with
``cgjax.observables.diffusion_from_trajectory``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cgjax.reference import SYSTEMS, box_length, build_system, initial_positions
from cgjax.reference._generate import kinetic_temperature
from cgjax.reference._systems import molecule_index


def _context(openmm, system, integrator, threads):
    platform = openmm.Platform.getPlatformByName("CPU")
    return openmm.Context(system, integrator, platform, {"Threads": str(threads)})


def _run(openmm, ctx, integ, n_frames, n_save, masses, dof, cg_map, label):
    """Steps ``n_frames * n_save``; COM positions, T (K), U and E (kJ/mol) per frame."""
    from openmm import unit

    pos, temps, pots, tots = [], [], [], []
    t0 = time.perf_counter()
    for k in range(n_frames):
        integ.step(n_save)
        st = ctx.getState(getPositions=True, getVelocities=True, getEnergy=True)
        R = st.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        V = st.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
        U = st.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        K = st.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        pos.append(np.asarray(cg_map(np.asarray(R))))
        temps.append(kinetic_temperature(np.asarray(V), masses, dof))
        pots.append(U)
        tots.append(U + K)
        if (k + 1) % 50 == 0:
            rate = (k + 1) * n_save / (time.perf_counter() - t0)
            print(f"{label}: {k + 1}/{n_frames} frames, T {np.mean(temps[-50:]):.1f} K, "
                  f"{rate:.0f} steps/s", flush=True)  # fmt: skip
    return {
        "positions": np.stack(pos),
        "temperature": np.asarray(temps),
        "potential": np.asarray(pots),
        "total": np.asarray(tots),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--langevin", type=float, default=50.0)
    p.add_argument("--nh-equilibration", type=float, default=20.0)
    p.add_argument("--segment", type=float, default=100.0)
    p.add_argument("--segments", nargs="+", default=["nh_tol1e-4", "nve_tol1e-4", "nh_tol5e-4"])
    a = p.parse_args()
    import openmm

    spec = SYSTEMS["spce"]
    T, n, dt_ps, save = 300.0, 512, 0.002, 0.2
    n_save = round(save / dt_ps)
    L = box_length(n, spec.molecule.mass, 0.997)
    rng = np.random.default_rng(a.seed)
    systems = {tol: build_system(spec, n, L, cutoff=1.0, ewald_tolerance=tol)
               for tol in (1e-4, 5e-4)}  # fmt: skip
    sys0 = systems[1e-4]
    masses = np.asarray([sys0.getParticleMass(i)._value for i in range(sys0.getNumParticles())])
    dof = 3 * int(np.count_nonzero(masses)) - sys0.getNumConstraints() - 3
    idx = molecule_index(spec, n)
    w = masses / np.bincount(idx, masses)[idx]

    def cg_map(R):
        out = np.zeros((n, 3))
        np.add.at(out, idx, w[:, None] * R)
        return out

    lang = openmm.LangevinMiddleIntegrator(T, 1.0, dt_ps)
    lang.setRandomNumberSeed(a.seed + 1)
    ctx = _context(openmm, sys0, lang, a.threads)
    ctx.setPositions(initial_positions(spec, n, L, rng))
    openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, 0)
    ctx.setVelocitiesToTemperature(T, a.seed + 1)
    eq_l = _run(openmm, ctx, lang, round(a.langevin / save), n_save, masses, dof, cg_map,
                "langevin")  # fmt: skip
    st = ctx.getState(getPositions=True, getVelocities=True)
    nh = openmm.NoseHooverIntegrator(T, 1.0, dt_ps)
    ctx = _context(openmm, sys0, nh, a.threads)
    ctx.setPositions(st.getPositions())
    ctx.setVelocities(st.getVelocities())
    eq_nh = _run(openmm, ctx, nh, round(a.nh_equilibration / save), n_save, masses, dof,
                 cg_map, "nh-equilibration")  # fmt: skip
    start = ctx.getState(getPositions=True, getVelocities=True)
    np.savez(f"{a.out}_equilibration.npz", langevin_T=eq_l["temperature"],
             nh_T=eq_nh["temperature"], nh_U=eq_nh["potential"], box=L)  # fmt: skip
    n_frames = round(a.segment / save)
    for name in a.segments:
        kind, tol = name.split("_tol")
        integ = (openmm.NoseHooverIntegrator(T, 1.0, dt_ps) if kind == "nh"
                 else openmm.VerletIntegrator(dt_ps))  # fmt: skip
        ctx = _context(openmm, systems[float(tol)], integ, a.threads)
        ctx.setPositions(start.getPositions())
        ctx.setVelocities(start.getVelocities())
        t0 = time.perf_counter()
        res = _run(openmm, ctx, integ, n_frames, n_save, masses, dof, cg_map, name)
        np.savez(f"{a.out}_{name}.npz", **res, box=L, dt=save, wall_s=time.perf_counter() - t0)
        print(f"{name}: <T> {res['temperature'].mean():.2f} K, "
              f"E drift {res['total'][-1] - res['total'][0]:.1f} kJ/mol", flush=True)  # fmt: skip


def analyse(paths: list[str]) -> list[dict]:
    """D (cm^2/s) with block errors, <T> (K) and the NVE energy drift of study or shipped files.

    Two fits of the COM-removed MSD (``cgjax.observables.diffusion_from_trajectory``),
    each with blocks of the same length in every file, so the error bars compare:
    2-10 ps in 20-ps blocks and 5-20 ps in 25-ps blocks. ``.npz`` files of this
    study hold ``positions``/``temperature``/``total``; anything else is read as
    :class:`cgjax.data.Frames` (its ``metadata["aa_temperature"]``).
    """
    from cgjax import data
    from cgjax.observables import diffusion_from_trajectory

    rows = []
    for path in paths:
        raw = np.load(path, allow_pickle=True)
        if "format" in raw.files:
            f = data.Frames.load(path)
            x, dt = np.asarray(f.positions, np.float64), float(f.dt)
            T, drift = np.asarray(f.metadata["aa_temperature"]), None
        else:
            x, dt, T = raw["positions"], float(raw["dt"]), raw["temperature"]
            E = raw["total"]
            n = x.shape[1]  # kJ/mol per molecule per ns, from a linear fit
            t_ns = np.arange(len(E)) * dt * 1e-3
            drift = float(np.polyfit(t_ns, E, 1)[0] / n)
        row = {"file": path, "length_ps": round(len(x) * dt, 3), "T_mean_K": float(T.mean())}
        nb_T = max(2, round(len(x) * dt / 20))
        row["T_sem_K"] = float(np.std([b.mean() for b in np.array_split(T, nb_T)], ddof=1)
                               / np.sqrt(nb_T))  # fmt: skip
        for window, block_ps in (((2.0, 10.0), 20.0), ((5.0, 20.0), 25.0)):
            nb = round(len(x) * dt / block_ps)
            d = diffusion_from_trajectory(x, dt, fit_window=window, n_blocks=nb)
            key = f"D_{window[0]:g}_{window[1]:g}"
            row[key] = float(d.D) / 100.0  # nm^2/ps -> cm^2/s
            row[key + "_err"] = float(d.D_err) / 100.0
            row[key + "_blocks"] = [round(float(v) / 100.0, 9) for v in d.D_blocks]
        row["nve_drift_kJ_per_mol_ns_molecule"] = drift
        rows.append(row)
        print(f"{path}: {row['length_ps']} ps, <T> {row['T_mean_K']:.2f} +- {row['T_sem_K']:.2f} K,"
              f" D(2-10) {row['D_2_10'] * 1e5:.3f} +- {row['D_2_10_err'] * 1e5:.3f},"
              f" D(5-20) {row['D_5_20'] * 1e5:.3f} +- {row['D_5_20_err'] * 1e5:.3f} e-5 cm2/s"
              + ("" if drift is None else f", NVE drift {drift:.4f} kJ/mol/ns/mol"))  # fmt: skip
    return rows


if __name__ == "__main__":
    import sys

    if "--analyse" in sys.argv:
        argv = sys.argv[sys.argv.index("--analyse") + 1 :]
        out = None
        if "--json" in argv:
            out = argv[argv.index("--json") + 1]
            argv = argv[: argv.index("--json")]
        table = analyse(argv)
        if out:
            import json

            with open(out, "w") as fh:
                json.dump(table, fh, indent=1)
    else:
        main()
