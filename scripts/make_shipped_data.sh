#!/usr/bin/env bash
# Regenerates the datasets shipped in cgjax/datasets/ (see its README.md).
#
# Needs the 'reference' extra (OpenMM). Run from the repository root:
#     bash scripts/make_shipped_data.sh            # all three datasets
#     bash scripts/make_shipped_data.sh spce       # one of: spce argon methane methanol_grid
#     bash scripts/make_shipped_data.sh all observables  # only recompute the JSON
# Wall time on 2 shared CPU cores (OpenMM CPU platform): SPC/E 25.6 min (1 thread, load ~10),
# argon 1.75 min,
# methane 10.3 min generation (at load ~5; 124 steps/s) + 40 s observables.
# OpenMM's CPU platform is not bitwise reproducible across thread counts or
# machines, so a rerun gives a statistically equivalent, not identical, file.
set -euo pipefail

out=cgjax/datasets
what=${1:-all}
stage=${2:-all}  # all | observables

if [[ $what == all || $what == spce ]]; then
  # 512 SPC/E waters at 300 K and 0.997 g/cm^3 (paper 000's system, paper 004's
  # parameters): 50 ps Langevin equilibration, 20 ps Nose-Hoover equilibration
  # (not saved), 200 ps Nose-Hoover production, PME tolerance 1e-4 (issue 23),
  # a frame every 0.2 ps; COM positions and summed forces only, float32.
  # Measured: 25.6 min on 1 thread of 2 shared cores at load ~10 (88 steps/s).
  [[ $stage == observables ]] || python -m cgjax.reference spce --out "$out/spce_512.npz" \
    --molecules 512 --temperature 300 --density 0.997 \
    --equilibration 50 --nh-equilibration 20 --production 200 --save-every 0.2 --dt 2 \
    --ewald-tolerance 1e-4 --seed 2024 --platform CPU --threads 1 --dtype float32 \
    --no-velocities
  # Structure: RDF to L/2 in 0.005 nm bins; ADF at paper 000's 4.5 A cutoff and
  # at the first minimum of g(r) (0.34 nm). Dynamics: Einstein fit 5-20 ps,
  # error over 5 blocks of 40 ps.
  python -m cgjax.reference observables "$out/spce_512.npz" \
    --out "$out/spce_512_observables.json" \
    --rdf-bin 0.005 --adf-cutoff 0.45 --adf-cutoff 0.34 \
    --fit-window 5 20 --n-blocks 5
fi

if [[ $what == all || $what == argon ]]; then
  # Rahman's liquid argon: 864 atoms, 94.4 K, 1.374 g/cm^3, cutoff 3.3 sigma.
  [[ $stage == observables ]] || python -m cgjax.reference argon --out "$out/argon_864.npz" \
    --molecules 864 --temperature 94.4 --density 1.374 \
    --equilibration 50 --production 100 --save-every 0.2 --dt 5 \
    --seed 2024 --platform CPU --threads 2 --dtype float32 --no-velocities
  # ADF cutoff at the first minimum of g(r) (0.52 nm); Einstein fit 2-10 ps,
  # error over 5 blocks of 20 ps.
  python -m cgjax.reference observables "$out/argon_864.npz" \
    --out "$out/argon_864_observables.json" \
    --rdf-bin 0.005 --adf-cutoff 0.52 \
    --fit-window 2 10 --n-blocks 5
fi

if [[ $what == all || $what == methane ]]; then
  # 512 all-atom methanes (paper 004 parameters as printed) at 111.7 K and
  # 0.4228 g/cm^3: 50 ps Langevin equilibration, 100 ps Nose-Hoover production,
  # a frame every 0.2 ps; COM positions and summed forces only, float32.
  # Measured: 615 s wall (equilibration 203 s, production 404 s at 124 steps/s).
  [[ $stage == observables ]] || python -m cgjax.reference methane --out "$out/methane_512.npz" \
    --molecules 512 --temperature 111.7 --density 0.4228 \
    --equilibration 50 --production 100 --save-every 0.2 --dt 2 \
    --seed 2024 --platform CPU --threads 2 --dtype float32 --no-velocities
  # ADF cutoff at the (shallow) first minimum of g(r) (0.5375 nm -> 0.54 nm);
  # Einstein fit 2-10 ps, error over 5 blocks of 20 ps.
  python -m cgjax.reference observables "$out/methane_512.npz" \
    --out "$out/methane_512_observables.json" \
    --rdf-bin 0.005 --adf-cutoff 0.54 \
    --fit-window 2 10 --n-blocks 5
fi

if [[ $what == all || $what == methanol_grid ]] && [[ $stage != observables ]]; then
  # The quick transferability preset's grid: 256 TraPPE-UA methanols at 200, 300,
  # 400 K and 0.77 g/cm^3 (paper 003 Fig. 3), 50 ps Langevin + 100 ps Nose-Hoover,
  # a frame every 0.4 ps. Measured: 12.9 min (1 thread, shared cores). A rerun
  # skips the points in manifest.json; delete the folder to remake them.
  python -m cgjax.reference grid --system methanol --temperatures 200 300 400 \
    --densities 0.77 --molecules 256 --cutoff 1.0 --equilibration 50 \
    --production 100 --save-every 0.4 --dt 2 --seed 2026 --threads 1 \
    --platform CPU --dtype float32 --out "$out/methanol_256_quick"
fi

du -sh "$out"
