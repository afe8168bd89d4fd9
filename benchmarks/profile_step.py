"""Where an MD step spends its time: LJ argon and paper 004's CG water, part by part.

Each part is compiled alone and timed (median of repeats, after a warm-up), in
one process, float32:

- ``graph``: the edge geometry only (gathers, minimum image, lengths) and its gradient;
- ``energy`` / ``force``: the whole potential, and ``-grad`` of it (what a step needs);
- per term of the paper-004 model (GNN, LJ, HF): energy and force;
- ``update (kept)``: the per-step neighbor-list check that does not rebuild;
- ``rebuild``: a neighbor-list rebuild, and the same per step at the measured
  rebuild rate;
- ``step, fixed list``: 100 integrator steps in a ``lax.scan`` with one list;
- ``step + update``: the same with the per-step list update;
- ``runner``: ``simulate.run`` (unwrapping, NaN / move / temperature checks,
  recording), the path every experiment uses.

    python benchmarks/profile_step.py [--models lj,paper004] [--skin-lj 0.1] [--skin-gnn 0.03]
        [--trace DIR]   # also a jax.profiler (perfetto) trace of 100 steps per model
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cg_vs_aa import QUICK, cg_model  # noqa: E402
from md_throughput import TEMPERATURE, cgjax_argon  # noqa: E402

from cgjax import datasets, potentials, simulate, units  # noqa: E402
from cgjax._xla import jit  # noqa: E402  (jax.jit with cgjax's CPU options, as the runner)
from cgjax.potentials._graph import build_graph  # noqa: E402

QUIET = simulate.Monitor(progress=False)  # runs without progress bars


def _ms(f, *args, repeats=30, inner=1):
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = None
        for _ in range(inner):
            out = f(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / inner * 1e3)
    return statistics.median(times)


def _profile(name, model, params, system, sim_fn, R, skin, trace_dir=None):
    rows = []
    e = model.energy_fn(params)
    nf = model.neighbor_fn(skin=skin)
    nb = nf.allocate(R)
    directed = model.potential.needs_directed_edges()

    def geometry(R, nb):
        g = build_graph(R, model.species, model.displacement_fn, neighbor=nb, directed=directed)
        return jnp.sum(jnp.where(g.edge_mask, g.edge_lengths, 0.0))

    rows.append(("graph (edge geometry)", _ms(jit(geometry), R, nb)))
    rows.append(("graph, gradient", _ms(jit(jax.grad(geometry)), R, nb)))
    rows.append(("energy", _ms(jit(lambda R, nb: e(R, neighbor=nb)), R, nb)))
    rows.append(("force = -grad E", _ms(jit(jax.grad(lambda R, nb: e(R, neighbor=nb))), R, nb)))
    if isinstance(model.potential, potentials.Sum) and len(model.potential.terms) > 1:
        for term_name, term in model.potential.terms:
            m = potentials.energy_model(term, species=model.species, box=model.box)
            et = m.energy_fn(params[term_name])
            g = jit(jax.grad(lambda R, nb, et=et: et(R, neighbor=nb)))
            rows.append((f"  force of {term_name} alone", _ms(g, R, nb)))
    rows.append(("neighbor update (kept)", _ms(jit(nf.update), R, nb)))
    t_rebuild = _ms(jit(nf.rebuild), R, nb)
    rows.append(("neighbor rebuild", t_rebuild))
    sim = sim_fn(e)
    state = sim.init_fn(jax.random.key(0), R, neighbor=nb)
    n = 100

    @jit
    def fixed(state, nb):
        return jax.lax.scan(lambda s, _: (sim.step_fn(s, neighbor=nb), None), state, None,
                            length=n)[0]  # fmt: skip

    @jit
    def updating(state, nb):
        def body(c, _):
            s, lst, k = c
            s = sim.step_fn(s, neighbor=lst)
            return (s, nf.update(s.position, lst), k + nf.needs_rebuild(s.position, lst)), None

        return jax.lax.scan(body, (state, nb, 0), None, length=n)[0]

    rows.append(("step, fixed list", _ms(fixed, state, nb, repeats=5) / n))
    rows.append(("step + update (+ rebuilds)", _ms(updating, state, nb, repeats=5) / n))
    rebuilds = int(updating(state, nb)[2])
    rows.append((f"  rebuilds: {rebuilds} per {n} steps, per step", t_rebuild * rebuilds / n))
    every_1000 = QUIET.replace(chunk_steps=1000)
    run = lambda st, lst: simulate.run(sim, st, n_steps=1000, record_every=100,  # noqa: E731
                                       neighbor_fn=nf, neighbor=lst,
                                       monitor=every_1000).state.position  # fmt: skip
    rows.append(("runner (simulate.run)", _ms(run, state, nb, repeats=3) / 1000))
    if trace_dir:
        jax.profiler.start_trace(os.path.join(trace_dir, name), create_perfetto_trace=True)
        jax.block_until_ready(updating(state, nb))
        jax.profiler.stop_trace()
    cap = f"{nb.format.name} list, capacity {nb.idx.shape[-1]}, skin {skin} nm, " + (
        "all pairs" if nf.grid is None else f"cells {nf.grid}"
    )
    return rows, cap


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="lj,paper004")
    p.add_argument("--skin-lj", type=float, default=0.1)
    p.add_argument("--skin-gnn", type=float, default=0.03)
    p.add_argument("--trace", default=None, help="directory for jax.profiler traces")
    args = p.parse_args(argv)
    print(f"jax {jax.__version__}, {jax.default_backend()}, {os.cpu_count()} CPUs, float32")
    for name in args.models.split(","):
        if name == "lj":
            model, params, system, R = cgjax_argon(6)
            sim_fn = lambda e, system=system: simulate.nve(  # noqa: E731
                e, system, dt=0.002, kT=units.kT(TEMPERATURE)
            )
            title = "LJ argon, 864 atoms, 2.5 sigma, NVE 2 fs"
            rows, cap = _profile(name, model, params, system, sim_fn, R, args.skin_lj, args.trace)
        else:
            frames = datasets.load("spce_512", wrapped=True)
            with open(QUICK) as f:
                quick = json.load(f)
            model, params = cg_model("paper004", frames, quick["lj"], quick["A_kJmol_nm2"], None)
            system = simulate.System.create(box=frames.box, species=np.zeros(512, np.int32),
                                            masses=np.asarray(frames.masses))  # fmt: skip
            sim_fn = lambda e, system=system: simulate.nvt_nose_hoover(  # noqa: E731
                e, system, dt=0.001, kT=units.kT(300.0), tau=0.2
            )
            R = jnp.asarray(frames.positions[-1], jnp.float32)
            title = "paper-004 CG water (GNN + LJ + HF), 512 beads, Nose-Hoover 1 fs"
            rows, cap = _profile(name, model, params, system, sim_fn, R, args.skin_gnn, args.trace)
        print(f"\n{title}; {cap}")
        print(f"| {'part':40s} | {'ms':>8s} |\n|{'-' * 42}|{'-' * 10}|")
        for part, ms in rows:
            print(f"| {part:40s} | {ms:8.3f} |")


if __name__ == "__main__":
    main()
