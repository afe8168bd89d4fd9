"""OpenMM running an exported table against cgjax running the same model: forces and RDF.

    PYTHONPATH=. python scripts/export_openmm_md.py --model lj --ps 40 --out /tmp/export_md
    PYTHONPATH=. python scripts/export_openmm_md.py --model ibi --ps 100 --out /tmp/export_ibi

On the shipped argon (864 atoms, 94.4 K, last frame as the start): the model
(argon's LJ; a SplinePair fitted to the argon PMF ``-kT ln g``, IBI's starting
point; or that spline after ``--ibi-updates`` IBI updates of ``--ibi-ps`` each
against the shipped argon RDF, ``train.ibi_trainer``) is tabulated with
:func:`cgjax.export.pair_table`, run in OpenMM through
:func:`cgjax.export.openmm_force` (LangevinMiddle, CPU platform) and in cgjax
(``simulate.sample``, BAOAB Langevin), both at the same time step, friction
and length. It reports the force error on the start frame, and the RDF TAE
between the engines next to the statistical noise: the TAE between the two
halves of each engine's own production (halves of equal length are compared
across engines too, so every TAE is between runs of the same length).
Writes ``results.json`` and ``rdf.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import datasets, export, observables, potentials, simulate, train, units

SIGMA, EPS = 0.3405, 0.996  # nm, kJ/mol
CUT, ONSET = 3.3 * SIGMA, 3.0 * SIGMA
MASS, TEMPERATURE = 39.948, 94.4  # amu, K


def _model(which: str, args=None):
    if which == "ibi":
        return _ibi_model(args)
    if which == "lj":
        term = potentials.LennardJones(sigma=SIGMA, epsilon=EPS, cutoff=CUT, r_onset=ONSET)
        return term, {"sigma": jnp.full((1, 1), SIGMA), "epsilon": jnp.full((1, 1), EPS)}, 0.25
    rdf = datasets.load_observables("argon_864")["rdf"]
    r, g = np.asarray(rdf["r_nm"]), np.asarray(rdf["g"])
    keep = (g > 0.02) & (r < CUT)
    term = potentials.SplinePair(n_basis=32, r_min=float(r[keep][0]), cutoff=CUT)
    basis = np.asarray(term.basis(jnp.asarray(r[keep])))
    coef, *_ = np.linalg.lstsq(basis, -units.kT(TEMPERATURE) * np.log(g[keep]), rcond=None)
    return term, {"coefficients": jnp.asarray(coef.reshape(1, 1, -1))}, None


def _ibi_model(args):
    """SplinePair fitted by IBI to the shipped argon RDF (from the PMF; ``--ibi-updates``)."""
    rdf = datasets.load_observables("argon_864")["rdf"]
    target = (np.asarray(rdf["r_nm"]), np.asarray(rdf["g"]))
    frames = datasets.load("argon_864", wrapped=True)
    n = frames.positions.shape[1]
    system = simulate.System.create(box=np.asarray(frames.box), species=np.zeros(n, np.int32),
                                    masses=MASS)  # fmt: skip
    g = target[1]
    term = potentials.SplinePair(n_basis=32, r_min=float(target[0][np.argmax(g > 0.02)]),
                                 cutoff=CUT)  # fmt: skip
    model = potentials.energy_model(term, system=system)
    R0 = np.asarray(frames.positions[0], np.float32)
    pmf = train.potential_of_mean_force(model, model.init_fn(jax.random.key(0), R0), target,
                                        TEMPERATURE)  # fmt: skip
    every = int(round(args.every / args.dt))
    protocol = simulate.Protocol(
        temperature=TEMPERATURE, dt=args.dt, thermostat="langevin", friction=args.friction,
        equilibration_steps=10 * every, production_steps=int(round(args.ibi_ps / args.dt)),
        record_every=every, seed=args.seed + 7,
    )  # fmt: skip
    params32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), pmf)
    tr = train.ibi_trainer(model, target, protocol, R0=R0)
    state = tr.init(params32)
    for k in range(args.ibi_updates):
        state, m = tr.update(state)
        print(f"IBI {k}: {m['summary']} ({m['wall_s']:.0f} s)", flush=True)
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), state.params)
    return term, params, None


def _openmm_run(table, R0, box, args):
    import openmm

    n = len(R0)
    system = openmm.System()
    for _ in range(n):
        system.addParticle(MASS)
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*box[:, k]) for k in range(3)])
    system.addForce(export.openmm_force(table, np.zeros(n, int)))
    system.addForce(openmm.CMMotionRemover())
    integ = openmm.LangevinMiddleIntegrator(TEMPERATURE, args.friction, args.dt)
    integ.setRandomNumberSeed(args.seed + 1)
    platform = openmm.Platform.getPlatformByName("CPU")
    ctx = openmm.Context(system, integ, platform, {"Threads": "2"})
    ctx.setPositions(R0)
    ctx.setVelocitiesToTemperature(TEMPERATURE, args.seed + 1)
    steps_eq, steps_rec = int(round(args.eq / args.dt)), int(round(args.every / args.dt))
    integ.step(steps_eq)
    frames = []
    for _ in range(int(round(args.ps / args.every))):
        integ.step(steps_rec)
        st = ctx.getState(getPositions=True, enforcePeriodicBox=True)
        frames.append(st.getPositions(asNumpy=True)._value)
    return np.asarray(frames)


def _forces(term, params, table, R, box):
    import openmm

    n = len(R)
    model = potentials.energy_model(term, species=np.zeros(n, np.int32), box=box)
    nbrs = model.neighbor_fn(skin=0.0).allocate(R)
    f_ref = np.asarray(model.force_fn(params)(jnp.asarray(R), neighbor=nbrs), np.float64)
    system = openmm.System()
    for _ in range(n):
        system.addParticle(MASS)
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*box[:, k]) for k in range(3)])
    system.addForce(export.openmm_force(table, np.zeros(n, int)))
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("Reference"))  # fmt: skip
    ctx.setPositions(R)
    f = np.asarray(ctx.getState(getForces=True).getForces(asNumpy=True)._value)
    return {
        "relative_frobenius": float(np.linalg.norm(f - f_ref) / np.linalg.norm(f_ref)),
        "max_abs_over_max": float(np.max(np.abs(f - f_ref)) / np.max(np.abs(f_ref))),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("lj", "spline", "ibi"), default="lj")
    p.add_argument("--ibi-updates", type=int, default=5, help="IBI updates (--model ibi)")
    p.add_argument("--ibi-ps", type=float, default=10.0, help="ps sampled per IBI update")
    p.add_argument("--ps", type=float, default=40.0, help="production per engine (ps)")
    p.add_argument("--eq", type=float, default=10.0, help="equilibration (ps)")
    p.add_argument("--dt", type=float, default=0.005, help="time step (ps)")
    p.add_argument("--every", type=float, default=0.2, help="frame interval (ps)")
    p.add_argument("--friction", type=float, default=1.0, help="Langevin friction (1/ps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="export_md")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    jax.config.update("jax_enable_x64", True)  # tables in float64; the MD runs float32
    frames = datasets.load("argon_864", wrapped=True)
    R0, box = np.asarray(frames.positions[-1], np.float64), np.asarray(frames.box, np.float64)
    term, params, r_min = _model(args.model, args)
    table = export.pair_table(term, params, r_min=r_min, dr=0.0005)
    out = {"model": args.model, "args": vars(args), "forces": _forces(term, params, table, R0, box)}
    print("forces on the start frame:", out["forces"], flush=True)

    t = time.time()
    omm = _openmm_run(table, R0, box, args)
    out["openmm_wall_s"] = time.time() - t
    print(f"OpenMM {len(omm)} frames in {out['openmm_wall_s']:.0f} s", flush=True)

    n = len(R0)
    system = simulate.System.create(box=box, species=np.zeros(n, np.int32), masses=MASS)
    model = potentials.energy_model(term, system=system)
    params32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    every = int(round(args.every / args.dt))
    protocol = simulate.Protocol(
        temperature=TEMPERATURE, dt=args.dt, thermostat="langevin", friction=args.friction,
        equilibration_steps=int(round(args.eq / args.dt / every)) * every,
        production_steps=int(round(args.ps / args.every)) * every, record_every=every,
        seed=args.seed,
    )  # fmt: skip
    t = time.time()
    cg = simulate.sample(model, params32, jnp.asarray(R0, jnp.float32), protocol)
    out["cgjax_wall_s"] = time.time() - t
    cgx = np.asarray(cg.trajectory.positions)
    print(f"cgjax {len(cgx)} frames in {out['cgjax_wall_s']:.0f} s", flush=True)

    def g_of(x):
        return observables.rdf(x, box, r_max=1.5, n_bins=300)

    h = len(cgx) // 2
    halves = {"omm_a": omm[:h], "omm_b": omm[h : 2 * h], "cg_a": cgx[:h], "cg_b": cgx[h : 2 * h]}
    g = {k: g_of(v) for k, v in halves.items()}
    r = np.asarray(g["omm_a"].r)

    def tae(a, b):
        return float(observables.total_absolute_error(r, g[a].g, g[b].g)) / units.angstrom

    within = [tae("omm_a", "omm_b"), tae("cg_a", "cg_b")]
    across = [tae(a, b) for a in ("omm_a", "omm_b") for b in ("cg_a", "cg_b")]
    g_omm, g_cg = g_of(omm), g_of(cgx)
    out["rdf_tae_angstrom"] = {
        "full_runs_openmm_vs_cgjax": float(observables.total_absolute_error(r, g_omm.g, g_cg.g))
        / units.angstrom,
        "halves_within_engine": within,
        "halves_across_engines": across,
        "across_over_within_mean": float(np.mean(across) / np.mean(within)),
    }
    out["temperature_cgjax_K"] = float(np.mean(cg.trajectory.temperature))
    print(json.dumps(out["rdf_tae_angstrom"], indent=1), flush=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(r / units.angstrom, g_omm.g, label=f"OpenMM (exported table), {args.ps:g} ps")
        ax.plot(r / units.angstrom, g_cg.g, "--", label=f"cgjax, {args.ps:g} ps")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.set_title(f"argon 864, {args.model}: OpenMM vs cgjax")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "rdf.png"), dpi=120)
    except ImportError:
        pass
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
