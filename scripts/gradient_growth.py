"""Why long RDF-loss gradients are NaN: the gradient norm against length, and the Lyapunov exponent.

The system, start and loss of ``benchmarks/trajectory_gradient.py`` (512 beads,
LJ, float32, NVE at dt 2 fs). It prints the separation of two NVE trajectories
started 1e-5 nm apart per coordinate (every 1 ps for 20 ps; the largest
Lyapunov exponent from its early growth), then the checkpoint-adjoint gradient
at each length given (steps):

    python scripts/gradient_growth.py 2000 4000 6000 8000    # ~6 min on 2 CPU cores

Measured (benchmarks/README.md): lambda = 5.0 1/ps; gradient norm 2.9e5 at
2000 steps, 2.3e14 at 4000, 2.9e23 at 6000, 9.3e31 at 8000 (x e^(5.0-5.2 t/ps)),
so float32 overflows near 19 ps and the 10k-step gradient is NaN.
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
import trajectory_gradient as tg  # noqa: E402

from cgjax import simulate  # noqa: E402

QUIET = simulate.Monitor(progress=False)  # runs without progress bars

args = argparse.Namespace(
    potential="lj", dt=0.002, skin=0.3, segment_steps=25, record_every=25, start=None
)
b = tg.build(args)
path = os.path.join(tempfile.mkdtemp(prefix="cgjax_gg_"), "start.npz")
tg.equilibrate(b, args, 200, path)
args.start = path
b = tg.build(args)
# Lyapunov: two NVE trajectories 1e-5 nm apart (float32), separation every 0.1 ps
R0, V0 = b["R0"], b["V0"]
nf = b["nbr_fn"]
sim = simulate.nve(b["model"].energy_fn(b["params"]), b["system"], dt=args.dt, kT=b["kT"])


def traj(R):
    nb = nf.allocate(R)
    st = sim.init_fn(
        jax.random.key(0), R, neighbor=nb, momenta=V0 * jnp.asarray(b["system"].masses)[:, None]
    )
    out = simulate.run(
        sim,
        st,
        n_steps=10000,
        record_every=50,
        neighbor_fn=nf,
        neighbor=nb,
        monitor=QUIET,
    )
    return out.trajectory.unwrapped


d = jax.random.normal(jax.random.key(5), R0.shape) * 1e-5
A, B = traj(R0), traj(R0 + d)
sep = np.sqrt(np.sum((A - B) ** 2, axis=(1, 2)))
t = (1 + np.arange(len(sep))) * 50 * args.dt
for k in range(0, len(sep), 10):
    print(f"t {t[k]:6.2f} ps separation {sep[k]:.3e} nm", flush=True)
sat = np.argmax(sep > 1e-1) or len(sep)
fit = slice(2, max(sat // 2, 5))
lam = np.polyfit(t[fit], np.log(sep[fit]), 1)[0]
print(f"LYAPUNOV {lam:.2f} 1/ps (fit t {t[fit][0]:.2f}-{t[fit][-1]:.2f} ps)", flush=True)
for n in [int(x) for x in sys.argv[1:]]:
    t0 = time.time()
    v, g = jax.value_and_grad(tg.make_loss(b, args, "checkpoint", n))(b["params"])
    gf = tg.flat(g)
    print(
        f"GRAD steps {n} loss {float(v):.6f} grad {gf} norm {np.linalg.norm(gf):.4g} "
        f"({time.time() - t0:.0f} s)",
        flush=True,
    )
