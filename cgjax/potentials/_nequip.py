"""NequIP: E(3)-equivariant message passing with spherical-harmonic filters (paper 000 §2).

Shared with :mod:`cgjax.potentials._allegro`: the radial featurisation
(:func:`radial_basis`), the spherical harmonics of the edge directions
(:func:`edge_harmonics`) and the hidden irreps (:func:`natural_irreps`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from cgjax.potentials._base import Term
from cgjax.potentials._cutoff import check_cutoff, smooth_switch
from cgjax.potentials._graph import Graph
from cgjax.potentials._nn import MLP

__all__ = ["NequIP", "default_config", "edge_harmonics", "natural_irreps", "radial_basis"]


def default_config() -> ml_collections.ConfigDict:
    """A CG-water-sized NequIP: ``l_max = 1``, 32 channels, 3 layers, 0.7 nm cutoff.

    Paper 000 trains Allegro (not NequIP) with ``r_max = 7 Å``, ``l_max = 1``
    and 8 Bessel functions; we take those and NequIP's own defaults for the
    rest. ``avg_num_neighbors = 48`` is water's density (33.4 nm^-3) times the
    0.7 nm cutoff sphere. Keys equal the :class:`NequIP` fields.
    """
    return ml_collections.ConfigDict(
        dict(
            n_species=1,
            cutoff=0.7,
            l_max=1,
            n_features=32,
            n_layers=3,
            n_rbf=8,
            radial_features=(64, 64),
            avg_num_neighbors=48.0,
            param_dtype=jnp.float32,
        )
    )


def natural_irreps(mul: int, l_max: int) -> e3nn.Irreps:
    """``mul x (0e + 1o + 2e + ...)`` up to ``l_max``: the parities reachable from vectors."""
    return e3nn.Irreps([(mul, (l, (-1) ** l)) for l in range(l_max + 1)])


def radial_basis(
    graph: Graph, *, n_rbf: int, cutoff: float, owner: str
) -> tuple[jax.Array, jax.Array]:
    """Bessel functions of the edge lengths and the smooth envelope that cuts them off.

    Args:
      graph: the system's graph.
      n_rbf: number of Bessel functions ``sqrt(2/r_c) sin(n pi r / r_c) / r``.
      cutoff: ``r_c`` (nm).
      owner: name used in error messages.

    Returns:
      ``(basis [E, n_rbf] (nm^-3/2), envelope [E])``; the envelope is
      ``smooth_switch(r, 0, r_c)`` (C2, zero at and beyond ``r_c`` and on
      padding edges).
    """
    check_cutoff(0.0, cutoff, owner)
    r = graph.edge_lengths
    envelope = jnp.where(graph.edge_mask, smooth_switch(r, 0.0, cutoff), 0.0)
    return e3nn.bessel(r, n_rbf, cutoff), envelope


def edge_harmonics(graph: Graph, l_max: int) -> e3nn.IrrepsArray:
    """Spherical harmonics ``Y^l(r_ij / |r_ij|)``, ``l = 0..l_max``: ``[E, (l_max + 1)^2]``.

    ``r_ij = R_j - R_i`` points from the receiver to the sender; padding
    edges hold a finite far vector, so no normalisation divides by zero.
    """
    return e3nn.spherical_harmonics(
        e3nn.Irreps.spherical_harmonics(l_max), graph.edge_vectors, normalize=True
    )


class NequIP(Term):
    """NequIP energy: equivariant interaction blocks on nodes, per-node scalar readout, summed.

    Each of ``n_layers`` blocks (paper 000 eq. 2; Batzner et al.) computes, for
    node features ``h`` (irreps ``n_features x (0e + 1o + ... )`` up to
    ``l_max``):

    1. messages ``m_ij = R(r_ij) (W1 h_j ⊗ Y(r̂_ij))`` with ``R`` an MLP of
       the Bessel basis times the C2 envelope, giving one weight per channel
       and path;
    2. ``z_i = W2 (sum_j m_ij) / sqrt(avg_num_neighbors)`` plus a
       species-indexed self-connection of ``h_i``;
    3. a gate nonlinearity (SiLU on scalars, sigmoid gates on ``l > 0``),
       and a residual ``h <- h + gate(z)`` once the irreps agree.

    The energy is ``U = sum_i W_out2 W_out1 h_i`` (kJ/mol) over the scalar
    channels. Intermediate node features are sown as
    ``intermediates/layer_t`` (``[N, irreps.dim]``, irreps
    ``natural_irreps(n_features, l_max)``) for equivariance tests.

    Simplifications against the reference implementation: the envelope is
    cgjax's C2 ``smooth_switch`` instead of the p = 6 polynomial, Bessel
    frequencies are fixed, no per-species energy shift/scale.

    Attributes:
      n_species: number of bead types.
      cutoff: interaction range (nm); energy and force go to zero smoothly there.
      l_max: largest angular momentum of features and harmonics.
      n_features: multiplicity of every irrep of the node features.
      n_layers: number of interaction blocks.
      n_rbf: Bessel functions of the radial basis.
      radial_features: hidden widths of the radial MLP (SiLU).
      avg_num_neighbors: fixed normaliser of the neighbour sum (its square root
        divides the sum, as in NequIP).
      param_dtype: dtype of the weights.

    References:
      Paper 000 §2, eq. 2; Batzner et al., Nat. Commun. 13, 2453 (2022) (its ref. 11).
    """

    n_species: int = 1
    cutoff: float = 0.7
    l_max: int = 1
    n_features: int = 32
    n_layers: int = 3
    n_rbf: int = 8
    radial_features: Sequence[int] = (64, 64)
    avg_num_neighbors: float = 48.0
    param_dtype: Any = jnp.float32
    default_name: ClassVar[str] = "nequip"
    default_config: ClassVar = staticmethod(default_config)

    def _lin(self, irreps: Any, name: str, *args: Any) -> e3nn.IrrepsArray:
        x = args[-1]
        if self.is_initializing():  # weights are made in the dtype of the input
            x = x.astype(self.param_dtype)
        indexed = self.n_species if len(args) > 1 else None
        layer = e3nn.flax.Linear(
            irreps, num_indexed_weights=indexed, force_irreps_out=True, name=name
        )
        return layer(*args[:-1], x)

    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        """Energy (kJ/mol, scalar) of the graph; other keywords are ignored."""
        del kwargs
        # Compiled as a whole even when called eagerly: e3nn's many small
        # operations would otherwise each be compiled on first use.
        return nn.jit(type(self)._energy)(self, graph)

    @nn.compact
    def _energy(self, graph: Graph) -> jax.Array:
        rbf, envelope = radial_basis(graph, n_rbf=self.n_rbf, cutoff=self.cutoff, owner="NequIP")
        sh = edge_harmonics(graph, self.l_max)
        hidden = natural_irreps(self.n_features, self.l_max)
        n_gates = self.n_features * self.l_max
        pre_gate = e3nn.Irreps(f"{self.n_features + n_gates}x0e") + hidden.filter(drop="0e")
        emb = nn.Embed(
            self.n_species, self.n_features, param_dtype=self.param_dtype, name="embedding"
        )(graph.species)
        h = e3nn.IrrepsArray(f"{self.n_features}x0e", emb)
        norm = 1.0 / math.sqrt(self.avg_num_neighbors)
        for t in range(self.n_layers):
            skip = self._lin(pre_gate, f"self_connection_{t}", graph.species, h)
            x = self._lin(h.irreps, f"linear_up_{t}", h)
            msg = e3nn.tensor_product(x[graph.senders], sh, filter_ir_out=hidden)
            w = MLP(
                (*self.radial_features, msg.irreps.num_irreps),
                jax.nn.silu,
                param_dtype=self.param_dtype,
                name=f"radial_{t}",
            )(rbf)
            msg = msg * (w * envelope[:, None])
            z = e3nn.IrrepsArray(msg.irreps, graph.aggregate(msg.array) * norm)
            z = self._lin(pre_gate, f"linear_down_{t}", z) + skip
            z = e3nn.gate(z, even_act=jax.nn.silu, even_gate_act=jax.nn.sigmoid)
            h = h + z if h.irreps == z.irreps else z
            self.sow("intermediates", f"layer_{t}", h.array)
        h = self._lin(f"{max(self.n_features // 2, 1)}x0e", "readout_0", h)
        return jnp.sum(self._lin("0e", "readout_1", h).array)
