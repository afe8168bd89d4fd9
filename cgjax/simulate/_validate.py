"""Validation by simulation: run MD with a trained model and compare its structure.

After force matching, a model is judged by what it simulates (papers 000, 002,
003): the RDF, the three-body ADF and the averaged Steinhardt q̄4/q̄6 of an NVT
run are compared with the same observables of the mapped AA reference, the
run is checked for stability (closest pair distance, temperature), and a
short NVE continuation at the production time step measures energy drift.

>>> ref = simulate.structure(frames.positions, frames.box)
>>> protocol = simulate.Protocol(temperature=300.0, dt=0.002, equilibration_steps=2500,
...                              production_steps=10000, record_every=100)
>>> report = simulate.validate_by_simulation(model, params, ref, frames.positions[-1],
...                                          protocol)
>>> report.summary()["rdf_tae_A"], report.stable
>>> report.plot("plots/structure.png")
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import observables, units
from cgjax._space import box_matrix
from cgjax._system import system_of
from cgjax.simulate._integrators import nve
from cgjax.simulate._protocol import Protocol, sample
from cgjax.simulate._runner import Monitor, SimulationError, run

__all__ = [
    "Structure",
    "ValidationReport",
    "min_pair_distance",
    "plot_structures",
    "structure",
    "validate_by_simulation",
]


@dataclasses.dataclass(frozen=True)
class Structure:
    """Structural fingerprints of a set of frames (host numpy arrays).

    Attributes:
      r: RDF bin centres ``[n_r]`` (nm).
      rdf: ``g(r)`` ``[n_r]``.
      theta: ADF bin centres ``[n_theta]`` (degrees).
      adf: three-body ``P(theta)`` ``[n_theta]`` (1/degree, integrates to 1).
      q_edges: histogram edges ``[n_q + 1]`` of the q̄4 and q̄6 distributions.
      q4_hist, q6_hist: densities of the per-particle q̄4 and q̄6 ``[n_q]``.
      q4_mean, q6_mean: means of q̄4 and q̄6 over particles and frames.
      n_frames: frames averaged.
      params: the settings used (``rdf_r_max``, ``rdf_bin``, ``adf_cutoff``,
        ``q_cutoff``, ``q_switch`` in nm); two structures compare only when
        these agree.
    """

    r: np.ndarray
    rdf: np.ndarray
    theta: np.ndarray
    adf: np.ndarray
    q_edges: np.ndarray
    q4_hist: np.ndarray
    q6_hist: np.ndarray
    q4_mean: float
    q6_mean: float
    n_frames: int
    params: dict

    @classmethod
    def from_dict(cls, d: dict) -> Structure:
        """The inverse of :meth:`to_dict` (extra keys, e.g. ``wall_s``, are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        arrays = ("r", "rdf", "theta", "adf", "q_edges", "q4_hist", "q6_hist")
        return cls(**{k: (np.asarray(v, np.float64) if k in arrays else v)
                      for k, v in d.items() if k in fields})  # fmt: skip

    def to_dict(self) -> dict:
        """JSON-ready lists and floats."""
        return {
            k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in dataclasses.asdict(self).items()
        }


def structure(
    positions: Any,
    box: Any,
    *,
    rdf_r_max: float = 1.0,
    rdf_bin: float = 0.005,
    adf_cutoff: float = 0.34,
    q_cutoff: float = 0.36,
    q_switch: float = 0.31,
    q_bins: int = 50,
    max_neighbors: int = 40,
    max_frames: int | None = 200,
) -> Structure:
    """RDF, ADF and q̄4/q̄6 distributions of ``positions`` ``[T, N, 3]`` (nm).

    Defaults follow the water papers: 0.005 nm RDF bins up to 1 nm; ADF of
    neighbours within 0.34 nm (the first minimum of the SPC/E O-O RDF, paper
    000 §3); Lechner-Dellago averaged q̄4, q̄6 with the switch of paper 002
    eq. (A3) from 0.31 to 0.36 nm.

    Args:
      positions: ``[T, N, 3]`` or ``[N, 3]`` positions (nm).
      box: the periodic box (nm): scalar, ``[3]`` or ``[3, 3]``.
      max_frames: use at most this many frames, evenly strided (``None``: all).

    Returns:
      a :class:`Structure`.
    """
    R = np.asarray(positions)
    R = R[None] if R.ndim == 2 else R
    if R.ndim != 3 or R.shape[-1] != 3 or R.shape[0] == 0:
        raise ValueError(f"positions must have shape [T, N, 3] (nm) with T >= 1, got {R.shape}")
    if not np.all(np.isfinite(R)):
        raise ValueError("positions contain NaN or inf entries")
    if max_frames is not None and R.shape[0] > max_frames:
        R = R[:: int(math.ceil(R.shape[0] / max_frames))]
    n_bins = int(round(rdf_r_max / rdf_bin))
    g = observables.rdf(R, box, r_max=n_bins * rdf_bin, n_bins=n_bins)
    a = observables.adf(R, box, cutoff=adf_cutoff, n_bins=180, max_neighbors=max_neighbors)
    q = observables.steinhardt(
        R, box, l=(4, 6), cutoff=q_cutoff, r_switch=q_switch, max_neighbors=max_neighbors,
        average=True,
    )  # fmt: skip
    qs = np.asarray(q.q).reshape(-1, 2)
    edges = np.linspace(0.0, 1.0, int(q_bins) + 1)
    h4 = np.histogram(qs[:, 0], bins=edges, density=True)[0]
    h6 = np.histogram(qs[:, 1], bins=edges, density=True)[0]
    return Structure(
        r=np.asarray(g.r, np.float64),
        rdf=np.asarray(g.g, np.float64),
        theta=np.asarray(a.theta, np.float64),
        adf=np.asarray(a.p, np.float64),
        q_edges=edges,
        q4_hist=h4,
        q6_hist=h6,
        q4_mean=float(qs[:, 0].mean()),
        q6_mean=float(qs[:, 1].mean()),
        n_frames=int(R.shape[0]),
        params=dict(
            rdf_r_max=float(n_bins * rdf_bin),
            rdf_bin=float(rdf_bin),
            adf_cutoff=float(adf_cutoff),
            q_cutoff=float(q_cutoff),
            q_switch=float(q_switch),
            q_bins=int(q_bins),
        ),  # fmt: skip
    )


def min_pair_distance(positions: Any, box: Any) -> float:
    """The closest minimum-image pair distance over all frames ``[T, N, 3]`` (nm).

    One frame at a time (``lax.map``), ``O(N^2)`` memory per frame.
    """
    R = jnp.asarray(np.asarray(positions))
    R = R[None] if R.ndim == 2 else R
    M = jnp.asarray(box_matrix(box), R.dtype)
    inv = jnp.linalg.inv(M)
    n = R.shape[1]
    far = jnp.asarray(jnp.inf, R.dtype)

    def frame(Rt):
        d = Rt[:, None, :] - Rt[None, :, :]
        s = d @ inv.T
        d = (s - jnp.round(s)) @ M.T
        r2 = jnp.sum(d**2, -1) + jnp.where(jnp.eye(n, dtype=bool), far, 0.0)
        return jnp.min(r2)

    return float(jnp.sqrt(jnp.min(jax.lax.map(frame, R))))


def _tae(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(observables.total_absolute_error(x, a, b))


@dataclasses.dataclass
class ValidationReport:
    """What a validation run measured; ``summary()`` is JSON-ready.

    Attributes:
      structure: the CG run's :class:`Structure` (None if it exploded first).
      reference: the reference :class:`Structure`.
      rdf_tae_nm: RDF total absolute error (paper 003 eq. 9) over the RDF
        range (nm); ``rdf_tae_A`` is the same in Å, the papers' unit.
      adf_tae: ADF total absolute error (dimensionless: densities in 1/degree
        integrated over degrees; 0 = identical, 2 = disjoint).
      q4_mean, q6_mean: CG means of q̄4, q̄6 (the reference's are in ``reference``).
      q4_tae, q6_tae: total absolute error of the q̄4/q̄6 densities.
      min_pair_distance: closest pair over the NVT frames (nm).
      temperature_mean, temperature_std: over the NVT frames (K).
      nve_drift: NVE total-energy drift, |slope| of a linear fit (kT per bead
        per ns); ``nve_fluctuation`` the RMS about the fit (kT per bead).
      stable: every stage finished without a :class:`SimulationError`, the
        temperature mean is within 10 % of the target and no pair came closer
        than ``min_allowed_distance``.
      error: the :class:`SimulationError` message when a stage exploded.
      wall_s: wall time per stage (s).
      trajectory: the NVT :class:`~cgjax.simulate.Trajectory` (not in ``summary``).
      protocol: the sampling :class:`~cgjax.simulate.Protocol` as a dict.
    """

    reference: Structure
    structure: Structure | None = None
    rdf_tae_nm: float = math.nan
    adf_tae: float = math.nan
    q4_mean: float = math.nan
    q6_mean: float = math.nan
    q4_tae: float = math.nan
    q6_tae: float = math.nan
    min_pair_distance: float = math.nan
    temperature_target: float = math.nan
    temperature_mean: float = math.nan
    temperature_std: float = math.nan
    nve_drift: float = math.nan
    nve_fluctuation: float = math.nan
    dt: float = math.nan
    simulated_ps: dict = dataclasses.field(default_factory=dict)
    stable: bool = False
    error: str | None = None
    wall_s: dict = dataclasses.field(default_factory=dict)
    trajectory: Any = None
    protocol: dict | None = None

    @property
    def rdf_tae_A(self) -> float:
        return self.rdf_tae_nm / units.angstrom

    def summary(self) -> dict:
        """Scalars for ``results.json`` (units in the key names)."""
        ref = self.reference
        return {
            "rdf_tae_A": self.rdf_tae_A,
            "rdf_tae_nm": self.rdf_tae_nm,
            "rdf_range_nm": [0.0, ref.params["rdf_r_max"]],
            "adf_tae": self.adf_tae,
            "adf_cutoff_nm": ref.params["adf_cutoff"],
            "q4_mean_cg": self.q4_mean,
            "q4_mean_ref": ref.q4_mean,
            "q6_mean_cg": self.q6_mean,
            "q6_mean_ref": ref.q6_mean,
            "q4_tae": self.q4_tae,
            "q6_tae": self.q6_tae,
            "min_pair_distance_nm": self.min_pair_distance,
            "temperature_target_K": self.temperature_target,
            "temperature_mean_K": self.temperature_mean,
            "temperature_std_K": self.temperature_std,
            "nve_drift_kT_per_bead_per_ns": self.nve_drift,
            "nve_fluctuation_kT_per_bead": self.nve_fluctuation,
            "dt_ps": self.dt,
            "simulated_ps": self.simulated_ps,
            "stable": self.stable,
            "error": self.error,
            "wall_s": self.wall_s,
            "protocol": self.protocol,
        }

    def plot(self, path: str, *, label: str = "CG", reference_label: str = "AA") -> str:
        """RDF, ADF and q̄4/q̄6 panels, CG against the reference, as a PNG at ``path``."""
        curves = {reference_label: self.reference}
        if self.structure is not None:
            curves[label] = self.structure
        return plot_structures(curves, path)


def plot_structures(
    structures: dict[str, Structure], path: str, *, title: str | None = None
) -> str:
    """RDF, ADF, q̄4 and q̄6 of several :class:`Structure` on one PNG (needs matplotlib).

    The first entry is drawn as the reference (black). Returns ``path``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - plot extra
        raise ImportError("plots need matplotlib: pip install 'cgjax[plot]'") from e
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for i, (name, s) in enumerate(structures.items()):
        style = dict(color="k", lw=2.0) if i == 0 else dict(lw=1.3)
        centres = 0.5 * (s.q_edges[1:] + s.q_edges[:-1])
        axes[0].plot(s.r / units.angstrom, s.rdf, label=name, **style)
        axes[1].plot(s.theta, s.adf, label=name, **style)
        axes[2].plot(centres, s.q4_hist, label=name, **style)
        axes[3].plot(centres, s.q6_hist, label=name, **style)
    axes[0].set(xlabel="r (Å)", ylabel="g(r)", title="RDF")
    first = next(iter(structures.values()))
    axes[1].set(
        xlabel="θ (degrees)", ylabel="P(θ) (1/degree)",
        title=f"ADF (neighbours < {first.params['adf_cutoff'] / units.angstrom:.1f} Å)",
    )  # fmt: skip
    axes[2].set(xlabel="q̄4", ylabel="density", title="q̄4")
    axes[3].set(xlabel="q̄6", ylabel="density", title="q̄6")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def validate_by_simulation(
    model: Any,
    params: Any,
    reference: Structure,
    positions: Any,
    protocol: Protocol,
    *,
    nve_steps: int = 5000,
    min_allowed_distance: float = 0.1,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Samples the model as ``protocol`` says and compares the run's structure with ``reference``.

    Stages: the protocol's equilibration and production
    (:func:`~cgjax.simulate.sample`; the production frames' structure,
    closest pair and temperature are measured), then NVE from the
    production's last state for ``nve_steps`` at the same ``dt`` (energy
    drift). A stage that explodes (:class:`SimulationError`) ends the
    validation: the report says which stage and step, keeps what was measured
    before, and has ``stable=False``. Nothing raises for an unstable model;
    bad arguments do.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel` built on its
        :class:`System` (box, species, masses in amu), as :func:`~cgjax.simulate.sample` takes.
      params: its parameters.
      reference: the reference :class:`Structure` (e.g. of the mapped AA
        frames); the CG structure is computed with the same settings.
      positions: ``[N, 3]`` starting positions (nm), e.g. a reference frame.
      protocol: the :class:`~cgjax.simulate.Protocol` (paper 000: 2 fs,
        Nose-Hoover); its production must hold at least two frames.
      nve_steps: steps of the NVE continuation (``0`` skips it).
      min_allowed_distance: a pair closer than this (nm) counts as a collapse.
      progress, log: progress bars and messages.

    Returns:
      a :class:`ValidationReport`.
    """
    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol must be a simulate.Protocol, got {type(protocol).__name__}")
    if protocol.production_steps < 2 * protocol.record_every:
        raise ValueError(
            f"protocol.production_steps ({protocol.production_steps}) must hold at least two "
            f"frames of record_every = {protocol.record_every} steps"
        )
    system = system_of(model, "validate_by_simulation")
    temperature, dt, kT = protocol.temperature, protocol.dt, protocol.kT
    n = int(np.asarray(system.species).shape[0])
    report = ValidationReport(reference=reference, temperature_target=temperature, dt=dt,
                              protocol=protocol.to_dict())  # fmt: skip
    say = log or (lambda msg: None)
    stage = "sampling"
    try:
        out = sample(model, params, positions, protocol, progress=progress, log=log)
        report.wall_s.update(out.wall_s)
        for name, steps in (("equilibration", protocol.equilibration_steps),
                            ("production", protocol.production_steps)):  # fmt: skip
            if steps:
                report.simulated_ps[name] = steps * dt
        traj = report.trajectory = out.trajectory
        T = np.asarray(traj.temperature, np.float64)
        report.temperature_mean, report.temperature_std = float(T.mean()), float(T.std())
        t0 = time.perf_counter()
        report.min_pair_distance = min_pair_distance(traj.positions, system.box)
        p = reference.params
        cg = report.structure = structure(
            traj.positions, system.box, rdf_r_max=p["rdf_r_max"], rdf_bin=p["rdf_bin"],
            adf_cutoff=p["adf_cutoff"], q_cutoff=p["q_cutoff"], q_switch=p["q_switch"],
            q_bins=p["q_bins"],
        )  # fmt: skip
        report.wall_s["analysis"] = time.perf_counter() - t0
        report.rdf_tae_nm = _tae(reference.r, reference.rdf, cg.rdf)
        report.adf_tae = _tae(reference.theta, reference.adf, cg.adf)
        centres = 0.5 * (reference.q_edges[1:] + reference.q_edges[:-1])
        report.q4_tae = _tae(centres, reference.q4_hist, cg.q4_hist)
        report.q6_tae = _tae(centres, reference.q6_hist, cg.q6_hist)
        report.q4_mean, report.q6_mean = cg.q4_mean, cg.q6_mean
        if int(nve_steps) > 0:
            stage = "nve"
            t0 = time.perf_counter()
            nve_sim = nve(model.energy_fn(params), system, dt=dt, kT=kT)
            s = nve_sim.init_fn(jax.random.key(protocol.seed + 1), out.state.position,
                                neighbor=out.neighbor)  # fmt: skip
            s = s.set(momentum=out.state.momentum)
            every = max(1, min(protocol.record_every, int(nve_steps) // 20))
            nf = None if protocol.skin is None else model.neighbor_fn(skin=protocol.skin)
            res = run(nve_sim, s, n_steps=int(nve_steps), record_every=every,
                      neighbor=out.neighbor, neighbor_fn=nf,
                      monitor=Monitor(progress=progress, log=log))  # fmt: skip
            report.wall_s[stage] = time.perf_counter() - t0
            report.simulated_ps[stage] = int(nve_steps) * dt
            t = np.asarray(res.trajectory.time, np.float64)
            E = np.asarray(res.trajectory.total_energy, np.float64)
            coef = np.polyfit(t, E, 1)
            report.nve_drift = abs(float(coef[0])) * 1e3 / n / kT
            report.nve_fluctuation = float(np.std(E - np.polyval(coef, t))) / n / kT
    except SimulationError as e:
        stage = e.stage or stage
        report.error = f"{stage}: {e}"
        say(f"validation run exploded in {stage}: {e}")
        if e.trajectory is not None and e.trajectory.n_frames and stage == "production":
            report.trajectory = e.trajectory
        return report
    report.stable = bool(
        abs(report.temperature_mean - temperature) < 0.1 * temperature
        and report.min_pair_distance > min_allowed_distance
    )
    return report
