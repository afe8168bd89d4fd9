"""Why IMC diverges in the structure_methods quick preset: how noisy its Newton step is.

Samples the quick preset's argon spline model at its start (the potential of
mean force of the AA RDF) for ``--blocks`` times the preset's sampling and
computes the IMC step (``train.imc_trainer``'s, on the same bins and basis)
from each block of the preset's length and from all the frames together.
Printed per setting: the largest ``|dU|`` of each block's step and of the
pooled one (kJ/mol, on the bins the target samples), and the block steps'
scatter about the pooled step relative to its size. A scatter near or above 1
means one update's step is mostly noise. Also printed: the singular values of
the response matrix ``J`` (pairs per kJ/mol) from one block and pooled, and
the integrated autocorrelation time of the pair count in the first-shell bins (frames).

    PYTHONPATH=. python scripts/imc_noise.py --blocks 4
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tau(x):
    """Integrated autocorrelation time (frames) of a series, summed to the first negative term."""
    x = x - x.mean()
    if not np.any(x):
        return 1.0
    c = np.correlate(x, x, "full")[len(x) - 1 :] / (x.var() * np.arange(len(x), 0, -1))
    cut = int(np.argmax(c < 0)) or len(c)
    return float(1 + 2 * np.sum(c[1:cut]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--regularization", default="1e-3,1e-1")
    ap.add_argument("--max-step-kT", type=float, default=None)
    a = ap.parse_args()
    from cgjax import train, units
    from cgjax.train import _inversion as inv

    sm = _load("experiments/structure_methods.py", "structure_methods")
    config = _load("configs/structure_methods.py", "sm_config").get_config("quick")
    t0 = time.perf_counter()
    s = sm._setup("argon", config)
    model, pmf = sm._spline_start(s, config)
    n = s.protocol.production_steps
    protocol = s.protocol.replace(production_steps=n * a.blocks)
    ctx = inv._context(model, (s.r, s.g_aa), protocol, None)
    state = inv.InversionState(pmf, s.R0, 0, 0.0, ctx)
    _, counts = inv._sample(state, True)
    per = len(counts) // a.blocks
    beta = 1.0 / protocol.kT
    first = int(np.argmax(s.g_aa))
    print(f"{len(counts)} frames ({per} per block of {n} steps, every "
          f"{protocol.record_every}); sampled in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    print(f"pair-count autocorrelation at r = {s.r[first]:.3f} nm (the first peak): "
          f"{_tau(counts[:, first]):.1f} frames")  # fmt: skip
    sampled = ctx.g[ctx.fit] > 1e-3
    for reg in (float(x) for x in a.regularization.split(",")):
        st = train.IMCSettings(regularization=reg, max_step_kT=a.max_step_kT)
        pooled = ctx.basis[sampled] @ inv._imc_step(ctx, counts, st, beta)[0]
        blocks = [ctx.basis[sampled] @ inv._imc_step(ctx, counts[k * per:(k + 1) * per], st,
                                                     beta)[0] for k in range(a.blocks)]  # fmt: skip
        scatter = [float(np.linalg.norm(b - pooled) / np.linalg.norm(pooled)) for b in blocks]
        print(f"regularization {reg:g}: max |dU| pooled {np.max(np.abs(pooled)):.3f} kJ/mol, "
              f"per block {[round(float(np.max(np.abs(b))), 3) for b in blocks]}; "
              f"|block - pooled| / |pooled| {[round(x, 2) for x in scatter]}")  # fmt: skip
    for label, c in (("one block", counts[:per]), ("pooled", counts)):
        S = c[:, ctx.fit]
        d = S - S.mean(0)
        J = -beta * (d.T @ d / (len(S) - 1)) @ ctx.basis
        sv = np.linalg.svd(J, compute_uv=False)
        print(f"J singular values ({label}): largest {sv[0]:.3g}, smallest {sv[-1]:.3g}, "
              f"ratio {sv[0] / sv[-1]:.3g}; above 1e-3 of largest: {int(np.sum(sv > 1e-3 * sv[0]))}"
              f" of {len(sv)}")  # fmt: skip
    print(f"kT = {protocol.kT:.3f} kJ/mol; units: {units.angstrom} nm per A")


if __name__ == "__main__":
    main()
