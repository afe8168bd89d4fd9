"""Base config and presets of ``experiments/alanine_cgschnet.py`` (paper 001, capped alanine).

--config=configs/alanine_cgschnet.py:smoke   # about a minute: the test suite runs it
--config=configs/alanine_cgschnet.py:quick   # the default, <= 15 min on 2 CPU cores
--config=configs/alanine_cgschnet.py:quick_phi_psi_prior  # plus Fourier priors on phi and psi
--config=configs/alanine_cgschnet.py:quick_boltzmann_priors  # that, with k = kT / Var
--config=configs/alanine_cgschnet.py:full    # paper-length training and 100-ns replicas
"""

import ml_collections

#: Every key's meaning and unit (``python -m cgjax.run EXPERIMENT --help``).
HELP = {
    "seed": "seed of folds, initialisation, batch order and MD noise [-]",
    "dataset": "shipped 6-bead alanine dataset, or a .npz from cgjax.reference alanine [-]",
    "frame_stride": "every k-th frame for priors and training (all for the AA FES) [frames]",
    "temperature": "temperature of the data and of the CG simulations [K]",
    "topology.bonds": "bead pairs with harmonic bond priors (bead order C_ACE,N,CA,C,N_NME,CB) [-]",
    "topology.angles": "bead triples with harmonic angle priors, middle is the vertex [-]",
    "topology.torsions": "bead quadruples with Fourier dihedral priors (phi, psi, chirality) [-]",
    "priors.harmonic_fit": (
        "bond and angle priors: 'boltzmann' (k = kT / Var; paper 001) or 'forces' "
        "(then refitted to the mapped forces by least squares) [-]"
    ),
    "priors.dihedral_order": "Fourier harmonics per torsion prior (chirality improper: 1) [-]",
    "priors.dihedral_bins": "histogram bins of the torsion fit over 2 pi [-]",
    "priors.repulsion_energy": (
        "repulsion at each non-bonded pair's closest approach in the data [kJ/mol]"
    ),
    "priors.repulsion_exponent": "power c of the (sigma / r)^c repulsion prior [-]",
    "n_folds": "cross-validation folds = ensemble members, trained vmapped [-]",
    "schnet.embed_dim": "SchNet bead-embedding width (bead types: atomic numbers C, N) [-]",
    "schnet.n_filters": "SchNet continuous-filter width [-]",
    "schnet.n_interactions": "SchNet interaction blocks [-]",
    "schnet.n_rbf": "Gaussian radial basis functions [-]",
    "schnet.cutoff": "SchNet cutoff (beyond every bead pair of the molecule) [nm]",
    "schnet.output_features": "widths of the bead-wise output MLP's hidden layers [-]",
    "schnet.exclude_bonded": "bonded bead pairs send no SchNet messages (paper 001: False) [-]",
    "schnet.exclude_angle_ends": "1-3 bead pairs (angles' ends) send no SchNet messages [-]",
    "schnet.bead_types": "SchNet bead types: 'element' (C, N; paper 001) or 'bead' (one each) [-]",
    "schnet.normalization": "SchNet's convolution sums / this (cgnet SimpleNormLayer) [-]",
    "cgnet.hidden": "widths of CGnet's hidden tanh layers [-]",
    "train.lr": "Adam's initial learning rate [-]",
    "train.lr_final_fraction": "final learning rate of the cosine decay, as a fraction of lr [-]",
    "train.n_steps": "optimiser updates per member [steps]",
    "train.batch_size": "frames per update [frames]",
    "train.eval_every": "updates between validation force errors [steps]",
    "train.checkpoint_every": "updates between checkpoints in the workdir [steps]",
    "train.clip_norm": "gradient clipped to this global norm (None: no clipping) [-]",
    "md.dt": "BAOAB time step [ps]",
    "md.friction": "Langevin friction coefficient gamma [1/ps]",
    "md.replicas": "independent replicas, vmapped, started from evenly spaced data frames [-]",
    "md.equilibration_steps": "steps per replica before recording [steps]",
    "md.production_steps": "recorded steps per replica [steps]",
    "md.record_every": "steps between recorded frames [steps]",
    "analysis.n_bins": "bins per axis of the phi/psi free-energy surfaces (paper: 60) [-]",
    "analysis.noise_seeds": "noise draws per sigma of the baseline (paper: 50) [-]",
    "analysis.sigma_max_A": "largest noise sigma of the baseline, step 0.01 (paper: 0.30) [Å]",
    "progress": "show progress bars [-]",
}


#: Value ranges, checked before anything is written (``cgjax.config.check_config``).
CHECKS = {
    "frame_stride": "> 0",
    "temperature": "> 0",
    "priors.dihedral_order": "> 0",
    "priors.dihedral_bins": "> 0",
    "priors.repulsion_energy": "> 0",
    "priors.repulsion_exponent": "> 0",
    "n_folds": ">= 2",
    "schnet.embed_dim": "> 0",
    "schnet.n_filters": "> 0",
    "schnet.n_interactions": "> 0",
    "schnet.n_rbf": "> 0",
    "schnet.cutoff": "> 0",
    "schnet.normalization": "> 0",
    "schnet.output_features": "> 0",
    "cgnet.hidden": "> 0",
    "train.lr": "> 0",
    "train.lr_final_fraction": "in [0, 1]",
    "train.n_steps": "> 0",
    "train.batch_size": "> 0",
    "train.eval_every": "> 0",
    "train.checkpoint_every": "> 0",
    "train.clip_norm": "> 0",
    "md.dt": "> 0",
    "md.friction": "> 0",
    "md.replicas": "> 0",
    "md.equilibration_steps": ">= 0",
    "md.production_steps": "> 0",
    "md.record_every": "> 0",
    "analysis.n_bins": "> 0",
    "analysis.noise_seeds": "> 0",
    "analysis.sigma_max_A": "> 0",
}


def base() -> ml_collections.ConfigDict:
    """The default (``quick``) preset: <= 15 min on 2 CPU cores."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "alanine_dipeptide"
    # every frame: force matching learns the mean force along psi from ~10x noisier
    # per-frame forces, so 4x the frames helps (seed 0, stride 4 -> 1: CGnet FES KL
    # 1.65 -> 0.72, RMS error of its mean torque along psi 5.2 -> 1.9 kJ/mol/rad)
    c.frame_stride = 1
    c.temperature = 300.0
    c.topology = ml_collections.ConfigDict(
        dict(
            bonds=((0, 1), (1, 2), (2, 3), (3, 4), (2, 5)),
            angles=((0, 1, 2), (1, 2, 3), (2, 3, 4), (1, 2, 5), (3, 2, 5)),
            # paper 001's priors are bonds, angles and repulsion; the one torsion here is
            # the chirality improper (distance-only models and those priors are mirror-
            # symmetric, and the mirror image swaps alpha_R and alpha_L). The networks
            # learn the backbone (phi/psi) free energy themselves.
            torsions=((1, 3, 2, 5),),
        )
    )
    c.priors = ml_collections.ConfigDict(
        dict(
            harmonic_fit="forces", dihedral_order=(1,), dihedral_bins=72,
            repulsion_energy=1.0, repulsion_exponent=6.0,
        )
    )  # fmt: skip
    c.n_folds = 5
    c.schnet = ml_collections.ConfigDict(
        dict(embed_dim=32, n_filters=32, n_interactions=2, n_rbf=32, cutoff=1.0,
             output_features=(32,), exclude_bonded=False, exclude_angle_ends=False,
             bead_types="element", normalization=6.0)
    )  # fmt: skip
    # normalization = 6 (the number of beads; cgnet's SimpleNormLayer, the code of paper
    # 001): with plain sums, 1-2 of 5 members in the 20000-update runs drove every unit of
    # the second interaction's update network into saturation within ~2500 updates
    # (tanh pre-activations 120-540 from the product of node, filter and update layers)
    # and stopped learning; with the sums / 6 all members stayed active (pre-activations
    # <= 14 after 5000 updates, seeds 0 and 1; docs/results).
    # n_rbf = 32 on [0, 1 nm] (Gaussians 0.032 nm wide): the psi-dependent distances
    # (N-N_NME, CB-N_NME) vary by ~0.09 nm, less than the 0.14-nm Gaussians of n_rbf = 8,
    # and SchNet learned too little of the mean force along psi. Seed 0, every frame,
    # RMS error of the ensemble's mean torque along psi over the AA frames
    # (scripts/alanine_force_checks.py model-torque): 5.5 (n_rbf 8), 3.9 (16),
    # 3.1 kJ/mol/rad (32); CGnet 1.9. (With Fourier phi/psi priors and every 4th frame,
    # 32 had shifted alpha_R instead: docs/results.)
    c.cgnet = ml_collections.ConfigDict(dict(hidden=(64, 64, 64)))
    c.train = ml_collections.ConfigDict(
        dict(lr=3e-3, lr_final_fraction=0.01, n_steps=20000, batch_size=64, eval_every=5000,
             checkpoint_every=5000, clip_norm=1000.0)
    )  # fmt: skip
    # 20000 updates: the networks learn the backbone free energy only with many updates
    # (seed 0, every 4th frame, n_rbf 8: CGSchNet KL 2.98 after 5000, 0.66 after 20000
    # and 30000); 192 replicas keep the preset within 15 min (13.6 min on a fresh clone
    # of 31acf82, 2 quiet cores; docs/results)
    c.md = ml_collections.ConfigDict(
        dict(dt=0.002, friction=1.0, replicas=192, equilibration_steps=500,
             production_steps=15000, record_every=250)
    )  # fmt: skip
    c.analysis = ml_collections.ConfigDict(dict(n_bins=60, noise_seeds=5, sigma_max_A=0.30))
    c.progress = True
    return c


def get_config(preset: str = "quick"):
    c = base()
    if preset == "quick":
        return c
    if preset in ("quick_phi_psi_prior", "quick_boltzmann_priors"):
        # the quick preset until 2026-12-05: Fourier priors on phi and psi fitted to the
        # weighted torsion histograms carry the backbone marginals, so 5000 updates do.
        # Seed 0 / 1 (256 replicas x 30 ps): CGSchNet KL 0.472 / 0.513 (sigma = 0.2 Å:
        # 0.62), but priors only are as good (0.475 / 0.450): the network adds nothing.
        c.frame_stride = 4
        c.schnet.update(n_rbf=8, normalization=1.0)
        c.topology.torsions = ((0, 1, 2, 3), (1, 2, 3, 4), (1, 3, 2, 5))
        c.priors.dihedral_order = (3, 3, 1)
        c.train.update(n_steps=5000, eval_every=500, checkpoint_every=1000)
        c.md.replicas = 256
        if preset == "quick_boltzmann_priors":
            # paper 001's Boltzmann-inverted bonds and angles (k = kT / Var). Seed 0:
            # CGSchNet KL 0.78 with 1000 updates and 1.61 with 5000 (81 % alpha_R against
            # the AA's 40 %); the force-fitted constants give 0.48. The Boltzmann angle
            # constants at CA are up to 2.4x the force-implied ones (the three angles at
            # CA constrain each other) and SchNet's fit of that stiff residual shifts
            # the basins.
            c.priors.harmonic_fit = "boltzmann"
        return c
    if preset == "smoke":
        c.frame_stride = 40
        c.priors.harmonic_fit = "forces"  # the refit's code path, in the suite
        c.n_folds = 2
        c.schnet.update(embed_dim=8, n_filters=8, n_interactions=1, n_rbf=8, output_features=(8,),
                        exclude_bonded=True)  # fmt: skip
        c.cgnet.hidden = (8,)
        c.train.update(n_steps=4, batch_size=8, eval_every=2, checkpoint_every=2)
        c.md.update(replicas=4, equilibration_steps=10, production_steps=40, record_every=10)
        c.analysis.update(noise_seeds=2, sigma_max_A=0.1)
        c.progress = False
        return c
    if preset == "full":
        # Paper 001 sizes: embeddings 128, 5 interactions, 50 RBFs; 100-ns replicas
        # (hours on a GPU; days on 2 CPU cores). 50 RBFs on 1 nm are 0.02 nm wide: the
        # quick preset's alpha_R shift grew with narrower Gaussians (unmeasured here).
        c.frame_stride = 1
        c.schnet.update(embed_dim=128, n_filters=128, n_interactions=5, n_rbf=50,
                        output_features=(128,))  # fmt: skip
        c.cgnet.hidden = (160, 160, 160, 160, 160)
        c.train.update(n_steps=50000, batch_size=128, eval_every=1000, checkpoint_every=1000)
        c.md.update(replicas=100, production_steps=50_000_000, record_every=500)
        c.analysis.noise_seeds = 50
        return c
    raise ValueError(
        f"unknown preset {preset!r}; presets: smoke, quick, quick_phi_psi_prior, "
        "quick_boltzmann_priors, full"
    )
