"""Does the jax pin cost speed, and does jax 0.10.2's CPU miscompilation touch cgjax?

Runs the same measurements under two Python environments, alternating, in one
run: this one (the pinned jax 0.10.1) and ``--other-python`` (e.g. a virtual
environment with ``pip install -e . && pip install --no-deps jax==0.10.2
jaxlib==0.10.2``; jax-md's metadata excludes 0.10.2, so ``--no-deps``):

- MD steps/s of LJ argon (864 atoms, NVE 2 fs, ``benchmarks/md_throughput.py``'s
  system) and of paper 004's CG water (512 beads, Nose-Hoover 1 fs,
  ``benchmarks/cg_vs_aa.py``'s model), each through ``simulate.run``;
- the miscompilation (jax-ml/jax#39103: a vmapped matrix-vector product
  followed by a reduction, wrong under ``jit`` on CPU for more than 16k rows
  in float64 and 32k in float32): its reproducer, and the code paths of cgjax
  with that shape: the triclinic minimum image and the displacement of
  ``cgjax._space.make_space`` (triclinic and per-frame boxes), and jax-md's
  ``periodic_general`` displacement (which ``make_space`` used before), each
  jitted against eager on 16385 / 32769 / 100000 rows.

    python benchmarks/jax_versions.py --other-python /tmp/v102/bin/python [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _miscompilation() -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax_md import space

    from cgjax._space import make_space, min_image_fn

    out = {}
    for dtype, n in ((jnp.float64, 16385), (jnp.float32, 32769), (jnp.float32, 100000)):
        i = jnp.arange(n, dtype=dtype)
        x = jnp.stack((i, jnp.zeros_like(i), jnp.zeros_like(i)), axis=1)
        eye = jnp.eye(3, dtype=dtype)
        f = lambda x, eye=eye: jax.vmap(lambda row: jnp.sum((eye @ row) ** 2))(x)  # noqa: E731
        tag = f"{jnp.dtype(dtype).name} x {n}"
        out[f"issue reproducer, {tag}"] = float(jnp.max(jnp.abs(jax.jit(f)(x) - f(x))))
        box = np.array([[3.0, 0.4, 0.3], [0.0, 3.1, 0.2], [0.0, 0.0, 2.9]])
        dR = jnp.asarray(np.random.default_rng(0).uniform(-5, 5, (n, 3)), dtype)
        mi = min_image_fn(box)
        g = lambda d, mi=mi: jnp.sum(mi(d) ** 2, -1)  # noqa: E731
        diff = jnp.max(jnp.abs(jax.jit(g)(dR) - g(dR)))
        out[f"cgjax triclinic min image r^2, {tag}"] = float(diff)
        zero = jnp.zeros(3, dtype)
        for label, disp in (
            ("cgjax make_space displacement", make_space(box)[0]),
            ("jax-md periodic_general displacement",
             space.periodic_general(jnp.asarray(box, dtype), fractional_coordinates=False)[0]),
        ):  # fmt: skip
            h = lambda d, disp=disp, zero=zero: jax.vmap(  # noqa: E731
                lambda a: jnp.sum(disp(a, zero) ** 2)
            )(d)
            out[f"{label} r^2, {tag}"] = float(jnp.max(jnp.abs(jax.jit(h)(dR) - h(dR))))
    return out


def _child(rounds_steps: int, checks_only: bool) -> None:
    import jax

    if checks_only:
        print(
            "RESULT "
            + json.dumps(
                {
                    "jax": jax.__version__,
                    "lj_steps_per_s": float("nan"),
                    "paper004_steps_per_s": float("nan"),
                    "miscompilation": _miscompilation(),
                }
            )
        )
        return
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, HERE)
    from cg_vs_aa import QUICK, cg_model, cg_run
    from md_throughput import TEMPERATURE, cgjax_argon

    from cgjax import datasets, simulate, units

    quiet = simulate.Monitor(progress=False)

    out = {"jax": jax.__version__}
    model, params, system, R = cgjax_argon(6)
    e = model.energy_fn(params)
    nf = model.neighbor_fn(skin=0.1)
    nb = nf.allocate(R)
    kT = units.kT(TEMPERATURE)
    lang = simulate.nvt_langevin(e, system, dt=0.002, kT=kT, friction=5.0)
    eq = simulate.run(lang, lang.init_fn(jax.random.key(0), R, neighbor=nb), n_steps=2000,
                      record_every=100, neighbor_fn=nf, neighbor=nb, monitor=quiet)  # fmt: skip
    sim = simulate.nve(e, system, dt=0.002, kT=kT)
    st = sim.init_fn(jax.random.key(1), eq.state.position, neighbor=eq.neighbor)
    st = st.set(momentum=eq.state.momentum)
    every_1000 = quiet.replace(chunk_steps=1000)
    run = lambda s, n, k: simulate.run(sim, s, n_steps=k, record_every=100,  # noqa: E731
                                       neighbor_fn=nf, neighbor=n, monitor=every_1000)  # fmt: skip
    warm = run(st, eq.neighbor, 1000)
    t0 = time.perf_counter()
    res = run(warm.state, warm.neighbor, 5 * rounds_steps)
    jax.block_until_ready(res.state.position)
    out["lj_steps_per_s"] = 5 * rounds_steps / (time.perf_counter() - t0)
    frames = datasets.load("spce_512", wrapped=True)
    with open(QUICK) as f:
        quick = json.load(f)
    m, p = cg_model("paper004", frames, quick["lj"], quick["A_kJmol_nm2"], None)
    _, timed = cg_run("paper004", frames, m, p, skin=0.03)
    out["paper004_steps_per_s"] = timed(rounds_steps)[0]
    del jnp, np
    out["miscompilation"] = _miscompilation()
    print("RESULT " + json.dumps(out), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--other-python", required=False, help="python of the other environment")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000, help="paper-004 steps (LJ: 5x) per round")
    p.add_argument("--checks-only", action="store_true", help="skip the timings")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        _child(args.steps, args.checks_only)
        return
    if not args.other_python:
        p.error("--other-python is required (the environment with the other jax)")
    pythons = [sys.executable, args.other_python]
    results = {py: [] for py in pythons}
    for k in range(args.rounds):
        for py in pythons:
            cmd = [py, __file__, "--one", "--steps", str(args.steps)]
            proc = subprocess.run(cmd + ["--checks-only"] * args.checks_only,
                                  capture_output=True, text=True)  # fmt: skip
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{py}: failed\n{proc.stderr[-3000:]}")
                return 1
            r = json.loads(line[-1][7:])
            results[py].append(r)
            print(f"round {k + 1}, jax {r['jax']}: LJ {r['lj_steps_per_s']:.0f} steps/s, "
                  f"paper 004 {r['paper004_steps_per_s']:.0f} steps/s", flush=True)  # fmt: skip
    base, other = (results[py] for py in pythons)
    print(f"\n| | jax {base[0]['jax']} | jax {other[0]['jax']} | ratio (median over rounds) |")
    print("|---|---:|---:|---:|")
    for key, label in (("lj_steps_per_s", "LJ argon steps/s"),
                       ("paper004_steps_per_s", "paper-004 CG water steps/s")):  # fmt: skip
        a = sorted(r[key] for r in base)[len(base) // 2]
        b = sorted(r[key] for r in other)[len(other) // 2]
        ratios = sorted(o[key] / s[key] for s, o in zip(base, other, strict=True))
        print(f"| {label} | {a:.0f} | {b:.0f} | {ratios[len(ratios) // 2]:.2f} |")
    print("\nmax |jit - eager| (a miscompilation shows as a large difference):")
    print(f"| check | jax {base[0]['jax']} | jax {other[0]['jax']} |\n|---|---:|---:|")
    for key in base[0]["miscompilation"]:
        print(f"| {key} | {base[0]['miscompilation'][key]:.3g} | "
              f"{other[0]['miscompilation'][key]:.3g} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
