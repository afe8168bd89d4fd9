"""The message-passing GNN potential of paper 004 (§2.1, eqs. 2-7)."""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from cgjax.potentials._base import Term
from cgjax.potentials._graph import Graph
from cgjax.potentials._nn import (
    MLP,
    convolve,
    message_total,
    radial_edge_features,
    shifted_softplus,
)

__all__ = ["GNN", "MessagePassing", "default_config"]


def default_config() -> ml_collections.ConfigDict:
    """Paper 004's CG water GNN: 100 types x 16 features, two layers, 6 Å cutoff.

    ``message_dim`` and ``n_rbf`` are not given in the paper; these are ours.
    Keys equal the :class:`GNN` fields, so ``GNN(**default_config())`` works.
    """
    return ml_collections.ConfigDict(
        dict(
            n_species=100,
            embed_dim=16,
            message_dim=16,
            n_layers=2,
            n_rbf=20,
            rbf_width=None,
            cutoff=0.6,
            param_dtype=jnp.float32,
        )
    )


class MessagePassing(nn.Module):
    """One message-passing layer ``h_i <- h_i + SubNet3(sum_j SubNet1(h_j) * SubNet2(rho(d_ij)))``.

    Parameters: ``subnet1`` (dense, eq. 5), ``subnet2`` (``dense_0``, ``dense_1``
    with a shifted softplus between, eq. 6), ``subnet3`` (dense, eq. 7).

    Attributes:
      embed_dim: width ``D`` of the node attributes.
      message_dim: width ``M`` of the messages.
      param_dtype: dtype of the weights.
    """

    embed_dim: int
    message_dim: int
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        h: jax.Array,
        graph: Graph,
        rbf: jax.Array,
        envelope: jax.Array,
        uniform: bool = False,
        summed: bool = False,
    ) -> jax.Array:
        """``h [N, D]``, ``rbf [E, K]``, ``envelope [E]`` -> updated ``h [N, D]``.

        ``uniform``: every row of ``h`` is the same (see :func:`convolve`).
        ``summed``: return ``sum(h_new)`` (a scalar, eq. 2's readout of a last
        layer) instead of ``h_new``. SubNet3 is affine, so the sum over nodes
        of its output is SubNet3 of the sum of all messages, and that sum is a
        sum over edges: no per-node aggregation (a scatter, and its transpose
        in the force) is needed. Equal to ``sum(h_new)`` to float round-off.
        """
        node = nn.Dense(self.message_dim, param_dtype=self.param_dtype, name="subnet1")(h)
        edge = MLP(
            (self.message_dim, self.message_dim),
            activation=shifted_softplus,
            param_dtype=self.param_dtype,
            name="subnet2",
        )(rbf)
        # The envelope takes each message smoothly to zero at the cutoff (not in
        # the paper, whose hard cutoff makes forces jump there).
        filters = edge * envelope[:, None]
        subnet3 = nn.Dense(self.embed_dim, param_dtype=self.param_dtype, name="subnet3")
        if not summed:
            return h + subnet3(convolve(graph, node, filters, uniform=uniform))
        total = message_total(graph, node, filters, uniform=uniform)  # [M]: sum_i m_i
        # sum_i (m_i W + b) = (sum_i m_i) W + b + (N - 1) b
        out = subnet3(total[None])
        bias = subnet3.variables["params"]["bias"]
        return jnp.sum(h) + jnp.sum(out) + (h.shape[0] - 1) * jnp.sum(bias).astype(out.dtype)


class GNN(Term):
    """Graph neural network potential: embedding, message passing, sum of node attributes.

    ``U = sum_i sum_k h_ik`` (kJ/mol) with ``h^(0)_i = embedding[species_i]``
    (``[n_species, embed_dim]``) and ``n_layers`` :class:`MessagePassing`
    layers over the edges of the graph within ``cutoff``; distances are
    expanded in ``n_rbf`` Gaussians on ``[0, cutoff]``.

    Parameters: ``{"embedding": {"embedding": [S, D]}, "layer_0": {...}, ...}``.

    Attributes:
      n_species: rows ``S`` of the embedding table (at least the number of
        species in the system).
      embed_dim: node-attribute width ``D``.
      message_dim: message width ``M``.
      n_layers: number of message-passing layers.
      n_rbf: number of Gaussians of the distance expansion ``rho_G``.
      rbf_width: their width (nm); ``None``: the centre spacing.
      cutoff: interaction range (nm); energy and force go to zero smoothly there.
      param_dtype: dtype of the weights.

    References:
      Paper 004 §2.1, eqs. 2-7 (GNN block of the CG water model).
    """

    n_species: int = 100
    embed_dim: int = 16
    message_dim: int = 16
    n_layers: int = 2
    n_rbf: int = 20
    rbf_width: float | None = None
    cutoff: float = 0.6
    param_dtype: Any = jnp.float32
    default_name: ClassVar[str] = "gnn"

    def needs_directed_edges(self) -> bool:
        """False: its filters depend on distances only, so each pair is listed once
        and :func:`~cgjax.potentials.convolve` sends messages both ways."""
        return False

    default_config: ClassVar = staticmethod(default_config)

    @nn.compact
    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        """Energy (kJ/mol, scalar) of the graph; other keywords are ignored."""
        del kwargs
        rbf, envelope = radial_edge_features(
            graph, n_rbf=self.n_rbf, cutoff=self.cutoff, width=self.rbf_width, owner="GNN"
        )
        h = nn.Embed(
            self.n_species, self.embed_dim, param_dtype=self.param_dtype, name="embedding"
        )(graph.species)
        for layer in range(self.n_layers):
            last = layer == self.n_layers - 1
            h = MessagePassing(
                self.embed_dim, self.message_dim, self.param_dtype, name=f"layer_{layer}"
            )(h, graph, rbf, envelope, uniform=layer == 0 and graph.uniform_species, summed=last)
        # eq. 2, U = sum_i sum_k h_ik: the last layer returned that sum
        return h if self.n_layers else jnp.sum(h)
