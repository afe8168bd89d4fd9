"""Small periodic test systems shared by the potential tests."""

import numpy as np
import pytest


def lattice_system(
    n_side: int = 3, box: float = 1.3, n_species: int = 2, jitter: float = 0.04, seed: int = 0
):
    """A jittered simple-cubic configuration: ``(R [N, 3] nm, species [N], box [3] nm)``.

    Neighbours sit ``box / n_side`` apart (0.43 nm by default), so no pair is
    closer than about 0.3 nm and LJ-like terms stay moderate.
    """
    rng = np.random.default_rng(seed)
    g = (np.arange(n_side) + 0.5) * box / n_side
    R = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    R = R + jitter * rng.uniform(-1, 1, size=R.shape)
    species = np.arange(len(R)) % n_species
    return R, species.astype(np.int32), np.full(3, box)


@pytest.fixture(scope="session")
def system2():
    """27 particles, 2 species, cubic box of 1.3 nm."""
    return lattice_system()
