"""Sampling noise of one IBI update's residual on the Henderson target (issue 20).

Blocks of the cached Henderson target (``scripts/henderson_inversion.py
--target-cache FILE.npz``: 256 LJ atoms, frames every 20 steps of 20 fs),
each as long as one IBI update's production run (``--frames``, default
1250 = 25,000 steps), are taken as independent samplings of the true
potential: for each, the IBI residual ``kT ln(g_block / g*)`` on the bins
inside the cutoff, projected on the 44-function spline as ``ibi_trainer``
does. Printed: the standard deviation over blocks of the coefficients (the
``noise`` of ``scripts/anderson_noise_toy.py``) and of the projected ``dU(r)``
(kJ/mol). The target's own RDF (``FILE_rdf.npz``) is the ``g*``.

    PYTHONPATH=. python scripts/ibi_residual_noise.py --target-cache FILE.npz
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np

from cgjax import observables, potentials, units


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-cache", required=True)
    ap.add_argument("--frames", type=int, default=1250, help="frames per block (one update)")
    ap.add_argument("--blocks", type=int, default=6)
    a = ap.parse_args()
    X = np.load(a.target_cache)["X"]
    d = np.load(a.target_cache[: -len(".npz")] + "_rdf.npz")
    r, g = d["r"], d["g"]
    kT = units.kB * 94.4
    box = np.eye(3) * (X.shape[1] / 20.71) ** (1 / 3)
    spline = potentials.SplinePair(n_basis=44, r_min=0.3, cutoff=0.85)
    fit = r < spline.cutoff
    B = np.asarray(spline.basis(jnp.asarray(r[fit])), np.float64)
    gt, stride = g[fit], len(X) // a.blocks
    cs = []
    for b in range(a.blocks):  # blocks spread over the target, far apart
        gb = np.asarray(observables.rdf(X[b * stride : b * stride + a.frames], box, r_max=1.0,
                                        n_bins=len(r)).g)[fit]  # fmt: skip
        valid = (gt > 1e-3) & (gb > 1e-3)
        du = kT * np.log(np.where(valid, gb, 1.0) / np.where(valid, gt, 1.0))
        du = np.interp(r[fit], r[fit][valid], du[valid])
        cs.append(np.linalg.lstsq(B, du, rcond=None)[0])
    cs = np.array(cs)
    sd_c, sd_u = cs.std(0, ddof=1), (cs @ B.T).std(0, ddof=1)
    sampled = gt > 1e-3
    print(f"{a.blocks} blocks of {a.frames} frames: coefficient noise sd median "
          f"{np.median(sd_c):.4f}, largest {sd_c.max():.4f} kJ/mol; projected dU(r) sd on "
          f"bins with g* > 1e-3 median {np.median(sd_u[sampled]):.4f}, largest "
          f"{sd_u[sampled].max():.4f} kJ/mol")  # fmt: skip
    for x in (0.34, 0.36, 0.38, 0.40, 0.44, 0.5, 0.6, 0.7, 0.8):
        k = int(np.argmin(abs(r[fit] - x)))
        print(f"  r {x:.2f} nm: sd dU {sd_u[k]:.4f} kJ/mol")


if __name__ == "__main__":
    main()
