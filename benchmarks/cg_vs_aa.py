"""CG against the all-atom model it replaces: ns/day of each on the same water, one run.

All-atom: OpenMM's SPC/E (rigid, SETTLE), 512 waters, PME (1.0 nm real-space
cutoff, Ewald tolerance 5e-4), Nose-Hoover at 300 K, 2 fs, OpenMM's CPU
platform (all threads), built by ``cgjax.reference`` as the shipped data were.
CG: the 512 mapped beads of the shipped ``spce_512`` data with paper 004's model
``U_GNN + U_LJ + U_HF`` (GNN 16 features, 2 layers, 20 RBF, 0.6 nm; LJ at the
quick run's REM sigma, epsilon; HF at its tuned A, omega = 1000 1/nm),
Nose-Hoover (tau 0.2 ps) at 1 fs, the paper's step, through ``simulate.run``
(the runner every experiment uses, with its per-step checks), float32. Then
every other zoo model (SchNet, DeepPot-SE, HIP-NN-TS, NequIP, Allegro; the
hyperparameters of ``benchmarks/force_matching.py``) on top of the same LJ,
at 1 fs. Untrained network weights: the cost of a step does not depend on
their values (the trained model's ``--params`` can be given); each model's
last layer is scaled by 1e-3 so the untrained network perturbs the LJ liquid
without heating it, and the script reports the temperature of every run.

    python benchmarks/cg_vs_aa.py [--steps 2000] [--aa-steps 500] [--rounds 5]
        [--models paper004,schnet,deeppot,hipnn,nequip,allegro] [--skin 0.03]
        [--params PATH.msgpack] [--json out.json]
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from force_matching import MODELS  # noqa: E402

from cgjax import datasets, potentials, reference, simulate, units  # noqa: E402

QUIET = simulate.Monitor(progress=False)  # runs without progress bars

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK = os.path.join(HERE, "..", "docs", "results", "spce_dynamics_quick", "results.json")
TEMPERATURE = 300.0
CG_DT = 0.001  # ps, paper 004
AA_DT = 0.002  # ps


def ns_per_day(steps_per_s: float, dt_ps: float) -> float:
    return steps_per_s * dt_ps * 86400.0 / 1000.0


def openmm_spce(seed: int = 0):
    """OpenMM's all-atom SPC/E, 512 waters, PME, Nose-Hoover, 2 fs, equilibrated.

    Returns ``(info, timed)``: ``timed(n)`` runs ``n`` steps and returns
    ``{"steps_per_s", "T_K" (K), "reallocations"}`` of that round.
    """
    openmm = reference.require_openmm()
    from cgjax.reference._systems import SYSTEMS, box_length, build_system, initial_positions

    spec = SYSTEMS["spce"]
    L = box_length(spec.n_molecules, spec.molecule.mass, spec.density)
    system = build_system(spec, spec.n_molecules, L, cutoff=spec.cutoff)
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            force.setEwaldErrorTolerance(5e-4)
    R = initial_positions(spec, spec.n_molecules, L, np.random.default_rng(seed))
    platform = openmm.Platform.getPlatformByName("CPU")
    warm = openmm.LangevinMiddleIntegrator(TEMPERATURE, 1.0, AA_DT)
    ctx = openmm.Context(system, warm, platform)
    ctx.setPositions(R)
    openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, 500)
    ctx.setVelocitiesToTemperature(TEMPERATURE, seed + 1)
    warm.step(1000)  # 2 ps: melt the lattice
    state = ctx.getState(getPositions=True, getVelocities=True)
    nh = openmm.NoseHooverIntegrator(TEMPERATURE, 1.0, AA_DT)
    ctx = openmm.Context(system, nh, platform)
    ctx.setState(state)
    nh.step(100)  # warm-up
    n_dof = 3 * system.getNumParticles() - system.getNumConstraints() - 3

    def timed(n_steps):
        t0 = time.perf_counter()
        nh.step(n_steps)
        s = ctx.getState(getEnergy=True)
        sps = n_steps / (time.perf_counter() - t0)
        ke = s.getKineticEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
        return {"steps_per_s": sps, "T_K": 2 * ke / (n_dof * units.kB), "reallocations": 0}

    info = {
        "name": "AA SPC/E (OpenMM)",
        "particles": system.getNumParticles(),
        "dt_fs": AA_DT * 1000,
        "threads": ctx.getPlatform().getPropertyValue(ctx, "Threads"),
    }
    return info, timed


def _scale_last_layer(tree, factor):
    """The network's output layer (the last ``kernel`` in flattening order) times ``factor``."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    last = [p for p in paths if "kernel" in jax.tree_util.keystr(p)][-1]
    return jax.tree_util.tree_map_with_path(lambda p, x: x * factor if p == last else x, tree)


def cg_model(name: str, frames, lj: dict, amplitude: float, params_path: str | None):
    """``(model, params)`` of a zoo model on top of the LJ (paper 004's adds U_HF)."""
    cls, hyper = MODELS["gnn" if name == "paper004" else name]
    nn = cls(**hyper)
    lj_term = potentials.LennardJones(sigma=lj["sigma_nm"], epsilon=lj["epsilon_kJ_per_mol"],
                                      cutoff=0.6, r_onset=0.5)  # fmt: skip
    terms = {"gnn" if name == "paper004" else "nn": nn, "lj": lj_term}
    if name == "paper004":
        terms["hf"] = potentials.HighFrequency(amplitude=amplitude, omega=1000.0, cutoff=0.6)
    pot = potentials.sum_of(**terms)
    species = np.zeros(frames.n_particles, np.int32)
    model = potentials.energy_model(pot, species=species, box=frames.box)
    R = jnp.asarray(frames.positions[-1], jnp.float32)
    # with a neighbor list: init_fn without one evaluates all N^2 pairs
    params = model.init_fn(jax.random.key(0), R, neighbor=model.neighbor_fn(skin=0.1).allocate(R))
    key = "gnn" if name == "paper004" else "nn"
    params = {**params, key: _scale_last_layer(params[key], 1e-3)}
    if params_path:
        from flax import serialization

        with open(params_path, "rb") as f:
            params = serialization.from_bytes(params, f.read())
    return model, params


def cg_run(name, frames, model, params, *, skin: float):
    """A CG model equilibrated and compiled; returns ``(info, timed)`` like :func:`openmm_spce`."""
    system = simulate.System.create(box=frames.box, species=np.zeros(frames.n_particles, np.int32),
                                    masses=np.asarray(frames.masses))  # fmt: skip
    kT = units.kB * TEMPERATURE
    e = model.energy_fn(params)
    R = jnp.asarray(frames.positions[-1], jnp.float32)
    nf = model.neighbor_fn(skin=skin)
    nb = nf.allocate(R)
    lang = simulate.nvt_langevin(e, system, dt=CG_DT, kT=kT, friction=10.0)
    eq = simulate.run(lang, lang.init_fn(jax.random.key(0), R, neighbor=nb), n_steps=1000,
                      record_every=100, neighbor_fn=nf, neighbor=nb, monitor=QUIET)  # fmt: skip
    sim = simulate.nvt_nose_hoover(e, system, dt=CG_DT, kT=kT, tau=0.2)
    state = sim.init_fn(jax.random.key(1), eq.state.position, neighbor=eq.neighbor)
    state = state.set(momentum=eq.state.momentum)
    chunk = 1000
    t0 = time.perf_counter()
    warm = simulate.run(sim, state, n_steps=chunk, record_every=100, neighbor_fn=nf,
                        neighbor=eq.neighbor, monitor=QUIET.replace(chunk_steps=chunk))  # fmt: skip
    first = time.perf_counter() - t0
    current = {"state": warm.state, "neighbor": warm.neighbor}

    def timed(n_steps):
        t0 = time.perf_counter()
        res = simulate.run(sim, current["state"], n_steps=n_steps, record_every=100,
                           neighbor_fn=nf, neighbor=current["neighbor"],
                           monitor=QUIET.replace(chunk_steps=chunk))  # fmt: skip
        jax.block_until_ready(res.state.position)
        sps = n_steps / (time.perf_counter() - t0)
        current.update(state=res.state, neighbor=res.neighbor)
        T = float(np.mean(res.trajectory.temperature))
        return {"steps_per_s": sps, "T_K": T, "reallocations": len(res.reallocations)}

    info = {
        "name": f"CG {name}",
        "particles": frames.n_particles,
        "dt_fs": CG_DT * 1000,
        "neighbor_capacity": int(nb.idx.shape[-1]),
        "neighbor_format": nb.format.name,
        "skin_nm": skin,
        "first_chunk_s": first,
    }
    return info, timed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000, help="timed CG steps per model and round")
    p.add_argument("--aa-steps", type=int, default=500, help="timed all-atom steps per round")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    p.add_argument("--models", default="paper004,schnet,deeppot,hipnn,nequip,allegro")
    p.add_argument("--skin", type=float, default=0.03, help="neighbor-list skin (nm)")
    p.add_argument("--params", default=None, help="trained paper-004 parameters (msgpack)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    with open(QUICK) as f:
        quick = json.load(f)
    frames = datasets.load("spce_512", wrapped=True)
    print(f"jax {jax.__version__} ({jax.default_backend()}, {os.cpu_count()} CPUs); "
          f"paper-004 LJ and A from {os.path.relpath(QUICK)}")  # fmt: skip
    runs = [openmm_spce()]
    for name in args.models.split(","):
        model, params = cg_model(name, frames, quick["lj"], quick["A_kJmol_nm2"],
                                 args.params if name == "paper004" else None)  # fmt: skip
        runs.append(cg_run(name, frames, model, params, skin=args.skin))
    # Rounds alternate between the codes, so a change in the machine's speed
    # (25 % and more within minutes here) hits both alike; each round's
    # ratio compares neighbours in time.
    rows = [dict(info, rounds=[]) for info, _ in runs]
    for k in range(args.rounds):
        for row, (_, timed) in zip(rows, runs, strict=True):
            n = args.aa_steps if row is rows[0] else args.steps
            r = timed(n)
            r["ns_per_day"] = ns_per_day(r["steps_per_s"], row["dt_fs"] / 1000)
            row["rounds"].append(r)
        print(
            f"round {k + 1}: "
            + ", ".join(f"{r['name']} {r['rounds'][-1]['ns_per_day']:.1f} ns/day" for r in rows),
            flush=True,
        )
    for row in rows:
        per = row["rounds"]
        row["reallocations"] = sum(r["reallocations"] for r in per)
        row["ns_per_day"] = float(np.median([r["ns_per_day"] for r in per]))
        row["steps_per_s"] = float(np.median([r["steps_per_s"] for r in per]))
        row["T_K"] = float(np.mean([r["T_K"] for r in per]))
        aa = rows[0]["rounds"]
        row["ratio_per_round"] = [
            r["ns_per_day"] / a["ns_per_day"] for r, a in zip(per, aa, strict=True)
        ]
    print(f"\n{'system':26s} {'particles':>9s} {'dt fs':>6s} {'steps/s':>9s} {'ns/day':>8s} "
          f"{'CG/AA median (range over rounds)':>34s} {'<T> K':>6s}")  # fmt: skip
    for r in rows:
        q = r["ratio_per_round"]
        span = f"{np.median(q):.2f} ({min(q):.2f}-{max(q):.2f})"
        print(f"{r['name']:26s} {r['particles']:9d} {r['dt_fs']:6.1f} {r['steps_per_s']:9.1f} "
              f"{r['ns_per_day']:8.2f} {span:>34s} {r['T_K']:6.1f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
