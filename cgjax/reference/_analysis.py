"""Reference observables of a CG trajectory: RDF, three-body ADF, MSD, D and temperature.

These are the numbers a CG model is checked against; they are computed with
:mod:`cgjax.observables` so a model's trajectory can be analysed the same way.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from cgjax import units

__all__ = ["observables_to_file", "reference_observables"]


def _first_peak_and_minimum(r: np.ndarray, g: np.ndarray) -> dict:
    k = int(np.argmax(g))
    # The first minimum lies between the first peak and 1.8 times its distance
    # (liquid water 0.28 -> 0.33 nm, argon 0.37 -> 0.52 nm).
    window = (r > r[k]) & (r < 1.8 * r[k])
    m = int(np.flatnonzero(window)[np.argmin(g[window])]) if window.any() else k
    return {
        "first_peak_r_nm": float(r[k]),
        "first_peak_g": float(g[k]),
        "first_minimum_r_nm": float(r[m]),
        "first_minimum_g": float(g[m]),
    }


def reference_observables(
    frames,
    *,
    adf_cutoffs: tuple[float, ...],
    fit_window: tuple[float, float],
    rdf_r_max: float | None = None,
    rdf_bin: float = 0.005,
    n_blocks: int = 5,
    max_lag: float | None = None,
) -> dict:
    """Structure and dynamics of a one-bead-per-molecule trajectory, as a JSON-able dict.

    Everything is computed in the positions' dtype. Structure is computed on
    wrapped positions (one box), dynamics on the unwrapped ones. ``D`` is the
    Einstein fit of the whole trajectory's MSD on ``fit_window`` (centre of
    mass removed), its error the standard error over ``n_blocks`` consecutive
    blocks. The temperature is the AA kinetic temperature recorded by the
    generator (``metadata["aa_temperature"]``), with the standard error of its
    block means.

    Args:
      frames: :class:`cgjax.data.Frames` with unwrapped positions ``[T, N, 3]`` (nm),
        one box, and ``dt`` (ps).
      adf_cutoffs: three-body ADF neighbour cutoffs (nm); 1-degree bins.
      fit_window: ``(t0, t1)`` (ps) of the Einstein fit.
      rdf_r_max: RDF range (nm), default the largest multiple of ``rdf_bin`` within L/2.
      rdf_bin: RDF bin width (nm).
      n_blocks: blocks for the error bars.
      max_lag: length of the stored MSD curve (ps), default ``t1``.

    Returns:
      A dict with ``rdf``, ``adf``, ``msd``, ``diffusion`` and ``temperature``
      entries; lengths in nm, times in ps, angles in degrees, D in nm^2/ps and cm^2/s.

    References:
      Loose et al. (papers/000) eq. 5 (ADF); papers/004 Sec. 2 (Einstein relation).
    """
    from cgjax import data, observables
    from cgjax._space import box_widths

    # The data's own precision, so the result does not depend on jax_enable_x64.
    X = np.asarray(frames.positions)
    box = np.asarray(frames.box, np.float64)
    if box.ndim == 3:
        if not np.allclose(box, box[0]):
            raise ValueError("reference observables need a fixed box (NVT)")
        box = box[0]
    if frames.dt is None:
        raise ValueError("frames.dt (ps between frames) is needed for the MSD")
    dt = float(frames.dt)
    wrapped = np.asarray(data.wrap(X, box))
    half = 0.5 * float(np.min(box_widths(box)))
    if rdf_r_max is None:
        rdf_r_max = np.floor(half / rdf_bin + 1e-9) * rdf_bin
    n_bins = round(rdf_r_max / rdf_bin)
    g = observables.rdf(wrapped, box, r_max=rdf_r_max, n_bins=n_bins)
    # Bin centres from the edges in float64 (g.r has the positions' precision).
    r, g_r = (np.arange(n_bins) + 0.5) * (rdf_r_max / n_bins), np.asarray(g.g, np.float64)
    out = {
        "n_frames": int(X.shape[0]),
        "n_beads": int(X.shape[1]),
        "dt_frame_ps": dt,
        "box_nm": box.tolist(),
        "rdf": {
            "r_max_nm": float(rdf_r_max),
            "bin_width_nm": float(rdf_bin),
            "number_density_per_nm3": float(g.density),
            **_first_peak_and_minimum(r, g_r),
            "r_nm": r.tolist(),
            "g": g_r.tolist(),
        },
        "adf": [],
    }
    for cutoff in adf_cutoffs:
        a = observables.adf(wrapped, box, cutoff=float(cutoff), n_bins=180, max_neighbors=40)
        out["adf"].append(
            {
                "cutoff_nm": float(cutoff),
                "bin_width_deg": 1.0,
                "normalize": "density (sum(p) * 1 degree = 1)",
                "n_neighbors_max": int(a.n_neighbors_max),
                "theta_deg": np.asarray(a.theta, np.float64).tolist(),
                "p_per_deg": np.asarray(a.p, np.float64).tolist(),
            }
        )
    t0, t1 = (float(v) for v in fit_window)
    lag = round((t1 if max_lag is None else float(max_lag)) / dt)
    curve = observables.msd(X, max_lag=lag)
    d = observables.diffusion_from_trajectory(X, dt, fit_window=(t0, t1), n_blocks=n_blocks)
    out["msd"] = {
        "remove_com": True,
        "t_ps": (np.asarray(curve.lags) * dt).tolist(),
        "msd_nm2": np.asarray(curve.msd, np.float64).tolist(),
    }
    cm2 = units.cm2_per_s
    out["diffusion"] = {
        "method": "Einstein fit MSD = 6 D t + c, whole trajectory; error over blocks",
        "fit_window_ps": [t0, t1],
        "n_blocks": int(n_blocks),
        "D_nm2_per_ps": float(d.D),
        "D_cm2_per_s": float(d.D) / cm2,
        "D_err_cm2_per_s": float(d.D_err) / cm2,
        "D_blocks_cm2_per_s": (np.asarray(d.D_blocks, np.float64) / cm2).tolist(),
    }
    temps = (frames.metadata or {}).get("aa_temperature")
    if temps is not None:
        temps = np.asarray(temps, np.float64)
        nb = len(temps) // n_blocks
        block_means = temps[: nb * n_blocks].reshape(n_blocks, nb).mean(1)
        out["temperature"] = {
            "source": "AA kinetic energy, dof = 3 n_atoms - n_constraints - 3",
            "target_K": None if frames.temperature is None else float(frames.temperature),
            "mean_K": float(temps.mean()),
            "std_K": float(temps.std()),
            "sem_K": float(block_means.std(ddof=1) / np.sqrt(n_blocks)),
        }
    return out


def observables_to_file(path, out, *, command: str | None = None, **kwargs) -> dict:
    """Loads CG frames from ``path``, computes :func:`reference_observables`, writes JSON.

    The JSON is written atomically and records the source file, the command
    and the source's provenance. Returns the dict.
    """
    from cgjax import data

    frames = data.Frames.load(path)
    result = {
        "source": os.path.basename(os.fspath(path)),
        "command": command,
        "parameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()},
        "source_provenance": frames.provenance,
        **reference_observables(frames, **kwargs),
    }
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1, default=_jsonable)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return result


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return str(x)
