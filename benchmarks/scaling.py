"""Cost of an MD step against system size: steps/s and peak memory at N ~ 512, 4k, 32k.

Two models, each through ``simulate.run`` (the runner with its per-step checks)
with cgjax's neighbor lists (a cell list once the box holds 4 cells of
``cutoff + skin`` per axis, all pairs below that), float32:

- ``lj``: liquid argon (Rahman: 94.4 K, 1.374 g/cm^3), LJ with a 2.5 sigma
  cutoff, NVE at 2 fs, on FCC lattices of 5, 10, 20 cells (500, 4000, 32000
  atoms) melted by 400 Langevin steps at 2 T first;
- ``gnn``: paper 004's CG water model (GNN 16 features, 2 layers, 20 RBF, LJ,
  HF; 0.6 nm), Nose-Hoover at 1 fs, on the shipped 512-bead SPC/E frame tiled
  1, 2 and 4 times per axis (512, 4096, 32768 beads), untrained weights (last
  layer x 1e-3, as in ``cg_vs_aa.py``).

Every (model, N) runs in its own child process, so the peak resident memory
(``ru_maxrss``) is that configuration's alone; it includes the ~0.6 GB of a
process that has imported jax. The table gives us/step/particle: constant
when the cost grows linearly in N.

    python benchmarks/scaling.py [--models lj,gnn] [--sizes 1,2,4] [--steps 400] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _lj(scale: int, steps: int) -> dict:
    import jax

    sys.path.insert(0, HERE)
    from md_throughput import TEMPERATURE, cgjax_argon

    from cgjax import simulate, units

    model, params, system, R = cgjax_argon(5 * scale)
    kT = units.kT(TEMPERATURE)
    e = model.energy_fn(params)
    nf = model.neighbor_fn(skin=0.1)
    nb = nf.allocate(R)
    lang = simulate.nvt_langevin(e, system, dt=0.002, kT=2 * kT, friction=5.0)
    eq = simulate.run(lang, lang.init_fn(jax.random.key(0), R, neighbor=nb), n_steps=400,
                      record_every=100, neighbor_fn=nf, neighbor=nb,
                      monitor=simulate.Monitor(progress=False))  # fmt: skip
    sim = simulate.nve(e, system, dt=0.002, kT=kT)
    state = sim.init_fn(jax.random.key(1), eq.state.position, neighbor=eq.neighbor)
    state = state.set(momentum=eq.state.momentum / np.sqrt(2.0))
    return _timed(sim, state, nf, eq.neighbor, steps)


def _gnn(scale: int, steps: int) -> dict:
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, HERE)
    from cg_vs_aa import QUICK, TEMPERATURE, cg_model

    from cgjax import datasets, simulate, units
    from cgjax.data import Frames

    frames = datasets.load("spce_512", wrapped=True)
    L = float(frames.box[0, 0])
    shifts = np.stack(np.meshgrid(*[np.arange(scale)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    R = (np.asarray(frames.positions[-1])[None] + L * shifts).reshape(-1, 3)
    tiled = Frames(
        positions=R[None].astype(np.float32), box=np.diag(np.full(3, L * scale)),
        species=np.zeros(len(R), np.int32),
        masses=np.tile(np.asarray(frames.masses), scale**3), temperature=frames.temperature,
    )  # fmt: skip
    with open(QUICK) as f:
        quick = json.load(f)
    model, params = cg_model("paper004", tiled, quick["lj"], quick["A_kJmol_nm2"], None)
    system = simulate.System.create(box=tiled.box, species=tiled.species, masses=tiled.masses)
    kT = units.kB * TEMPERATURE
    e = model.energy_fn(params)
    R = jnp.asarray(R, jnp.float32)
    nf = model.neighbor_fn(skin=0.03)
    nb = nf.allocate(R)
    sim = simulate.nvt_nose_hoover(e, system, dt=0.001, kT=kT, tau=0.2)
    state = sim.init_fn(jax.random.key(1), R, neighbor=nb)
    return _timed(sim, state, nf, nb, steps)


def _timed(sim, state, nf, nb, steps: int) -> dict:
    import jax

    from cgjax import simulate

    chunk = min(200, steps)
    every_chunk = simulate.Monitor(chunk_steps=chunk, progress=False)
    t0 = time.perf_counter()
    warm = simulate.run(sim, state, n_steps=chunk, record_every=chunk, neighbor_fn=nf,
                        neighbor=nb, monitor=every_chunk)  # fmt: skip
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = simulate.run(sim, warm.state, n_steps=steps, record_every=chunk, neighbor_fn=nf,
                       neighbor=warm.neighbor, monitor=every_chunk)  # fmt: skip
    jax.block_until_ready(res.state.position)
    wall = time.perf_counter() - t0
    n = int(state.position.shape[0])
    return {
        "n": n,
        "steps_per_s": steps / wall,
        "us_per_step_per_particle": wall / steps / n * 1e6,
        "first_chunk_s": first,
        "neighbor_capacity": int(nb.idx.shape[-1]),
        "cell_list": nf.grid is not None,
        "grid": nf.grid,
        "T_K": float(np.mean(res.trajectory.temperature)),
        "reallocations": len(warm.reallocations) + len(res.reallocations),
    }


def _child(model: str, scale: int, steps: int) -> None:
    out = {"lj": _lj, "gnn": _gnn}[model](scale, steps)
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print("RESULT " + json.dumps(out), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="lj,gnn")
    p.add_argument("--sizes", default="1,2,4", help="tilings per axis (N x 1, 8, 64)")
    p.add_argument("--steps", type=int, default=400, help="timed steps (at the largest N: /8)")
    p.add_argument("--json", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        model, scale, steps = args.one.split(",")
        _child(model, int(scale), int(steps))
        return
    rows = []
    for model in args.models.split(","):
        for scale in (int(s) for s in args.sizes.split(",")):
            steps = args.steps if scale < 4 else max(50, args.steps // 8)
            cmd = [sys.executable, __file__, "--one", f"{model},{scale},{steps}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{model} x{scale}: failed\n{proc.stderr[-2000:]}")
                continue
            row = {"model": model, **json.loads(line[-1][7:])}
            rows.append(row)
            print(f"{model:4s} N={row['n']:6d} {row['steps_per_s']:9.2f} steps/s "
                  f"{row['us_per_step_per_particle']:7.3f} us/step/particle "
                  f"peak {row['peak_rss_gb']:.2f} GB  (cells {row['grid']}, <T> "
                  f"{row['T_K']:.0f} K)", flush=True)  # fmt: skip
    print(f"\n{'model':5s} {'N':>6s} {'steps/s':>9s} {'us/step/N':>10s} {'x smallest':>10s} "
          f"{'peak GB':>8s} {'list':>18s}")  # fmt: skip
    for r in rows:
        base = next(b for b in rows if b["model"] == r["model"])
        rel = r["us_per_step_per_particle"] / base["us_per_step_per_particle"]
        where = f"cells {r['grid']}" if r["cell_list"] else "all pairs"
        print(f"{r['model']:5s} {r['n']:6d} {r['steps_per_s']:9.2f} "
              f"{r['us_per_step_per_particle']:10.3f} {rel:10.2f} {r['peak_rss_gb']:8.2f} "
              f"{where:>18s}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
