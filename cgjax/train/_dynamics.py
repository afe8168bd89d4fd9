"""Dynamics tuning (paper 004 §2.3): bisection on the amplitude of ``A sin(omega r) / r^2``.

A CG model that reproduces the AA structure diffuses too fast: coarse-graining
removes friction. Paper 004 adds a high-frequency term whose barriers slow
diffusion while, at large ``omega``, leaving the RDF unchanged, and finds its
amplitude by bisection because ``D(A)`` decreases monotonically.

:class:`DynamicsProbe` runs one NVT (Nose-Hoover) simulation of a model at
given parameters and returns its diffusion coefficient, MSD and RDF; the
parameters are a traced argument, so every evaluation of a bisection or an
``omega`` scan reuses one compilation. :func:`tune_high_frequency` bisects
``A``; :func:`omega_scan` measures how the RDF and ``D`` depend on ``omega``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from cgjax import units
from cgjax._types import Params
from cgjax._validation import settings_from_config
from cgjax.train._bisection import BisectionResult, BracketError, bisect

__all__ = [
    "PAPER_AMPLITUDE_BRACKET",
    "PAPER_OMEGA",
    "AmplitudeSearch",
    "DynamicsProbe",
    "HighFrequencyTuning",
    "evaluation_key",
    "omega_scan",
    "rdf_tae_A",
    "set_high_frequency",
    "tune_high_frequency",
]

#: Paper 004's bracket for ``A``: [0, 0.2 eV Å^2], in kJ/mol nm^2.
PAPER_AMPLITUDE_BRACKET = (0.0, 0.2 * units.eV * units.angstrom**2)
#: Paper 004's ``omega`` = 100 Å^-1, in 1/nm.
PAPER_OMEGA = 100.0 / units.angstrom


def _uniform_grid(r: np.ndarray, name: str) -> tuple[float, int]:
    r = np.asarray(r, np.float64)
    if r.ndim != 1 or r.size < 2:
        raise ValueError(f"{name} must be a 1-D grid of bin centres (nm), got shape {r.shape}")
    dr = r[1] - r[0]
    if not np.allclose(np.diff(r), dr, rtol=1e-4, atol=1e-9) or not abs(r[0] - dr / 2) < 1e-4 * dr:
        raise ValueError(
            f"{name} must be uniform bin centres starting at dr/2 (dr = {dr:.6g} nm); "
            f"got r[0] = {r[0]:.6g}"
        )
    return float(r[-1] + dr / 2), int(r.size)


class DynamicsProbe:
    """Dynamics of one model under one :class:`~cgjax.simulate.Protocol`:
    ``probe(params, R0) -> {D, MSD, RDF, ...}``.

    Every call samples from ``R0`` with :func:`cgjax.simulate.sample` (velocities
    from the protocol's seed; equilibration, then production) and measures over
    the production frames:

    - ``D`` (nm^2/ps, the Einstein fit of the MSD on ``fit_window``) and
      ``D_err`` (standard error over ``n_blocks`` blocks);
    - the MSD curve ``msd_t`` (ps), ``msd`` (nm^2);
    - the histogram RDF on the reference grid, and its total absolute error
      against the reference in Å (``rdf_tae_A``), when one is given;
    - the mean temperature (K) and the wall time.

    Paper 004's protocol: Langevin equilibration (``equilibration_thermostat=
    "langevin"``), then Nose-Hoover production. Why Langevin first: a
    Nose-Hoover start away from equilibrium (new parameters, e.g. ``U_HF``
    switched on) carries the start's transient into the production; the
    friction removes it within a fraction of a picosecond, and the production
    (where ``D`` is measured) stays deterministic. It does not remove the slow
    wander of a small system's temperature under a weak Nose-Hoover coupling,
    which sets the noise of ``D``: on 512 CG SPC/E beads at tau = 1 ps the
    temperature averaged over 1 ps wandered by 8.7 K rms (8.9 K after a
    Langevin start) with a ~5 ps period, and ``D`` over 3-ps windows followed
    it (12.5 % scatter); at tau = 0.2 ps, 4.3 K and 6.9 %.

    Evaluations at different parameters share one compiled simulation (the
    parameters are passed to the energy as a traced argument) and, with the
    same ``R0`` and seed, common random numbers, which makes differences
    between nearby parameters less noisy than the values themselves.

    Args:
      model: the :class:`~cgjax.potentials.EnergyModel` (kJ/mol, nm) built on
        its :class:`~cgjax.simulate.System` (box, masses in amu).
      protocol: the :class:`~cgjax.simulate.Protocol`; a high-frequency term
        with ``omega`` = 1000 1/nm needs ``dt`` of about 1 fs (paper 004 uses 1 fs).
      fit_window: ``(t0, t1)`` (ps) of the Einstein fit.
      n_blocks: blocks for ``D_err``; each must hold the window. A run longer than
        the protocol's ``production_steps`` is cut into more blocks of the same length.
      reference_rdf: ``(r, g)`` on uniform bin centres (nm); the RDF is
        computed on the same grid.
      rdf_grid: ``(r_max nm, n_bins)`` of the RDF when there is no reference.
      progress: progress bars.
      log: one line per evaluation.
    """

    def __init__(
        self,
        model: Any,
        protocol: Any,
        *,
        fit_window: tuple[float, float],
        n_blocks: int = 2,
        reference_rdf: tuple[Any, Any] | None = None,
        rdf_grid: tuple[float, int] = (1.0, 200),
        progress: bool | None = None,
        log: Callable[[str], None] | None = None,
    ):
        from cgjax._system import system_of

        self.model, self.protocol = model, protocol
        self.system = system_of(model, "DynamicsProbe")
        self.fit_window = tuple(float(v) for v in fit_window)
        self.n_blocks = int(n_blocks)
        self._check_window(self.production_steps)
        if reference_rdf is not None:
            r_ref, g_ref = (np.asarray(x, np.float64) for x in reference_rdf)
            if g_ref.shape != r_ref.shape:
                raise ValueError(
                    f"reference_rdf: r {r_ref.shape} and g {g_ref.shape} differ in shape"
                )
            self.rdf_r_max, self.rdf_bins = _uniform_grid(r_ref, "reference_rdf r")
            self.reference_rdf = (r_ref, g_ref)
        else:
            self.rdf_r_max, self.rdf_bins = float(rdf_grid[0]), int(rdf_grid[1])
            self.reference_rdf = None
        self.progress, self.log = progress, log or (lambda msg: None)
        self.evaluations = 0

    @property
    def production_steps(self) -> int:
        return self.protocol.production_steps

    @property
    def dt(self) -> float:
        """Time step (ps)."""
        return self.protocol.dt

    def _fits(self, production_steps: int) -> bool:
        every = self.protocol.record_every
        block = production_steps // every // self.n_blocks * every
        return self.fit_window[1] <= (block - every) * self.dt + 1e-9

    def _check_window(self, production_steps: int) -> None:
        if not self._fits(production_steps):
            every = self.protocol.record_every
            block = production_steps // every // self.n_blocks * every * self.dt
            raise ValueError(
                f"fit_window {self.fit_window} ps does not fit in {self.n_blocks} blocks of "
                f"{block:g} ps of a {production_steps}-step production run; "
                "run longer or use fewer blocks"
            )

    def __call__(
        self,
        params: Params,
        R0: Any,
        *,
        label: str = "",
        production_steps: int | None = None,
        seed: int | None = None,
    ) -> dict:
        """One evaluation; ``production_steps`` and ``seed`` override the protocol's.

        A production length that is a multiple of the run chunk (1000 steps
        for ``record_every`` dividing 1000) reuses the compiled simulation. A
        run too short for the fit window (an RDF-only run) reports ``D = NaN``.
        """
        from cgjax import observables, simulate

        t_start = time.perf_counter()
        changes = {}
        if production_steps is not None:
            changes["production_steps"] = int(production_steps)
        if seed is not None:
            changes["seed"] = int(seed)
        protocol = self.protocol.replace(**changes) if changes else self.protocol
        n_prod = protocol.production_steps
        out = simulate.sample(self.model, params, R0, protocol, progress=self.progress,
                              log=self.log)  # fmt: skip
        traj = out.trajectory
        dt_frame = self.dt * protocol.record_every
        if self._fits(n_prod):
            # blocks as long as those of the probe's own length: a longer run
            # (validation) has more of them, so its error bar is worth more
            n_blocks = max(self.n_blocks, n_prod * self.n_blocks // self.production_steps)
            diff = observables.diffusion_from_trajectory(
                traj.unwrapped, dt_frame, fit_window=self.fit_window, n_blocks=n_blocks,
                masses=self.system.masses,
            )  # fmt: skip
            D, D_err = float(diff.D), float(diff.D_err)
        else:
            D, D_err = float("nan"), float("nan")
        max_lag = min(int(round(self.fit_window[1] / dt_frame)), traj.unwrapped.shape[0] - 1)
        curve = observables.msd(traj.unwrapped, max_lag=max_lag, masses=self.system.masses)
        g = observables.rdf(traj.positions, self.system.box, r_max=self.rdf_r_max,
                            n_bins=self.rdf_bins)  # fmt: skip
        result = dict(
            D=D,
            D_err=D_err,
            msd_t=(np.arange(max_lag + 1) * dt_frame).tolist(),
            msd=np.asarray(curve.msd).tolist(),
            rdf_r=np.asarray(g.r).tolist(),
            rdf_g=np.asarray(g.g).tolist(),
            temperature_K=float(np.mean(traj.temperature)),
            wall_s=time.perf_counter() - t_start,
            steps_per_s=float(out.steps_per_second),
            final_positions=np.asarray(traj.positions[-1]).tolist(),
        )
        if self.reference_rdf is not None:
            result["rdf_tae_A"] = rdf_tae_A(self.reference_rdf[0], self.reference_rdf[1], g.g)
        self.evaluations += 1
        self.log(
            f"{label}D = {result['D'] / units.cm2_per_s:.4g} cm^2/s "
            f"(+- {result['D_err'] / units.cm2_per_s:.2g})"
            + (f", RDF TAE {result['rdf_tae_A']:.3f} Å" if "rdf_tae_A" in result else "")
            + f", <T> {result['temperature_K']:.1f} K, {result['wall_s']:.0f} s"
        )
        return result


def rdf_tae_A(r: Any, g_ref: Any, g: Any) -> float:
    """Total absolute error ``sum |g - g_ref| dr`` of two RDFs on one uniform grid, in Å."""
    r = np.asarray(r, np.float64)
    return float(np.sum(np.abs(np.asarray(g) - np.asarray(g_ref))) * (r[1] - r[0]) / units.angstrom)


def set_high_frequency(
    params: Params, term: str = "hf", amplitude: float | None = None, omega: float | None = None
) -> Params:
    """A copy of ``params`` with the high-frequency term's ``amplitude`` and/or ``omega`` set."""
    if term not in params or not {"amplitude", "omega"} <= set(params[term]):
        have = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"the parameters have no high-frequency term {term!r} with 'amplitude' and 'omega' "
            f"(top-level keys: {have}); build the model with potentials.sum_of(..., {term}="
            "potentials.HighFrequency(...))"
        )
    hf = dict(params[term])
    dtype = jnp.asarray(hf["amplitude"]).dtype
    if amplitude is not None:
        hf["amplitude"] = jnp.asarray(amplitude, dtype)
    if omega is not None:
        hf["omega"] = jnp.asarray(omega, dtype)
    return {**params, term: hf}


class HighFrequencyTuning(NamedTuple):
    """What :func:`tune_high_frequency` found.

    Attributes:
      amplitude: the tuned ``A`` (kJ/mol nm^2).
      omega: the fixed ``omega`` (1/nm).
      params: the parameters with ``A`` set.
      bisection: the :class:`~cgjax.train.BisectionResult` (every evaluation
        in ``history``, each with ``D``, ``D_err``, ``rdf_tae_A``, ``rdf_shift_A``;
        its ``x`` is ``amplitude``).
      final: the evaluation at ``amplitude`` (a full probe result).
      rdf_shift_A: TAE (Å) between the RDF at ``amplitude`` and at the bracket's
        lower end (no high-frequency term for the default bracket).
      rdf_tolerance_A: the allowed shift; ``rdf_invariant`` says whether it held.
      rdf_invariant: ``rdf_shift_A <= rdf_tolerance_A``.
      final_runs: every final run at a tuned ``A`` in order (``A_kJmol_nm2``,
        ``D``, ``D_err``, ``temperature_K``); more than one after a refinement.
    """

    amplitude: float
    omega: float
    params: Params
    bisection: BisectionResult
    final: dict
    rdf_shift_A: float
    rdf_tolerance_A: float
    rdf_invariant: bool
    final_runs: Sequence[dict] = ()


def evaluation_key(amplitude: float, omega: float, production_steps: int | None = None) -> str:
    """The key of an evaluation in the ``cache`` of :func:`tune_high_frequency`.

    ``production_steps`` is given for a run whose length is not the probe's
    own (the final run of :func:`tune_high_frequency` with
    ``final_production_steps``).
    """
    key = f"A={amplitude:.10g},omega={omega:.10g}"
    return key if production_steps is None else f"{key},steps={int(production_steps)}"


_ESTIMATES = ("log_regression", "log_interpolation", "midpoint")


@dataclasses.dataclass(frozen=True)
class AmplitudeSearch:
    """How :func:`tune_high_frequency` searches ``A`` (kJ/mol nm^2) of ``A sin(omega r) / r^2``.

    Attributes:
      bracket: ``(lo, hi)`` for ``A`` (kJ/mol nm^2); default paper 004's
        [0, 0.2 eV Å^2].
      omega: fixed ``omega`` (1/nm; default 100 Å^-1); ``None`` keeps the parameters'.
      term: the name of the high-frequency term in the parameters.
      xtol: bracket width to stop at (kJ/mol nm^2); default 1/64 of the bracket.
      ftol: stop when ``|D - target_D| <= ftol`` (nm^2/ps); default 3 % of
        ``target_D``.
      max_evals: simulations at most in the bracket search, the two ends
        included (the final runs at the tuned ``A`` come on top).
      method: ``"bisection"`` or ``"illinois"`` (see :func:`tune_high_frequency`).
      estimate: ``"log_regression"``, ``"log_interpolation"`` or ``"midpoint"``.
      final_production_steps: the production length of the final run at the
        tuned ``A`` (default the probe's), e.g. a longer validation run; it is
        cached under ``evaluation_key(A, omega, final_production_steps)``.
      refine: final runs made at most on top of the first to correct ``A``; 0: none.
      refine_rtol: relative miss ``|D / target_D - 1|`` of a final run that
        ends the refinement; default ``ftol / target_D``.
      rdf_tolerance_A: allowed RDF change (TAE, Å) between ``A = lo`` and the
        tuned ``A``.

    Raises:
      ValueError: naming the field.
    """

    bracket: tuple[float, float] = PAPER_AMPLITUDE_BRACKET
    omega: float | None = PAPER_OMEGA
    term: str = "hf"
    xtol: float | None = None
    ftol: float | None = None
    max_evals: int = 12
    method: str = "bisection"
    estimate: str = "log_regression"
    final_production_steps: int | None = None
    refine: int = 0
    refine_rtol: float | None = None
    rdf_tolerance_A: float = 0.15

    def __post_init__(self) -> None:
        if self.estimate not in _ESTIMATES:
            raise ValueError(
                f"AmplitudeSearch.estimate must be one of {', '.join(_ESTIMATES)}, got "
                f"{self.estimate!r}"
            )
        if self.method not in ("bisection", "illinois"):
            raise ValueError(
                f"AmplitudeSearch.method must be 'bisection' or 'illinois', got {self.method!r}"
            )
        if int(self.refine) < 0:
            raise ValueError(f"AmplitudeSearch.refine must be >= 0, got {self.refine}")
        lo, hi = (float(v) for v in self.bracket)
        if not lo < hi:
            raise ValueError(
                f"AmplitudeSearch.bracket must be (lo, hi) with lo < hi (kJ/mol nm^2), got "
                f"{self.bracket}"
            )
        object.__setattr__(self, "bracket", (lo, hi))

    @classmethod
    def from_config(cls, section: Any, **fixed: Any) -> AmplitudeSearch:
        """The section's keys that name a field (others ignored), plus ``fixed``
        (a field in both is an error)."""
        return settings_from_config(cls, section, fixed)


class _Evaluations:
    """Probe runs at ``A`` (one ``omega``), cached by :func:`evaluation_key`, logged."""

    def __init__(self, probe, params, R0, term, omega, cache, on_evaluation, log):
        self.probe, self.params, self.R0, self.term, self.omega = probe, params, R0, term, omega
        self.cache, self.on_evaluation, self.log = cache, on_evaluation, log

    def __call__(self, amplitude: float, production_steps: int | None = None, what: str = ""):
        key = evaluation_key(amplitude, self.omega, production_steps)
        label = f"{what}A = {amplitude:.5g} kJ/mol nm^2: "
        if key not in self.cache:
            p = set_high_frequency(self.params, self.term, amplitude, self.omega)
            self.cache[key] = self.probe(p, self.R0, label=label, production_steps=production_steps)
            if self.on_evaluation is not None:
                self.on_evaluation(self.cache)
        else:
            self.log(f"{label}D = {self.cache[key]['D'] / units.cm2_per_s:.4g} cm^2/s (cached)")
        return self.cache[key]


def _bracket_error(err: BracketError, lo: float, hi: float, target_D: float) -> BracketError:
    d_lo, d_hi = (h["f"] for h in err.history[:2])
    cgs = units.cm2_per_s
    side = (
        f"at A = {lo:g} kJ/mol nm^2 the CG model already diffuses slower (D = "
        f"{d_lo / cgs:.4g} cm^2/s) than the target {target_D / cgs:.4g} cm^2/s: a barrier "
        "term can only slow it further"
        if d_lo < target_D
        else f"at A = {hi:g} kJ/mol nm^2 it still diffuses faster (D = {d_hi / cgs:.4g} "
        f"cm^2/s) than the target {target_D / cgs:.4g} cm^2/s: widen the bracket"
    )
    return BracketError(f"tune_high_frequency: no root in A in [{lo:g}, {hi:g}] kJ/mol nm^2: "
                        f"{side}", err.history)  # fmt: skip


def _estimate(found, points, target_D, s: AmplitudeSearch, xtol, evaluate, log) -> float:
    """The tuned ``A`` from the search's evaluations (``s.estimate``)."""
    lo, hi = s.bracket
    amplitude = 0.5 * sum(found.bracket)
    a, b = found.bracket
    met_ftol = found.converged and a < b and any(h["x"] == found.x for h in found.history)
    if met_ftol:
        return found.x
    fitted = None
    if s.estimate == "log_regression" and a < b:
        w = 0.0 if b - a < xtol else b - a
        fitted = _log_regression_root(points, float(target_D), (max(lo, a - w), min(hi, b + w)))
        if fitted is None:
            log("ln D regression: no point near the target or a slope >= 0; "
                "interpolating in the final bracket instead")  # fmt: skip
        else:
            log(f"A from the ln D regression through {fitted[1]} evaluations: "
                f"{fitted[0]:.5g} kJ/mol nm^2 (final bracket [{a:.5g}, {b:.5g}])")  # fmt: skip
            return fitted[0]
    if s.estimate != "midpoint" and a < b:
        # both ends were simulated by the search (not logged again as cached)
        d_a, d_b = (evaluate.cache[evaluation_key(x, evaluate.omega)]["D"] for x in (a, b))
        if d_a > 0 and d_b > 0 and d_a != d_b:
            frac = (math.log(target_D) - math.log(d_a)) / (math.log(d_b) - math.log(d_a))
            amplitude = a + min(max(frac, 0.0), 1.0) * (b - a)
        log(f"A from ln D interpolated in the final bracket [{a:.5g}, {b:.5g}]: "
            f"{amplitude:.5g} kJ/mol nm^2 (midpoint {0.5 * (a + b):.5g})")  # fmt: skip
    return amplitude


def _refine(found, points, final, target_D, s: AmplitudeSearch, rtol, n_final, evaluate, log):
    """Final runs at ``A`` refitted while they miss the target by more than ``rtol``."""
    lo, hi = s.bracket

    def summary(amplitude: float, run: dict) -> dict:
        return dict(A_kJmol_nm2=amplitude, D=run["D"], D_err=run["D_err"],
                    temperature_K=run["temperature_K"], production_steps=n_final)  # fmt: skip

    finals = [summary(found.x, final)]
    for _ in range(int(s.refine)):
        miss = final["D"] / float(target_D) - 1.0
        if abs(miss) <= rtol:
            break
        runs = [(f["A_kJmol_nm2"], f["D"], f["production_steps"]) for f in finals]
        # the final runs are in the line whatever their D: a run that missed by
        # more than the regression's window is the point that says how far off it is
        refit = _log_regression_root(points, float(target_D), (lo, hi), keep=runs)
        new = None if refit is None else refit[0]
        how = "A refitted with it"

        def repeated(x):
            return any(abs(x - f["A_kJmol_nm2"]) < 1e-9 * (hi - lo) for f in finals)

        a, b = _straddle(points + runs, float(target_D))
        if a is not None and (new is None or repeated(new)):
            # the line gave nothing new: ln D interpolated between the ends of the
            # tightest bracket of the runs moves inside it (not used otherwise: the
            # short search runs' noise can misplace that bracket; the line weighs
            # them by length against the final runs)
            frac = (math.log(target_D) - math.log(a[1])) / (math.log(b[1]) - math.log(a[1]))
            new = a[0] + min(max(frac, 0.0), 1.0) * (b[0] - a[0])
            how = (f"no new A from the ln D line; A interpolated in ln D in the runs' "
                   f"bracket [{a[0]:.5g}, {b[0]:.5g}]")  # fmt: skip
        if new is None or repeated(new):
            log("refinement: no new A from the ln D regression; keeping the last final run")
            break
        log(f"final run missed the target by {miss:+.1%}: {how}, "
            f"{found.x:.5g} -> {new:.5g} kJ/mol nm^2")  # fmt: skip
        found = found._replace(x=new)
        final = evaluate(found.x, s.final_production_steps, what="final run, refitted: ")
        finals.append(summary(found.x, final))
    return found, final, finals


def tune_high_frequency(
    probe: DynamicsProbe,
    params: Params,
    R0: Any,
    *,
    target_D: float,
    search: AmplitudeSearch = AmplitudeSearch(),
    cache: dict | None = None,
    on_evaluation: Callable[[dict], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> HighFrequencyTuning:
    """Bisects the amplitude ``A`` of the high-frequency term so that ``D_CG(A) = target_D``.

    Both bracket ends are simulated first. At the lower end (``A = 0`` by
    default) the CG model must diffuse faster than the target and at the
    upper end slower; otherwise :class:`~cgjax.train.BracketError` says which
    end fails and by how much. The bracket is then narrowed until it is
    narrower than ``xtol`` or a point's ``D`` is within ``ftol`` of the
    target: halved (``method="bisection"``, paper 004) or by the Illinois
    method on ``ln D`` (``"illinois"``: the bracket still holds the root, and
    for ``D`` falling roughly exponentially with a barrier's height the
    points gather near it in fewer simulations).

    Unless a point met ``ftol``, the tuned ``A`` is then estimated from the
    evaluations (``estimate``):

    - ``"log_regression"`` (default): the weighted least-squares line
      ``ln D = a + b A`` through every evaluation whose ``D`` lies within a
      factor 1.5 of the target, each weighted by its production length (the
      variance of ``ln D`` falls as 1 / run length; the two-block error bars
      of short runs are too noisy to weight by), solved for
      ``ln target_D``. Each ``D`` of a short run is noisy (7-10 % for 6 ps
      of 512 CG SPC/E beads); the
      line averages it over all the points near the root, where reading the
      root off the final bracket's two ends (or the sign of each midpoint)
      does not. The root is kept within the final bracket widened by its
      width on each side (within the bracket itself once it is narrower than
      ``xtol``: then the search has converged and curvature of ``ln D`` over
      the window would only blur it). When all those points share one ``A``
      the line goes through them with the slope fitted to all evaluations.
      It falls back to ``"log_interpolation"`` without a point near the
      target or with a non-negative slope.
    - ``"log_interpolation"``: ``ln D`` interpolated linearly between the
      final bracket's two simulated ends.
    - ``"midpoint"``: the final bracket's midpoint (plain bisection).

    The model is then run once more at the tuned ``A`` (``final``, possibly
    longer: ``final_production_steps``). With ``refine > 0``, while that
    run's ``D`` misses the target by more than ``refine_rtol``, the line is
    refitted with the final run in it (weighted by its length),
    ``A`` is re-solved and a new final run made, at most ``refine`` times;
    every final run is kept (``final_runs``). Every evaluation is recorded
    with its ``D``, error bar, RDF TAE to the reference and RDF shift from
    the lower end. Finally the RDF at the tuned ``A`` is compared with the
    one at the lower end: the term is meant to leave structure alone, and
    ``rdf_invariant`` reports whether the shift stayed within
    ``rdf_tolerance_A``.

    The search's settings (bracket, ``omega``, tolerances, method, estimate,
    final run length, refinement, RDF tolerance) are an :class:`AmplitudeSearch`.

    Args:
      probe: the :class:`DynamicsProbe` (its protocol defines ``D``).
      params: the model's parameters; ``params[search.term]`` is a
        :class:`~cgjax.potentials.HighFrequency` term's.
      R0: ``[N, 3]`` start of every evaluation (nm), e.g. an equilibrated frame.
      target_D: the AA diffusion coefficient (nm^2/ps) measured the same way
        (same fit window).
      search: the :class:`AmplitudeSearch`.
      cache: a dict of earlier evaluations keyed by ``A`` and ``omega``
        (filled in place); pass the same dict again to resume a bisection
        without re-simulating.
      on_evaluation: called with ``cache`` after each new simulation (e.g. to
        write it to disk).
      log: one line per evaluation.

    Returns:
      :class:`HighFrequencyTuning`.

    Raises:
      BracketError: ``D(lo)`` and ``D(hi)`` are on the same side of ``target_D``.
      ValueError: no term ``search.term`` in ``params``, or bad arguments.

    References:
      Paper 004 §2.3 and Fig. 4B (bisection in [0, 0.2 eV Å^2], D monotone in A).
    """
    s = search
    log = log or (lambda msg: None)
    lo, hi = s.bracket
    term = s.term
    omega = (
        float(set_high_frequency(params, term)[term]["omega"]) if s.omega is None
        else float(s.omega)
    )  # fmt: skip
    xtol = (hi - lo) / 64.0 if s.xtol is None else float(s.xtol)
    ftol = 0.03 * float(target_D) if s.ftol is None else float(s.ftol)
    cache = {} if cache is None else cache
    evaluate = _Evaluations(probe, params, R0, term, omega, cache, on_evaluation, log)
    baseline: dict = {}
    # relative weights of the ln D regression: production lengths (1: a probe without one)
    probe_length = int(getattr(probe, "production_steps", 1) or 1)
    searched: list[float] = []

    def fn(amplitude: float):
        searched.append(amplitude)
        res = evaluate(amplitude, what=f"search {len(searched)}/{s.max_evals} (at most): ")
        if not baseline:
            baseline.update(res)
        shift = rdf_tae_A(res["rdf_r"], baseline["rdf_g"], res["rdf_g"])
        extra = {
            "A_kJmol_nm2": amplitude,
            "D": res["D"],
            "D_err": res["D_err"],
            "D_cm2_per_s": res["D"] / units.cm2_per_s,
            "rdf_tae_A": res.get("rdf_tae_A"),
            "rdf_shift_A": shift,
            "temperature_K": res["temperature_K"],
            "production_steps": probe_length,
        }
        return res["D"], extra

    try:  # each evaluation is logged by the probe, with its units
        found = bisect(fn, lo, hi, target=float(target_D), xtol=xtol, ftol=ftol,
                       max_evals=s.max_evals, method=s.method,
                       transform=math.log if s.method == "illinois" else None)  # fmt: skip
    except BracketError as err:
        raise _bracket_error(err, lo, hi, float(target_D)) from err
    points = [(h["x"], h["D"], h["production_steps"]) for h in found.history]
    found = found._replace(x=_estimate(found, points, target_D, s, xtol, evaluate, log))
    final = evaluate(found.x, s.final_production_steps, what="final run: ")
    n_final = probe_length if s.final_production_steps is None else int(s.final_production_steps)
    rtol = float(ftol) / float(target_D) if s.refine_rtol is None else float(s.refine_rtol)
    found, final, finals = _refine(found, points, final, target_D, s, rtol, n_final, evaluate,
                                   log)  # fmt: skip
    shift = rdf_tae_A(final["rdf_r"], baseline["rdf_g"], final["rdf_g"])
    invariant = shift <= s.rdf_tolerance_A
    log(
        f"tuned A = {found.x:.5g} kJ/mol nm^2 at omega = {omega:g} 1/nm: D = "
        f"{final['D'] / units.cm2_per_s:.4g} cm^2/s (target {target_D / units.cm2_per_s:.4g}); "
        f"RDF shift from A = {lo:g}: {shift:.3f} Å "
        f"({'within' if invariant else 'ABOVE'} the {s.rdf_tolerance_A} Å tolerance)"
    )
    return HighFrequencyTuning(
        found.x, omega, set_high_frequency(params, term, found.x, omega), found, final, shift,
        float(s.rdf_tolerance_A), bool(invariant), finals,
    )  # fmt: skip


def _log_regression_root(
    points: Sequence[tuple[float, float, float]],
    target: float,
    clip: tuple[float, float],
    factor: float = 1.5,
    keep: Sequence[tuple[float, float, float]] = (),
) -> tuple[float, int] | None:
    """Root of the weighted line ``ln D = a + b A`` through ``(A, D, weight)`` near ``target``.

    Uses the points with ``target / factor <= D <= target * factor``, and every
    point of ``keep`` whatever its ``D`` (weights, e.g. run lengths: the inverse
    variances of ``ln D`` up to a factor); when they all share one ``A``, the
    line goes through their weighted mean with the slope fitted to all the
    points. Returns ``(A, n_points)`` with ``A`` clipped to ``clip``, or
    ``None`` without a point near the target, with fewer than two distinct
    ``A`` in all, or with a slope ``b >= 0``.
    """
    kept = [(float(A), float(D), float(w)) for A, D, w in keep if D > 0 and w > 0]
    pos = [(float(A), float(D), float(w)) for A, D, w in points if D > 0 and w > 0]
    near = [p for p in pos if target / factor <= p[1] <= target * factor] + kept
    pos = pos + kept

    def line(pts):
        A = np.array([p[0] for p in pts])
        y = np.log([p[1] for p in pts])
        w = np.array([p[2] for p in pts])
        A_bar, y_bar = np.sum(w * A) / w.sum(), np.sum(w * y) / w.sum()
        sxx = np.sum(w * (A - A_bar) ** 2)
        slope = np.sum(w * (A - A_bar) * (y - y_bar)) / sxx if sxx > 0 else np.nan
        return A_bar, y_bar, slope

    if not near or len({p[0] for p in pos}) < 2:
        return None
    A_bar, y_bar, slope = line(near)
    if len({p[0] for p in near}) < 2:
        # every point near the target at one A (e.g. a search point and the final
        # run there): the slope from all the points, through their weighted mean
        slope = line(pos)[2]
    if not slope < 0:
        return None
    root = A_bar + (math.log(target) - y_bar) / slope
    return float(min(max(root, clip[0]), clip[1])), len(near)


def _straddle(points: Sequence[tuple[float, float, float]], target: float):
    """The tightest bracket of the root from evaluated ``(A, D, weight)`` points.

    ``D`` falls with ``A``: returns ``((A_a, D_a), (A_b, D_b))`` with ``A_a`` the
    largest ``A`` whose ``D > target`` and ``A_b`` the smallest whose ``D < target``,
    or ``(None, None)`` when there is no such pair with ``A_a < A_b`` (noise can
    make two points disagree with the monotone order).
    """
    above = [(float(A), float(D)) for A, D, _ in points if D > target]
    below = [(float(A), float(D)) for A, D, _ in points if 0 < D < target]
    if not above or not below:
        return None, None
    a, b = max(above), min(below)
    return (a, b) if a[0] < b[0] else (None, None)


def omega_scan(
    probe: DynamicsProbe,
    params: Params,
    R0: Any,
    omegas: Sequence[float],
    *,
    amplitude: float,
    term: str = "hf",
    baseline: dict | None = None,
    production_steps: int | None = None,
    cache: dict | None = None,
    on_evaluation: Callable[[dict], None] | None = None,
) -> list[dict]:
    """RDF change and ``D`` against ``omega`` at a fixed amplitude (paper 004 Fig. 4A).

    Args:
      probe: the :class:`DynamicsProbe`.
      params: parameters with a high-frequency term ``term``.
      R0: ``[N, 3]`` start (nm).
      omegas: the ``omega`` values (1/nm).
      amplitude: ``A`` (kJ/mol nm^2) for every run.
      baseline: a probe result at ``A = 0`` (simulated here when ``None``).
      production_steps: override of the probe's production length.
      cache, on_evaluation: as in :func:`tune_high_frequency`.

    Returns:
      one row per ``omega``: ``omega_per_nm``, ``D`` (nm^2/ps),
      ``D_err`` (NaN for runs shorter than the probe's fit window),
      ``rdf_shift_A`` (TAE to the ``A = 0`` RDF), ``rdf_tae_A``
      (to the reference, if the probe has one).
    """
    cache = {} if cache is None else cache

    def evaluate(a: float, w: float) -> dict:
        key = evaluation_key(a, w)
        if key not in cache:
            cache[key] = probe(set_high_frequency(params, term, a, w), R0,
                               label=f"A = {a:.4g}, omega = {w:g} 1/nm: ",
                               production_steps=production_steps)  # fmt: skip
            if on_evaluation is not None:
                on_evaluation(cache)
        return cache[key]

    if baseline is None:
        w0 = float(omegas[0]) if len(omegas) else PAPER_OMEGA
        baseline = evaluate(0.0, w0)
    rows = []
    for w in omegas:
        res = evaluate(float(amplitude), float(w))
        rows.append(
            dict(
                omega_per_nm=float(w),
                D=res["D"],
                D_err=res["D_err"],
                rdf_shift_A=rdf_tae_A(res["rdf_r"], baseline["rdf_g"], res["rdf_g"]),
                rdf_tae_A=res.get("rdf_tae_A"),
            )
        )
    return rows
