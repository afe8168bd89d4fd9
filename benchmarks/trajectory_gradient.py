"""Time and peak memory of one RDF-loss gradient through MD: diffrax adjoints vs plain backprop.

The system is the first frame of the shipped ``spce_512`` data (512 SPC/E water
COM beads, cubic box 2.4859 nm, 18.015 amu, wrapped positions) with a CG
potential (default: SPC/E-oxygen Lennard-Jones switched 0.85-0.9 nm; ``--potential
gnn``: paper 004's GNN + LJ + high-frequency stack at 0.6 nm), float32, NVE
velocity Verlet from Maxwell-Boltzmann velocities at 300 K. The loss is
``losses.rdf_loss`` (Gaussian-smeared RDF, sigma 0.01 nm, MSE against the AA
RDF of ``spce_512`` on its 0.005 nm grid up to 1.0 nm) over frames recorded every
``--record-every`` steps (default 25, 0.05 ps). Its gradient with respect to the potential's
parameters is taken three ways:

- ``checkpoint``: ``simulate_differentiable`` with ``simulate.Checkpoint()``
  (diffrax ``RecursiveCheckpointAdjoint``), the baseline;
- ``remat``: ``simulate.Checkpoint(remat=True)``: each
  segment is wrapped in ``jax.checkpoint``, so the backward pass keeps only the
  segment start states and recomputes each segment once more;
- ``backsolve``: ``simulate.Backsolve()`` (diffrax ``BacksolveAdjoint``, Tsit5);
- ``plain``: reverse mode through an unrolled ``jax.lax.scan`` of the same
  velocity-Verlet step and energy function (every intermediate stored, no
  checkpointing), with the same segments and host-side neighbor-list updates
  between them (written below, :func:`plain_trajectory`).

Every (method, steps) runs in its own child process (the script calls itself
with ``--one method,steps``); the parent reads the child's peak RSS
(``os.wait4`` rusage, ``ru_maxrss``), polls its RSS and kills it above
``--mem-cap-gb`` (the child also sets ``RLIMIT_AS`` to its size after setup
plus the cap plus 4 GB, so an allocation jump cannot take the machine down; a
child that then stops using CPU for a minute is killed as stalled). Inside the
child one warm-up ``value_and_grad`` on one segment compiles the segment
functions; the timed call is the next one, on the full length.

    python benchmarks/trajectory_gradient.py [--steps 1000,10000,100000]
        [--methods checkpoint,remat,backsolve,plain] [--potential lj|gnn]
        [--segment-steps 25] [--record-every 25] [--mem-cap-gb 14] [--json out.json]
    python benchmarks/trajectory_gradient.py --check    # plain == checkpoint on 50 steps
"""

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from cgjax import data, datasets, losses, potentials, simulate, units
from cgjax._xla import jit  # jax.jit with cgjax's CPU options, as cgjax's own segments

METHODS = ("checkpoint", "remat", "backsolve", "plain")
BASELINE = "checkpoint"
RDF_SIGMA = 0.01  # nm
RDF_R_MAX = 1.0  # nm, below half the box (1.243 nm)
SEED = 0
nan = float("nan")


def rss_gb(pid="self", field="VmRSS"):
    """A /proc status field (kB) in GB, or nan."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return float("nan")


def build(args):
    """System, energy model, params, start, neighbor function and RDF target."""
    frames = datasets.load("spce_512", wrapped=True)
    obs = datasets.load_observables("spce_512")["rdf"]
    R0 = np.asarray(frames.positions[0], np.float32)
    n = R0.shape[0]
    species = np.zeros(n, np.int32)
    box = np.asarray(frames.box, np.float64)
    if args.potential == "lj":
        pot = potentials.LennardJones(
            n_species=1, sigma=0.3166, epsilon=0.65, cutoff=0.9, r_onset=0.85
        )
    else:
        pot = potentials.sum_of(
            gnn=potentials.build("gnn", None, n_species=1, cutoff=0.6),
            lj=potentials.LennardJones(
                n_species=1, sigma=0.3166, epsilon=0.65, cutoff=0.6, r_onset=0.55
            ),
            hf=potentials.HighFrequency(n_species=1, amplitude=0.1, omega=1000.0, cutoff=0.6),
        )
    system = simulate.System.create(box=box, species=species, masses=frames.masses)
    model = potentials.energy_model(pot, system=system)
    nbr_fn = model.neighbor_fn(skin=args.skin)
    params = model.init_fn(jax.random.key(SEED), R0, neighbor=nbr_fn.allocate(R0))
    kT = float(units.kT(300.0))
    V0 = simulate.maxwell_boltzmann(jax.random.key(SEED + 1), system, kT, dtype=jnp.float32)
    R0 = jnp.asarray(R0)
    if getattr(args, "start", None):  # the equilibrated start written by the parent
        with np.load(args.start) as z:
            R0, V0 = jnp.asarray(z["R"]), jnp.asarray(z["V"])
    k = int(round(RDF_R_MAX / obs["bin_width_nm"]))
    target_r = np.asarray(obs["r_nm"])[:k]
    target_g = np.asarray(obs["g"])[:k]
    return dict(
        model=model, system=system, nbr_fn=nbr_fn, params=params, R0=R0, V0=V0, kT=kT,
        target_r=target_r, target_g=target_g, box=box,
    )  # fmt: skip


def equilibrate(b, args, n_steps, path):
    """Relaxes the AA start under the CG potential: NVE chunks of 50 steps, V rescaled to 300 K.

    The AA frame has beads at 0.28 nm, deep in the LJ repulsion, so plain NVE
    from it heats to ~840 K within 0.1 ps; rescaling removes that energy.
    """
    R, V = b["R0"], b["V0"]
    m = b["system"].masses[:, None]
    dof = 3 * R.shape[0] - 3
    # short segments, wide skin: the start is hot
    protocol = simulate.Protocol(temperature=300.0, dt=args.dt, production_steps=50,
                                 record_every=10, thermostat="nve", skin=0.3)  # fmt: skip
    for _ in range(max(1, n_steps // 50)):
        tr = simulate.simulate_differentiable(
            b["model"], b["params"], R, V, protocol, simulate.Checkpoint(segment_steps=10),
        )  # fmt: skip
        R, V = tr.positions[-1], np.asarray(tr.velocities[-1], np.float64)
        T = float(np.sum(m * V * V) / (dof * b["kT"]) * 300.0)
        V = jnp.asarray(V * np.sqrt(300.0 / T), jnp.float32)
    R = jnp.asarray(data.wrap(np.asarray(R, np.float64), b["box"]), jnp.float32)
    np.savez(path, R=np.asarray(R), V=np.asarray(V))
    return T


# ---------------------------------------------------------------- plain backprop


_PLAIN_CACHE = {}


def _plain_segment(energy_fn_of_params, masses, dt, n_steps, record_every):
    """A jitted ``segment(params, (R, V), neighbor) -> (R_frames, V_frames)``: nested scans."""
    key = (energy_fn_of_params, dt, n_steps, record_every)
    if key in _PLAIN_CACHE:
        return _PLAIN_CACHE[key]

    def segment(params, y0, neighbor):
        neighbor = jax.lax.stop_gradient(neighbor)
        energy = energy_fn_of_params(params)
        m = jnp.asarray(masses, y0[0].dtype)[:, None]

        def accel(R):
            return -jax.grad(lambda r: energy(r, neighbor=neighbor))(R) / m

        def step(carry, _):  # velocity Verlet, the force carried to the next step
            R, V, a = carry
            V = V + 0.5 * dt * a
            R = R + dt * V
            a = accel(R)
            V = V + 0.5 * dt * a
            return (R, V, a), None

        def block(carry, _):
            carry, _ = jax.lax.scan(step, carry, None, length=record_every)
            return carry, (carry[0], carry[1])

        R0, V0 = y0
        _, frames = jax.lax.scan(block, (R0, V0, accel(R0)), None, length=n_steps // record_every)
        return frames

    fn = jit(segment)
    _PLAIN_CACHE[key] = fn
    return fn


class PlainSpec:
    """Like ``TrajectorySpec`` (``spec(params) -> DiffTrajectory``) with plain backprop.

    The segments and host-side neighbor-list updates mirror
    ``simulate_differentiable``: before each segment the list is updated from the
    wrapped, ``stop_gradient``-ed start (reallocated on overflow).
    """

    def __init__(self, spec):
        self.spec = spec
        self.system = spec.system
        p = spec.protocol
        self.dt, self.n_steps, self.record_every = p.dt, p.production_steps, p.record_every
        self.segment_steps = int(spec.adjoint.segment_steps or self.n_steps)
        self.neighbor_fn = None if p.skin is None else spec.model.neighbor_fn(skin=p.skin)

    def __call__(self, params):
        box = np.asarray(self.system.box, np.float64)
        y = (jnp.asarray(self.spec.R0), jnp.asarray(self.spec.V0, jnp.float32))
        neighbor, frames, done = None, [], 0
        while done < self.n_steps:
            length = min(self.segment_steps, self.n_steps - done)
            if self.neighbor_fn is not None:
                start = np.asarray(jax.lax.stop_gradient(y[0]))
                wrapped = jnp.asarray(data.wrap(start, box), jnp.float32)
                if neighbor is None:
                    neighbor = self.neighbor_fn.allocate(wrapped)
                neighbor = self.neighbor_fn.update(wrapped, neighbor)
                if bool(neighbor.did_buffer_overflow):
                    neighbor = self.neighbor_fn.allocate(wrapped)
            seg = _plain_segment(
                self.spec.model.energy_fn, self.system.masses, self.dt, length,
                self.record_every,
            )  # fmt: skip
            ys = seg(params, y, neighbor)
            if self.neighbor_fn is not None:  # the same check as simulate_differentiable
                moved = np.max(
                    np.linalg.norm(np.asarray(jax.lax.stop_gradient(ys[0])) - start, axis=-1)
                )
                if moved > 0.5 * self.neighbor_fn.skin:
                    raise simulate.SimulationError(
                        f"plain: a particle moved {moved:.3g} nm > skin / 2",
                        step=done + length,
                        reason="moved beyond skin / 2",
                    )
            frames.append(ys)
            y = (ys[0][-1], ys[1][-1])
            done += length
        R = jnp.concatenate([f[0] for f in frames])
        V = jnp.concatenate([f[1] for f in frames])
        time_ = (1 + np.arange(self.n_steps // self.record_every)) * self.record_every * self.dt
        return simulate.DiffTrajectory(time_, R, V, None, neighbor, [])


# ---------------------------------------------------------------- one configuration


def make_loss(b, args, method, n_steps):
    segment = min(args.segment_steps, n_steps)
    protocol = simulate.Protocol(temperature=300.0, dt=args.dt, production_steps=n_steps,
                                 record_every=args.record_every, thermostat="nve",
                                 skin=args.skin)  # fmt: skip
    adjoint = {
        "checkpoint": simulate.Checkpoint(segment_steps=segment),
        "remat": simulate.Checkpoint(segment_steps=segment, remat=True),
        "plain": simulate.Checkpoint(segment_steps=segment),
        "backsolve": simulate.Backsolve(segment_steps=segment),
    }[method]
    spec = simulate.TrajectorySpec(b["model"], b["R0"], b["V0"], protocol,
                                   adjoint=adjoint)  # fmt: skip
    sim = PlainSpec(spec) if method == "plain" else spec
    loss = losses.rdf_loss(
        b["target_r"], b["target_g"], simulate=sim, sigma=RDF_SIGMA, r_max=RDF_R_MAX,
        box=b["box"],
    )  # fmt: skip
    return lambda p: loss(p, None)


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def run_one(args, method, n_steps):
    """Warm-up on one segment, then one timed value_and_grad on ``n_steps``; JSON to stdout."""
    b = build(args)
    setup_rss = rss_gb()
    if args.cap_bytes:  # backstop: address space = now + cap + 4 GB (the parent kills at cap)
        vm = int(rss_gb(field="VmSize") * 1e9)
        lim = vm + int(args.cap_bytes) + int(4e9)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    warm_steps = min(args.segment_steps, n_steps)
    t0 = time.perf_counter()
    v, g = jax.value_and_grad(make_loss(b, args, method, warm_steps))(b["params"])
    jax.block_until_ready((v, g))
    warm_s = time.perf_counter() - t0
    f = jax.value_and_grad(make_loss(b, args, method, n_steps))
    t0 = time.perf_counter()
    v, g = f(b["params"])
    jax.block_until_ready((v, g))
    wall = time.perf_counter() - t0
    gf = flat(g)
    out = dict(
        method=method, steps=n_steps, wall_s=wall, warmup_s=warm_s, warmup_steps=warm_steps,
        loss=float(v), grad=gf.tolist(), grad_norm=float(np.linalg.norm(gf)),
        setup_rss_gb=setup_rss, self_hwm_gb=rss_gb(field="VmHWM"),
    )  # fmt: skip
    print("RESULT " + json.dumps(out), flush=True)


def check(args, n_steps=50):
    """Plain backprop vs the checkpoint adjoint on a short run (same process)."""
    b = build(args)
    # frames every 25 steps, two segments (one neighbor-list update between them)
    a2 = argparse.Namespace(**{**vars(args), "record_every": 25, "segment_steps": 25})
    grads = {}
    for method in ("checkpoint", "remat", "plain", "backsolve"):
        v, g = jax.value_and_grad(make_loss(b, a2, method, n_steps))(b["params"])
        grads[method] = flat(g)
        print(f"{method:10s} loss {float(v):.6e} grad {np.array2string(grads[method][:4])}")
    ref = grads["checkpoint"]
    rels = {}
    for method in ("remat", "plain", "backsolve"):
        rels[method] = float(np.linalg.norm(grads[method] - ref) / np.linalg.norm(ref))
        print(f"{n_steps} steps: |g_{method} - g_checkpoint| / |g_checkpoint| = {rels[method]:.3e}")
    print("CHECK " + json.dumps(rels), flush=True)


# ---------------------------------------------------------------- parent


def child_cpu(pid):
    """utime + stime (clock ticks) of a process, or -1."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return -1


def child_flags(args):
    return [
        "--potential", args.potential, "--segment-steps", str(args.segment_steps),
        "--record-every", str(args.record_every), "--skin", str(args.skin),
        "--dt", str(args.dt), "--start", args.start,
    ]  # fmt: skip


def run_child(args, method, n_steps, cap_gb):
    """Runs one configuration in a child; returns its result dict with peak RSS."""
    cmd = [sys.executable, os.path.abspath(__file__), "--one", f"{method},{n_steps}"]
    cmd += child_flags(args) + ["--cap-bytes", str(int(cap_gb * 1e9))]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, killed, status, ru = 0.0, False, None, None
    cpu, cpu_t = -1, time.perf_counter()
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        r = rss_gb(p.pid)
        if r == r:
            seen = max(seen, r)
        if r > cap_gb and not killed:
            os.kill(p.pid, signal.SIGKILL)
            killed = True
        if time.perf_counter() - t0 > args.timeout and not killed:
            os.kill(p.pid, signal.SIGKILL)
            killed = "timeout"
        now = child_cpu(p.pid)
        if now != cpu:
            cpu, cpu_t = now, time.perf_counter()
        elif time.perf_counter() - cpu_t > 60 and not killed:
            # no CPU time for a minute: a thread whose allocation the address-space
            # limit refused can leave XLA waiting forever
            os.kill(p.pid, signal.SIGKILL)
            killed = "stalled"
        time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    out, err = p.stdout.read(), p.stderr.read()
    peak = max(ru.ru_maxrss / 1e6, seen)  # ru_maxrss in kB on Linux
    res = dict(method=method, steps=n_steps, peak_rss_gb=peak, child_s=time.perf_counter() - t0)
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if lines and p.returncode == 0:
        res.update(json.loads(lines[-1][7:]))
        res["status"] = "ok"
    else:
        tail = " | ".join(err.strip().splitlines()[-3:])[-300:]
        oom = killed is True or "alloc" in err.lower() or "memory" in err.lower()
        res["status"] = (
            "timeout"
            if killed == "timeout"
            else f"stalled at {peak:.1f} GB (allocation refused?)"
            if killed == "stalled"
            else f"out of memory at {peak:.1f} GB"
            if oom
            else f"failed rc={p.returncode}"
        )
        res["stderr_tail"] = tail
    return res


def hardware():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(
        cpu=cpu, cpu_count=os.cpu_count(), mem_total_gb=rss_gb_meminfo("MemTotal"),
        mem_available_gb=rss_gb_meminfo("MemAvailable"), loadavg=os.getloadavg(),
        jax=jax.__version__, backend=jax.default_backend(), devices=str(jax.devices()),
        python=platform.python_version(),
    )  # fmt: skip


def rss_gb_meminfo(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1e6
    return float("nan")


def predict(rows, method, n_steps):
    """Linear peak-RSS prediction (GB) from this method's successful runs.

    Two or more runs: the line through the two longest. One run: the line
    through it and its setup RSS at zero steps.
    """
    ok = sorted(
        (r["steps"], r["peak_rss_gb"], r["setup_rss_gb"])
        for r in rows
        if r["method"] == method and r["status"] == "ok"
    )
    if not ok:
        return None
    if len(ok) == 1:
        s1, m1, m0 = ok[0]
        return m0 + (m1 - m0) * n_steps / s1
    (s1, m1, _), (s2, m2, _) = ok[-2:]
    return m2 + (m2 - m1) / (s2 - s1) * (n_steps - s2)


def predict_time(rows, method, n_steps):
    """Wall time (s) scaled linearly in steps from this method's longest successful run."""
    ok = sorted((r["steps"], r["wall_s"]) for r in rows
                if r["method"] == method and r["status"] == "ok")  # fmt: skip
    return ok[-1][1] * n_steps / ok[-1][0] if ok else None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="1000,10000,100000")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--potential", choices=("lj", "gnn"), default="lj")
    p.add_argument("--dt", type=float, default=None, help="ps; default 0.002 (lj), 0.001 (gnn)")
    p.add_argument("--segment-steps", type=int, default=25)
    p.add_argument("--record-every", type=int, default=25)
    p.add_argument("--skin", type=float, default=0.3, help="neighbor-list skin (nm)")
    p.add_argument("--mem-cap-gb", type=float, default=14.0)
    p.add_argument("--timeout", type=float, default=1800.0, help="s per configuration")
    p.add_argument(
        "--max-wall",
        type=float,
        default=900.0,
        help="skip a run whose wall time, scaled from the method's longest run, exceeds this (s)",
    )
    p.add_argument("--json", default=None, help="write the results to this file")
    p.add_argument("--check", action="store_true", help="plain vs checkpoint on 50 steps")
    p.add_argument(
        "--equilibrate-steps",
        type=int,
        default=200,
        help="CG relaxation of the AA frame before the runs (rescaled to 300 K)",
    )
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--start", default=None, help=argparse.SUPPRESS)
    p.add_argument("--cap-bytes", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.dt is None:
        args.dt = 0.002 if args.potential == "lj" else 0.001
    if args.one:
        method, n = args.one.split(",")
        run_one(args, method, int(n))
        return
    if args.check and args.start:
        check(args)
        return

    steps = [int(s) for s in args.steps.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    hw = hardware()
    print(f"jax {hw['jax']} backend {hw['backend']} devices {hw['devices']}")
    print(f"CPU {hw['cpu']} x {hw['cpu_count']}; RAM {hw['mem_total_gb']:.1f} GB "
          f"({hw['mem_available_gb']:.1f} available); load average {hw['loadavg']}")  # fmt: skip
    print(f"potential {args.potential}, 512 beads, float32, NVE, dt {args.dt} ps, "
          f"segments of {args.segment_steps} steps (neighbor list rebuilt at each one's start, "
          f"skin {args.skin} nm), frames every {args.record_every} steps, RDF sigma "
          f"{RDF_SIGMA} nm up to {RDF_R_MAX} nm; memory cap {args.mem_cap_gb} GB per child"
          )  # fmt: skip
    t0 = time.perf_counter()
    start = os.path.join(tempfile.mkdtemp(prefix="cgjax_tg_"), "start.npz")
    T = equilibrate(build(args), args, args.equilibrate_steps, start)
    args.start = start
    print(
        f"start: spce_512 frame 0 relaxed by {args.equilibrate_steps} CG steps with velocity "
        f"rescaling ({time.perf_counter() - t0:.0f} s; T {T:.0f} K before the last rescale)"
    )
    cmd = [sys.executable, os.path.abspath(__file__), "--check"] + child_flags(args)
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("CHECK ")]
    check_rel = json.loads(lines[-1][6:]) if lines else None
    print(out.stdout.strip() if lines else out.stderr[-2000:])
    if args.check:
        return
    rows = []
    for n in steps:
        for method in methods:
            avail = rss_gb_meminfo("MemAvailable")
            cap = min(args.mem_cap_gb, avail - 4.0)
            mem, wall = predict(rows, method, n), predict_time(rows, method, n)
            if (mem is not None and mem > cap) or (wall is not None and wall > args.max_wall):
                why = f"predicted {mem:.1f} GB > cap" if mem and mem > cap else "too slow"
                res = dict(method=method, steps=n, status=f"skipped: {why}", peak_rss_gb=nan)
                res.update(predicted_peak_gb=mem, predicted_wall_s=wall, cap_gb=cap)
                rows.append(res)
                print(f"  {method:10s} {n:7d} steps: {res['status']} (predicted "
                      f"{wall or nan:.0f} s, {mem or nan:.1f} GB)", flush=True)  # fmt: skip
                continue
            res = run_child(args, method, n, cap)
            res["cap_gb"] = cap
            if res["status"] != "ok":
                res["predicted_peak_gb"] = predict(rows, method, n)
            rows.append(res)
            print(f"  {method:10s} {n:7d} steps: {res['status']}, "
                  f"{res.get('wall_s', float('nan')):.1f} s, peak {res['peak_rss_gb']:.2f} GB",
                  flush=True)  # fmt: skip

    ref = {r["steps"]: r for r in rows if r["method"] == BASELINE and r["status"] == "ok"}
    print()
    head = (f"| method | steps | wall s | ratio | peak RSS GB | ratio | grad norm | "
            f"rel. diff to {BASELINE} | warm-up s | status |")  # fmt: skip
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        b = ref.get(r["steps"])
        if r["status"] != "ok":
            pm, pt = r.get("predicted_peak_gb"), r.get("predicted_wall_s")
            wall = f"({pt:.0f} predicted)" if pt else "-"
            mem = f"({pm:.1f} predicted)" if pm else "-"
            print(f"| {r['method']} | {r['steps']} | {wall} | - | {mem} | - | - | - | - | "
                  f"{r['status']} |")  # fmt: skip
            continue
        g = np.asarray(r["grad"])
        if b:
            gb = np.asarray(b["grad"])
            r["rel_diff"] = float(np.linalg.norm(g - gb) / np.linalg.norm(gb))
            r["time_ratio"] = r["wall_s"] / b["wall_s"]
            r["mem_ratio"] = r["peak_rss_gb"] / b["peak_rss_gb"]
        print(f"| {r['method']} | {r['steps']} | {r['wall_s']:.1f} | "
              f"{r.get('time_ratio', float('nan')):.2f} | {r['peak_rss_gb']:.2f} | "
              f"{r.get('mem_ratio', float('nan')):.2f} | {r['grad_norm']:.4g} | "
              f"{r.get('rel_diff', float('nan')):.2e} | {r['warmup_s']:.1f} | "
              f"{'ok' if np.all(np.isfinite(g)) else 'ok, gradient NaN'} |")  # fmt: skip
    if args.json:
        meta = dict(hw, **{k: v for k, v in vars(args).items() if k not in ("one", "cap_bytes")})
        meta.update(check_50_steps_rel_diff=check_rel)
        meta.update(rdf_sigma=RDF_SIGMA, rdf_r_max=RDF_R_MAX, n_beads=512, baseline=BASELINE)
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": rows}, f, indent=2)
    os.remove(start)
    os.rmdir(os.path.dirname(start))


if __name__ == "__main__":
    main()
