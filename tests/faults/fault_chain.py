"""Fault injection: an experiment killed (SIGKILL) inside its stages, several times in a
row, then rerun: it finishes with the ``results.json`` of an uninterrupted run.

``tests/faults/test_faults_<experiment>.py`` (one file per experiment, so the two
test workers share them) call :func:`check_kill_chain`.

The kill points are :mod:`cgjax._faults` points, the places where a run's state on
disk changes (a log line, a temporary file written, a file replaced, a checkpoint
saved, a metrics line appended): between two of them nothing a rerun could see
changes, so a kill at each point covers every state a killed run can leave. An
uninterrupted run (``CGJAX_FAULT_TRACE``) lists them per stage; the test then kills
one process per stage, at a random point inside that stage
(``CGJAX_FAULT_KILL=STAGE:K``), each rerun continuing the workdir of the one
before, plus kills at points outside the stages (training checkpoints, the
results file written but not yet renamed). In CI at most
``CGJAX_FAULT_MAX_STAGES`` (default 3) stages, drawn at random, are killed per
experiment (the suite's time budget); ``CGJAX_FAULT_MAX_STAGES=0`` kills inside
every stage. Every killed process must have died
of the kill (``-SIGKILL``), every stage finished before a kill must be read
back, not redone, and the last rerun must end with the uninterrupted run's
results (wall times left out). The random choice is seeded by
``CGJAX_FAULT_SEED`` (default 0) and printed, with the number of kill points
tried.

Compiled programs are shared between the runs through JAX's persistent
compilation cache (a directory for this test module), so a rerun does not
compile again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: experiment file name -> config file name (the smoke preset of each)
EXPERIMENTS = {
    "deepcg_water": "deepcg_water",
    "water_data_efficiency": "water_data_efficiency",
    "spce_dynamics": "spce_dynamics",
    "alanine_cgschnet": "alanine_cgschnet",
    "transferability": "transferability",
    "structure_methods": "structure_methods",
}
#: keys whose values are measured times, not results: left out of the comparison
VOLATILE = re.compile(r"wall|per_s$|per_day|seconds|^timings$|^date")
SEED = int(os.environ.get("CGJAX_FAULT_SEED", "0"))
MAX_STAGES = int(os.environ.get("CGJAX_FAULT_MAX_STAGES", "3"))
#: points outside the stages that the test always kills at, when a run passes them
OUTSIDE_EVENTS = ("results.json: temporary file written",)


def _run(name: str, workdir, cache: str, log, **env) -> subprocess.CompletedProcess:
    exp = os.path.join(ROOT, "experiments", f"{name}.py")
    cfg = os.path.join(ROOT, "configs", f"{EXPERIMENTS[name]}.py")
    full_env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=cache,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
        # XLA warns at every cache hit that the tuning flags it compiled with
        # (prefer-no-gather, ...) are not host "features": noise on the same machine
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **env,
    )
    for var in ("CGJAX_FAULT_KILL", "CGJAX_FAULT_TRACE"):
        if var not in env:
            full_env.pop(var, None)
    with open(log, "ab") as out:
        return subprocess.run(
            [sys.executable, "-m", "cgjax.run", exp, f"--config={cfg}:smoke",
             f"--workdir={workdir}"],
            cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, timeout=1800,
        )  # fmt: skip


def _read_trace(path) -> list[tuple[str, int, str]]:
    with open(path) as f:
        return [(s, int(k), e) for s, k, e in (line.rstrip("\n").split("\t") for line in f)]


def _stable(x):
    """``x`` without measured times (keys matching :data:`VOLATILE`)."""
    if isinstance(x, dict):
        return {k: _stable(v) for k, v in x.items() if not VOLATILE.search(k)}
    if isinstance(x, list):
        return [_stable(v) for v in x]
    return x


def _stage_files(workdir) -> dict[str, str]:
    folder = os.path.join(workdir, "stages")
    if not os.path.isdir(folder):
        return {}
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".json"):
            with open(os.path.join(folder, f)) as fh:
                out[f[: -len(".json")]] = fh.read()
    return out


def _kill_plan(trace, rng) -> list[tuple[str, str]]:
    """``[(CGJAX_FAULT_KILL value, description)]`` in trace order: one random point
    inside each stage (at most :data:`MAX_STAGES` stages), one random training point
    outside the stages (a checkpoint or a metrics line) when there is one, and
    :data:`OUTSIDE_EVENTS`."""
    plan = []
    stages = list(dict.fromkeys(s for s, _, _ in trace if s != "-"))
    if 0 < MAX_STAGES < len(stages):
        keep = set(rng.choice(len(stages), MAX_STAGES, replace=False).tolist())
        stages = [s for i, s in enumerate(stages) if i in keep]
    for stage in stages:
        n = sum(1 for s, _, _ in trace if s == stage)
        pick = int(rng.integers(1, n + 1))
        where = next(i for i, (s, kk, _) in enumerate(trace) if s == stage and kk == pick)
        plan.append((where, f"{stage}:{pick}", f"{stage} point {pick}/{n}: {trace[where][2]}"))
    outside = ("checkpoint", "metrics")
    training = [i for i, (s, _, e) in enumerate(trace) if s == "-" and e.startswith(outside)]
    if training:
        i = training[int(rng.integers(len(training)))]
        plan.append((i, f"@{trace[i][2]}", f"outside the stages: {trace[i][2]}"))
    for event in OUTSIDE_EVENTS:
        i = next(i for i, (_, _, e) in enumerate(trace) if e == event)
        plan.append((i, f"@{event}", f"outside the stages: {event}"))
    plan.sort()
    return [(spec, what) for _, spec, what in plan]


def _position(trace, spec: str) -> int:
    """Index in ``trace`` of the point ``spec`` (a ``CGJAX_FAULT_KILL`` value) kills at."""
    if spec.startswith("@"):
        return next(i for i, (_, _, e) in enumerate(trace) if e == spec[1:])
    stage, _, k = spec.rpartition(":")
    return next(i for i, (s, kk, _) in enumerate(trace) if s == stage and kk == int(k))


def check_kill_chain(name: str, tmp_path, record_property) -> None:
    """Runs experiment ``name``'s smoke preset uninterrupted, then killed at each point of
    :func:`_kill_plan` in turn (one process each, one workdir), then to the end; asserts
    as the module says. Records the kill points tried (``record_property``), which
    ``tests/conftest.py`` prints at the end of the session."""
    cache_dir = str(tmp_path / "jax_cache")
    log = tmp_path / "runs.log"
    trace_path = tmp_path / "trace.tsv"
    straight = tmp_path / "straight"
    done = _run(name, straight, cache_dir, log, CGJAX_FAULT_TRACE=str(trace_path))
    assert done.returncode == 0, log.read_text()[-3000:]
    trace = _read_trace(trace_path)
    expected = _stable(json.loads((straight / "results.json").read_text()))

    rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])  # a draw per experiment
    stages = [s for s in dict.fromkeys(s for s, _, _ in trace) if s != "-"]
    plan = _kill_plan(trace, rng)
    assert sum(1 for spec, _ in plan if not spec.startswith("@")) >= 2, plan
    wd = tmp_path / "killed"
    for spec, what in plan:
        before = _stage_files(wd)
        proc = _run(name, wd, cache_dir, log, CGJAX_FAULT_KILL=spec)
        assert proc.returncode == -signal.SIGKILL, (
            f"the run to be killed at {what} ended with {proc.returncode}\n"
            + log.read_text()[-3000:]
        )
        after = _stage_files(wd)
        # finished stages are read back, not redone (stages/ also holds caches that
        # grow, e.g. spce_dynamics' hf_evaluations: only the stages are compared)
        for stage in set(before) & set(stages):
            assert after.get(stage) == before[stage], f"{stage} was redone after a kill at {what}"
        # every stage that ends before the kill point has been saved
        killed_at = _position(trace, spec)
        finished = {s for s, _, e in trace[:killed_at] if e == f"{s}.json: replaced"}
        assert finished <= set(after), (
            f"stages {sorted(finished - set(after))} finished before the kill at {what} "
            "but left no stages/*.json"
        )
    logged = len((wd / "log.txt").read_text())
    final = _run(name, wd, cache_dir, log)
    assert final.returncode == 0, log.read_text()[-3000:]
    last_log = (wd / "log.txt").read_text()[logged:]
    for stage in stages:  # all read back
        assert re.search(rf"stage (\d+/\d+ )?{re.escape(stage)}: done before", last_log), stage
    got = _stable(json.loads((wd / "results.json").read_text()))
    assert got == expected
    leftovers = [os.path.join(d, f) for d, _, fs in os.walk(wd) for f in fs if f.endswith(".tmp")]
    assert not leftovers
    record_property(
        "fault_injection",
        f"{name}: {len(plan)} kill points tried (seed {SEED}): " + "; ".join(w for _, w in plan),
    )
