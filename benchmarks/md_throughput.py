"""MD throughput: cgjax (jax-md, jit) vs OpenMM CPU on 864 LJ argon atoms, same run.

Both integrate the same switched LJ potential (NVE velocity Verlet, 2 fs,
float32 for cgjax, OpenMM's CPU platform in mixed precision) from the same
melted configuration. Prints steps/s of each and their ratio.

    python benchmarks/md_throughput.py [--steps 5000] [--cells 6]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import potentials, reference, simulate, units

SIGMA = 3.405 * units.angstrom  # nm
EPSILON = 119.8 * units.kB  # kJ/mol
MASS = 39.948  # amu
TEMPERATURE = 94.4  # K
DENSITY = 1.374 * units.g_per_cm3 / MASS  # 1/nm^3
CUTOFF, SWITCH = 2.5 * SIGMA, 2.3 * SIGMA


def cgjax_argon(n_cells: int):
    R, L = simulate.fcc_lattice(n_cells, DENSITY)
    species = np.zeros(len(R), np.int32)
    pot = potentials.LennardJones(sigma=SIGMA, epsilon=EPSILON, cutoff=CUTOFF, r_onset=SWITCH)
    model = potentials.energy_model(pot, species=species, box=L)
    R = jnp.asarray(R, jnp.float32)
    # with a neighbor list: init_fn without one evaluates all N^2 pairs (12 GB at 32k atoms)
    nb = model.neighbor_fn(skin=0.1).allocate(R)
    params = model.init_fn(jax.random.key(0), R, neighbor=nb)
    params = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    system = simulate.System.create(box=L, species=species, masses=MASS)
    return model, params, system, R


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--cells", type=int, default=6)
    p.add_argument("--skin", type=float, default=0.1)
    args = p.parse_args()

    model, params, system, R = cgjax_argon(args.cells)
    n = R.shape[0]
    kT = units.kT(TEMPERATURE)
    nf = model.neighbor_fn(skin=args.skin)
    nbrs = nf.allocate(R)
    energy_fn = model.energy_fn(params)
    # melt the lattice so both codes time a liquid
    lang = simulate.nvt_langevin(energy_fn, system, dt=0.002, kT=kT, friction=5.0)
    eq = simulate.run(
        lang,
        lang.init_fn(jax.random.key(0), R, neighbor=nbrs),
        n_steps=2000,
        record_every=100,
        neighbor_fn=nf,
        neighbor=nbrs,
    )
    sim = simulate.nve(energy_fn, system, dt=0.002, kT=kT)
    state = sim.init_fn(jax.random.key(1), eq.state.position, neighbor=eq.neighbor)
    state = state.set(momentum=eq.state.momentum)
    chunk = 1000
    # warm-up compiles the chunk; the timed run reuses it
    warm = simulate.run(
        sim,
        state,
        n_steps=chunk,
        record_every=100,
        monitor=simulate.Monitor(chunk_steps=chunk),
        neighbor_fn=nf,
        neighbor=eq.neighbor,
    )
    t0 = time.perf_counter()
    res = simulate.run(
        sim,
        warm.state,
        n_steps=args.steps,
        record_every=100,
        monitor=simulate.Monitor(chunk_steps=chunk),
        neighbor_fn=nf,
        neighbor=warm.neighbor,
    )
    jax.block_until_ready(res.state.position)
    cg_sps = args.steps / (time.perf_counter() - t0)

    try:
        reference.require_openmm()
    except ImportError:
        print("OpenMM is not installed (pip install '.[reference]'); cgjax alone:")
        print(f"cgjax  {n} atoms: {cg_sps:9.1f} steps/s")
        return
    L = float(system.box[0, 0])
    ctx, integrator = reference.lj_fluid_context(
        np.asarray(res.state.position),
        L,
        sigma=SIGMA,
        epsilon=EPSILON,
        mass=MASS,
        cutoff=CUTOFF,
        switch=SWITCH,
    )
    ctx.setVelocities(np.asarray(res.state.momentum / res.state.mass))
    integrator.step(100)  # warm-up
    t0 = time.perf_counter()
    integrator.step(args.steps)
    ctx.getState(getEnergy=True)  # synchronise
    omm_sps = args.steps / (time.perf_counter() - t0)

    threads = ctx.getPlatform().getPropertyValue(ctx, "Threads")
    print(f"LJ argon, {n} atoms, 2.5 sigma cutoff, NVE, dt = 2 fs, {args.steps} timed steps")
    print(
        f"  cgjax  (jax {jax.__version__}, {jax.default_backend()}, float32): "
        f"{cg_sps:9.1f} steps/s  ({cg_sps * 0.002 * 86400e-3:.2f} ns/day)"
    )
    print(
        f"  OpenMM (CPU platform, {threads} threads):            "
        f"{omm_sps:9.1f} steps/s  ({omm_sps * 0.002 * 86400e-3:.2f} ns/day)"
    )
    print(f"  ratio cgjax / OpenMM = {cg_sps / omm_sps:.3f}")


if __name__ == "__main__":
    main()
