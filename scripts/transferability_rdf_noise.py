"""Sampling noise of the RDF TAE on the shipped methanol grid (issue 19, paper 003).

The RDF TAE (Å, 0-12 Å, 0.01 nm bins, as ``experiments/transferability.py``)
between the AA RDF of a window of ``n`` frames and that of all 250 frames of
the same state point, and between the two halves: the floor under any CG run
that records that many independent frames.

    PYTHONPATH=. python scripts/transferability_rdf_noise.py
"""

import numpy as np

from cgjax import datasets, observables


def main() -> None:
    grid = datasets.load_grid("methanol_256_quick", wrapped=True)
    for key in sorted(grid):
        frames = grid[key]
        R, box = np.asarray(frames.positions), frames.box

        def g(X, box=box):
            return np.asarray(observables.rdf(X, box, r_max=1.2, n_bins=120).g)

        r = np.asarray(observables.rdf(R[:1], box, r_max=1.2, n_bins=120).r)
        g_all = g(R)

        def tae(a, b, r=r):
            return float(observables.total_absolute_error(r, a, b)) / 0.1  # nm -> Å

        half = R.shape[0] // 2
        line = [f"{key[0]:g} K, {key[1]:g} g/cm^3: halves {tae(g(R[:half]), g(R[half:])):.3f} Å"]
        for n in (12, 25, 50):
            vals = [tae(g(R[i : i + n]), g_all) for i in range(0, R.shape[0] - n + 1, n)]
            line.append(f"{n} consecutive frames vs all: mean {np.mean(vals):.3f}, "
                        f"max {np.max(vals):.3f} Å")  # fmt: skip
        line.append(f"every 5th frame (50) vs all: {tae(g(R[::5]), g_all):.3f} Å")
        print("; ".join(line), flush=True)


if __name__ == "__main__":
    main()
