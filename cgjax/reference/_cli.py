"""``python -m cgjax.reference``: generate reference data, or compute its observables.

    python -m cgjax.reference spce --out spce.npz --production 200 --seed 1
    python -m cgjax.reference grid --system methanol --temperatures 200 300 400 \\
        --densities 0.77 --molecules 256 --out methanol_grid
    python -m cgjax.reference observables spce.npz --out spce_observables.json \\
        --fit-window 5 20 --adf-cutoff 0.45
"""

from __future__ import annotations

import argparse
import shlex
import sys

from cgjax.reference._systems import EWALD_TOLERANCE, SYSTEMS

__all__ = ["main"]


def _generation_parser(parser: argparse.ArgumentParser, name: str) -> None:
    spec = SYSTEMS[name]
    a = parser.add_argument
    a("--out", required=True, help="output .npz of the CG (centre-of-mass) frames")
    a("--aa-out", default=None, help="also save the all-atom frames to this .npz")
    a("--molecules", type=int, default=None, help=f"default {spec.n_molecules}")
    a("--temperature", type=float, default=None, help=f"K (default {spec.temperature})")
    a("--density", type=float, default=None, help=f"g/cm^3 (default {spec.density})")
    a("--equilibration", type=float, default=20.0, help="Langevin equilibration, ps (20)")
    a("--nh-equilibration", type=float, default=20.0,
      help="Nose-Hoover equilibration before production, not saved, ps (20)")  # fmt: skip
    a("--production", type=float, default=100.0, help="Nose-Hoover production, ps (100)")
    a("--save-every", type=float, default=0.2, help="ps between saved frames (0.2)")
    a("--dt", type=float, default=None, help=f"time step, fs (default {spec.dt_fs})")
    a("--seed", type=int, default=0, help="random seed (0)")
    a("--platform", default="CPU", help="OpenMM platform (CPU)")
    a("--threads", type=int, default=None, help="CPU threads (OpenMM's default)")
    a("--cutoff", type=float, default=None, help=f"nm (default {spec.cutoff:.4g})")
    a("--friction", type=float, default=1.0, help="Langevin friction, 1/ps (1)")
    a("--collision-frequency", type=float, default=1.0, help="Nose-Hoover coupling, 1/ps (1)")
    a("--ewald-tolerance", type=float, default=EWALD_TOLERANCE,
      help=f"PME relative force error ({EWALD_TOLERANCE:g}; OpenMM's is 5e-4)")  # fmt: skip
    a("--dtype", choices=("float32", "float64"), default="float32", help="saved arrays")
    a(
        "--velocities",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="save COM velocities (default: yes)",
    )
    a("--no-progress", action="store_true", help="no progress bars")


def _observables_parser(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("frames", help="a CG .npz written by a generator")
    a("--out", required=True, help="output .json")
    a("--rdf-r-max", type=float, default=None, help="nm (default: largest bin edge <= L/2)")
    a("--rdf-bin", type=float, default=0.005, help="RDF bin width, nm (0.005)")
    a(
        "--adf-cutoff",
        type=float,
        action="append",
        required=True,
        help="three-body ADF cutoff, nm (repeat for several)",
    )
    a("--fit-window", type=float, nargs=2, required=True, metavar=("T0", "T1"), help="ps")
    a("--n-blocks", type=int, default=5, help="blocks for the D error bar (5)")
    a("--max-lag", type=float, default=None, help="MSD curve length to store, ps (= T1)")


def _grid_parser(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--out", required=True, help="output directory (one .npz per point + manifest.json)")
    a("--grid", default=None, help="JSON grid file (system, temperatures/densities or points)")
    a("--system", default=None, help=f"molecule: one of {', '.join(SYSTEMS)}")
    a("--temperatures", type=float, nargs="+", default=None, help="K")
    a("--densities", type=float, nargs="+", default=None, help="g/cm^3")
    a("--molecules", type=int, default=None, help="molecules per box (system default)")
    a("--equilibration", type=float, default=20.0, help="Langevin equilibration, ps (20)")
    a("--nh-equilibration", type=float, default=20.0,
      help="Nose-Hoover equilibration before production, not saved, ps (20)")  # fmt: skip
    a("--production", type=float, default=50.0, help="Nose-Hoover production, ps (50)")
    a("--save-every", type=float, default=0.2, help="ps between saved frames (0.2)")
    a("--dt", type=float, default=None, help="time step, fs (system default)")
    a("--cutoff", type=float, default=None, help="nm (system default)")
    a("--seed", type=int, default=0, help="point k uses seed + k (0)")
    a("--platform", default="CPU", help="OpenMM platform (CPU)")
    a("--threads", type=int, default=None, help="CPU threads (OpenMM's default)")
    a("--dtype", choices=("float32", "float64"), default="float32", help="saved arrays")
    a("--velocities", action=argparse.BooleanOptionalAction, default=False,
      help="save COM velocities (default: no)")  # fmt: skip
    a("--no-progress", action="store_true", help="no progress bars")


def _run_grid(args, command: str) -> int:
    from cgjax.reference._grid import GridSpec, generate_grid

    if args.grid is not None:
        spec = GridSpec.from_file(args.grid)
    else:
        if args.system is None or args.temperatures is None or args.densities is None:
            raise SystemExit("grid: give --grid FILE or --system, --temperatures and --densities")
        spec = GridSpec.product(
            args.system, args.temperatures, args.densities, n_molecules=args.molecules,
            equilibration=args.equilibration, nh_equilibration=args.nh_equilibration,
            production=args.production, save_every=args.save_every, dt=args.dt,
            cutoff=args.cutoff, seed=args.seed,
            platform=args.platform, threads=args.threads, dtype=args.dtype,
            velocities=args.velocities,
        )  # fmt: skip
    manifest = generate_grid(spec, args.out, progress=not args.no_progress, command=command)
    print(f"{args.out}: {len(manifest['points'])} state points done (manifest.json)")
    return 0


def _alanine_parser(parser: argparse.ArgumentParser) -> None:
    from cgjax.reference._alanine import AlanineConfig

    d = AlanineConfig()
    a = parser.add_argument
    a("--out", required=True, help="output .npz of the 6-bead frames")
    a("--copies", type=int, default=d.copies, help=f"molecules simulated together ({d.copies})")
    a("--spacing", type=float, default=d.spacing, help=f"nm between copies ({d.spacing})")
    a("--cutoff", type=float, default=d.cutoff, help=f"nonbonded/GB cutoff, nm ({d.cutoff})")
    a("--temperature", type=float, default=d.temperature, help=f"K ({d.temperature})")
    a("--equilibration", type=float, default=d.equilibration, help="ps, not saved")
    a("--production", type=float, default=d.production, help="ps per copy")
    a("--save-every", type=float, default=d.save_every, help="ps between frames")
    a("--dt", type=float, default=d.dt, help=f"fs ({d.dt})")
    a("--hydrogen-mass", type=float, default=d.hydrogen_mass, help="amu; 0 for no HMR")
    a("--constraints", choices=("hbonds", "none"), default=d.constraints)
    a("--friction", type=float, default=d.friction, help="Langevin, 1/ps")
    a("--seed", type=int, default=d.seed)
    a("--platform", default=d.platform)
    a("--threads", type=int, default=None, help="CPU threads (OpenMM's default)")
    a("--checkpoint-every", type=float, default=d.checkpoint_every, help="ps")
    a("--no-progress", action="store_true", help="no progress bars")
    a("--start-phi-psi", type=_phi_psi_pairs, default=(),
      help="copies start from these backbone angles, cycled, e.g. '-70,140;-70,-40;60,40' "
           "(degrees; default: all from the shipped structure)")  # fmt: skip
    a("--metad", type=float, default=d.metad,
      help="ps of well-tempered metadynamics on phi before the equilibration, all copies "
           "sharing one bias, then frozen; frames are reweighted by exp(V(phi)/kT) "
           "(0: no bias)")  # fmt: skip
    a("--metad-height", type=float, default=d.metad_height,
      help=f"kJ/mol per walker and deposit ({d.metad_height})")  # fmt: skip
    a("--metad-width", type=float, default=d.metad_width,
      help=f"Gaussian width in phi, degrees ({d.metad_width})")  # fmt: skip
    a("--metad-bias-factor", type=float, default=d.metad_bias_factor,
      help=f"well-tempered bias factor gamma ({d.metad_bias_factor})")  # fmt: skip
    a("--metad-stride", type=float, default=d.metad_stride,
      help=f"ps between deposits ({d.metad_stride})")  # fmt: skip
    a("--bias-order", type=int, default=d.bias_order,
      help=f"Fourier harmonics of the phi bias ({d.bias_order})")  # fmt: skip


def _phi_psi_pairs(text: str) -> tuple[tuple[float, float], ...]:
    """``'-70,140;60,40'`` -> ``((-70.0, 140.0), (60.0, 40.0))``."""
    try:
        pairs = tuple(tuple(float(x) for x in item.split(",")) for item in text.split(";"))
    except ValueError:
        pairs = ((),)
    if not pairs or any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(
            f"--start-phi-psi wants 'phi,psi;phi,psi;...' in degrees, got {text!r}"
        )
    return pairs


def _alanine(args, command: str) -> int:
    from cgjax.reference._alanine import AlanineConfig, generate_alanine

    config = AlanineConfig(
        copies=args.copies,
        spacing=args.spacing,
        cutoff=args.cutoff,
        temperature=args.temperature,
        equilibration=args.equilibration,
        production=args.production,
        save_every=args.save_every,
        dt=args.dt,
        hydrogen_mass=args.hydrogen_mass or None,
        constraints=args.constraints,
        friction=args.friction,
        seed=args.seed,
        platform=args.platform,
        threads=args.threads,
        checkpoint_every=args.checkpoint_every,
        start_phi_psi=args.start_phi_psi,
        metad=args.metad,
        metad_height=args.metad_height,
        metad_width=args.metad_width,
        metad_bias_factor=args.metad_bias_factor,
        metad_stride=args.metad_stride,
        bias_order=args.bias_order,
    )
    cg = generate_alanine(
        config, args.out, progress=not args.no_progress, provenance={"command": command}
    )
    print(
        f"wrote {args.out}: {cg.positions.shape[0]} frames of 6 beads "
        f"({config.copies} copies); mean T = {cg.metadata['aa_temperature_mean']:.2f} K"
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cgjax.reference",
        description="All-atom reference data with OpenMM, mapped to one bead per molecule.",
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="SYSTEM",
        help=f"one of {', '.join(SYSTEMS)}; 'grid' for a grid of state points; or "
        "'observables' to analyse a generated file",
    )
    for name, spec in SYSTEMS.items():
        _generation_parser(sub.add_parser(name, help=spec.notes, description=spec.notes), name)
    _grid_parser(sub.add_parser("grid", help="NVT runs at a grid of (T, rho), resumable"))
    _alanine_parser(
        sub.add_parser(
            "alanine",
            help="capped alanine, amber14 + OBC2, mapped to paper 001's 6 beads",
        )
    )
    _observables_parser(
        sub.add_parser("observables", help="RDF, ADF, MSD, D and T of a generated CG file")
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    command = "python -m cgjax.reference " + shlex.join(argv)
    if args.command == "grid":
        return _run_grid(args, command)
    if args.command == "observables":
        from cgjax.reference._analysis import observables_to_file

        observables_to_file(
            args.frames,
            args.out,
            rdf_r_max=args.rdf_r_max,
            rdf_bin=args.rdf_bin,
            adf_cutoffs=tuple(args.adf_cutoff),
            fit_window=tuple(args.fit_window),
            n_blocks=args.n_blocks,
            max_lag=args.max_lag,
            command=command,
        )
        print(f"wrote {args.out}")
        return 0

    if args.command == "alanine":
        return _alanine(args, command)

    from cgjax.reference._generate import GenerationConfig, generate_to_file

    config = GenerationConfig(
        system=args.command,
        n_molecules=args.molecules,
        temperature=args.temperature,
        density=args.density,
        equilibration=args.equilibration,
        nh_equilibration=args.nh_equilibration,
        production=args.production,
        save_every=args.save_every,
        dt=args.dt,
        seed=args.seed,
        platform=args.platform,
        threads=args.threads,
        cutoff=args.cutoff,
        friction=args.friction,
        collision_frequency=args.collision_frequency,
        ewald_tolerance=args.ewald_tolerance,
        dtype=args.dtype,
        velocities=args.velocities,
    )
    cg = generate_to_file(
        config,
        args.out,
        aa_out=args.aa_out,
        progress=not args.no_progress,
        provenance={"command": command, "cli_args": vars(args)},
    )
    t = cg.provenance["timings"]
    print(
        f"wrote {args.out}: {cg.positions.shape[0]} frames of {cg.positions.shape[1]} beads; "
        f"mean T = {cg.metadata['aa_temperature_mean']:.2f} K; "
        f"{t['production_steps_per_s']:.0f} steps/s"
    )
    return 0
