"""CGnet: an MLP on hand-chosen internal features of one molecule (paper 001's baseline).

Features of each copy of the molecule: listed distances (nm), angles (rad) and
the cosine and sine of listed torsions, standardised by fixed data statistics
(:func:`cgnet_normalization`), then a tanh MLP to one scalar energy (kJ/mol).
The features are invariant to rotation and translation, so is the energy.
Copies (see :meth:`CGnet.replicated`) share the network and their energies add.

References:
  paper 001: B. E. Husic et al., J. Chem. Phys. 153, 194101 (2020), Sec. III A;
  J. Wang et al., ACS Cent. Sci. 5, 755 (2019) (CGnet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cgjax._space import make_space
from cgjax.potentials._base import Term
from cgjax.potentials._dihedral import check_torsions, dihedral_angles
from cgjax.potentials._harmonic import _as_tuples, _bond_angles, _bond_lengths, _index_array
from cgjax.potentials._nn import MLP

__all__ = ["CGnet", "cgnet_features", "cgnet_normalization"]

_TOPOLOGY = (("pairs", 2), ("angles", 3), ("torsions", 4))


def cgnet_features(R: jax.Array, pairs, angles, torsions, displacement) -> jax.Array:
    """``[P + A + 2 D]`` features of positions ``[N, 3]``: distances, angles, cos/sin torsions."""
    d = _bond_lengths(R, pairs, displacement)
    theta = _bond_angles(R, angles, displacement)
    phi = dihedral_angles(R, torsions, displacement)
    return jnp.concatenate([d, theta, jnp.cos(phi), jnp.sin(phi)])


class CGnet(Term):
    """MLP energy of internal features, one network shared by ``n_copies`` molecules.

    Attributes:
      pairs, angles, torsions: index tuples of one copy's features (tiled for copies).
      feature_mean, feature_std: ``[F]`` standardisation of one copy's features
        (``F = P + A + 2 D``), from :func:`cgnet_normalization`; default 0 and 1.
      hidden: widths of the hidden tanh layers.
      n_copies: copies of the molecule (consecutive blocks of particles).
      param_dtype: dtype of the weights.

    References:
      Paper 001 Sec. III A; Wang et al., ACS Cent. Sci. 5, 755 (2019).
    """

    pairs: tuple[tuple[int, int], ...] = ()
    angles: tuple[tuple[int, int, int], ...] = ()
    torsions: tuple[tuple[int, int, int, int], ...] = ()
    feature_mean: Any = None
    feature_std: Any = None
    hidden: Sequence[int] = (64, 64)
    n_copies: int = 1
    param_dtype: Any = jnp.float32
    default_name: ClassVar[str] = "cgnet"

    def needs_directed_edges(self) -> bool:
        return False

    def _index(self, name: str, width: int, n: int | None = None) -> np.ndarray:
        idx = _index_array(getattr(self, name), width, name[:-1], n)
        if len(idx) % self.n_copies:
            raise ValueError(f"CGnet: {len(idx)} {name} do not split into {self.n_copies} copies")
        return idx

    def replicated(self, n_copies: int, n_particles: int) -> CGnet:
        new = {}
        for name, width in _TOPOLOGY:
            idx = self._index(name, width)
            offsets = n_particles * np.arange(n_copies)[:, None, None]
            new[name] = _as_tuples((idx[None] + offsets).reshape(-1, width))
        return self.clone(parent=None, n_copies=self.n_copies * n_copies, **new)

    def permuted(self, perm: Any) -> CGnet:
        perm = np.asarray(perm)
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(len(perm))
        new = {n: _as_tuples(inverse[self._index(n, w, len(perm))]) for n, w in _TOPOLOGY}
        return self.clone(parent=None, **new)

    @nn.compact
    def __call__(self, graph, **kwargs) -> jax.Array:
        """Energy (kJ/mol, scalar)."""
        idx = [jnp.asarray(self._index(n, w, graph.n_nodes)) for n, w in _TOPOLOGY]
        x = cgnet_features(graph.positions, *idx, graph.displacement)
        dtype = x.dtype
        # per-copy blocks: [copies, P], [copies, A], [copies, 2D] -> [copies, F]
        c = self.n_copies
        p, a, t = (len(i) // c for i in idx)
        blocks = [
            x[: p * c].reshape(c, p),
            x[p * c : (p + a) * c].reshape(c, a),
            x[(p + a) * c : (p + a + t) * c].reshape(c, t),
            x[(p + a + t) * c :].reshape(c, t),
        ]
        x = jnp.concatenate(blocks, axis=1)
        F = x.shape[1]
        mean = np.zeros(F) if self.feature_mean is None else np.asarray(self.feature_mean)
        std = np.ones(F) if self.feature_std is None else np.asarray(self.feature_std)
        if mean.shape != (F,) or std.shape != (F,):
            raise ValueError(f"CGnet feature_mean/feature_std must have shape [{F}]")
        x = (x - jnp.asarray(mean, dtype)) / jnp.asarray(std, dtype)
        out = MLP((*self.hidden, 1), jnp.tanh, param_dtype=self.param_dtype, name="mlp")(x)
        return jnp.sum(out)


def cgnet_normalization(positions: Any, pairs, angles, torsions) -> dict[str, np.ndarray]:
    """Standardisation ``{"feature_mean": [F], "feature_std": [F]}`` over frames ``[T, N, 3]`` (nm).

    Raises:
      CollinearTorsionError: a torsion is undefined in some frame.
    """
    R = np.asarray(positions)
    idx = [
        _index_array(v, w, n, R.shape[1])
        for v, (n, w) in zip((pairs, angles, torsions), _TOPOLOGY, strict=True)
    ]
    check_torsions(R, idx[2])
    disp = jax.vmap(make_space(None)[0])
    f = jax.jit(jax.vmap(lambda r: cgnet_features(r, *map(jnp.asarray, idx), disp)))(jnp.asarray(R))
    f = np.asarray(f, np.float64)
    return {"feature_mean": f.mean(axis=0), "feature_std": np.maximum(f.std(axis=0), 1e-6)}
