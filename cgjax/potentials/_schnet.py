"""SchNet as used in CGSchNet (paper 001 §III B, eqs. 9-11): continuous-filter convolutions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cgjax.potentials._base import Term
from cgjax.potentials._graph import Graph
from cgjax.potentials._nn import MLP, convolve, radial_edge_features

__all__ = ["Interaction", "SchNet", "default_config"]


def default_config() -> ml_collections.ConfigDict:
    """A CG-sized SchNet: 64 features, 3 interaction blocks, 0.6 nm cutoff.

    Paper 001 gives its sizes only in its supplement (not in our copy), so
    these are ours. Keys equal the :class:`SchNet` fields, so
    ``SchNet(**default_config())`` works.
    """
    return ml_collections.ConfigDict(
        dict(
            n_species=100,
            embed_dim=64,
            n_filters=64,
            n_interactions=3,
            n_rbf=50,
            rbf_width=None,
            cutoff=0.6,
            output_features=(64,),
            param_dtype=jnp.float32,
            exclude=(),
            normalization=1.0,
        )
    )


class Interaction(nn.Module):
    """Interaction block ``h_i <- h_i + g(z_i)``, ``z_i = sum_j w(e(r_ij)) * b(h_j)`` (eqs. 10-11).

    Parameters: ``filter_net`` (w: ``dense_0`` -> tanh -> ``dense_1``, times the
    envelope), ``node_net`` (b: beadwise linear, no bias, as in SchNet's
    in2f), ``update_net`` (g: ``dense_0`` -> tanh -> ``dense_1``).

    Attributes:
      embed_dim: bead-feature width ``D``.
      n_filters: filter width ``F``.
      param_dtype: dtype of the weights.
      normalization: the convolution's sum ``z_i`` is divided by this number
        (cgnet's ``SimpleNormLayer``; see :class:`SchNet`).
    """

    embed_dim: int
    n_filters: int
    param_dtype: Any = jnp.float32
    normalization: float = 1.0

    @nn.compact
    def __call__(
        self,
        h: jax.Array,
        graph: Graph,
        rbf: jax.Array,
        envelope: jax.Array,
        uniform: bool = False,
    ) -> jax.Array:
        """``h [N, D]``, ``rbf [E, K]``, ``envelope [E]`` -> updated ``h [N, D]``.

        ``uniform``: every row of ``h`` is the same (see :func:`convolve`)."""
        dtype = self.param_dtype
        w = MLP((self.n_filters,) * 2, jnp.tanh, param_dtype=dtype, name="filter_net")
        b = nn.Dense(self.n_filters, use_bias=False, param_dtype=dtype, name="node_net")
        # tanh in g instead of SchNet's softplus, as paper 001 does
        g = MLP((self.embed_dim,) * 2, jnp.tanh, param_dtype=dtype, name="update_net")
        z = convolve(graph, b(h), w(rbf) * envelope[:, None], uniform=uniform)  # eq. 10
        if self.normalization != 1.0:
            z = z / self.normalization
        return h + g(z)  # eq. 11


def _kept_edges(exclude: Any, graph: Graph) -> jax.Array:
    """``[E]`` 1.0 on edges not listed in ``exclude`` (either direction), 0.0 on listed ones."""
    n = graph.n_nodes
    pairs = np.asarray(exclude, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(
            f"SchNet.exclude: pair indices must be in [0, {n}) for this {n}-particle "
            f"system, got {[tuple(int(x) for x in p) for p in pairs]}"
        )
    table = np.zeros((n, n), dtype=bool)
    table[pairs[:, 0], pairs[:, 1]] = table[pairs[:, 1], pairs[:, 0]] = True
    return jnp.where(jnp.asarray(table)[graph.senders, graph.receivers], 0.0, 1.0)


class SchNet(Term):
    """CGSchNet energy: bead embeddings, interaction blocks, beadwise output MLP, summed.

    ``U = sum_i out(h_i^(T))`` (kJ/mol) with ``h_i^(0) = a_{species_i}`` (eq. 9),
    ``n_interactions`` :class:`Interaction` blocks (eqs. 10-11) over the edges
    within ``cutoff``, and ``out`` a tanh MLP to one number per bead (the
    beadwise CGnet).

    Parameters: ``{"embedding": {"embedding": [S, D]}, "interaction_0": {...},
    ..., "output": {"dense_0", ..., "dense_L"}}``.

    Attributes:
      n_species: number ``S`` of bead types (rows of the embedding table).
      embed_dim: bead-feature width ``D``.
      n_filters: filter width ``F`` of the convolutions.
      n_interactions: number ``T`` of interaction blocks.
      n_rbf: Gaussians of the distance featurisation ``e``, centred on ``[0, cutoff]``.
      rbf_width: their width (nm); ``None``: the centre spacing.
      cutoff: interaction range (nm); energy and force go to zero smoothly there.
      output_features: hidden widths of the output MLP (a final width-1 layer
        is added).
      param_dtype: dtype of the weights.
      exclude: particle-index pairs ``(i, j)`` whose edges carry no message
        (their filters are multiplied by 0), e.g. a molecule's bonded pairs whose
        stiff distances a prior already holds; ``()``: every pair within the
        cutoff, as paper 001. Indices must be ``< N``.
      normalization: every convolution's sum over neighbours is divided by
        this number (> 0), as the ``SimpleNormLayer`` of paper 001's code
        (cgnet) does with the number of beads. Plain sums (1.0) let the product
        of node, filter and update layers grow during training until a tanh
        layer saturates and the network stops depending on positions.

    References:
      Paper 001 §III B, eqs. 9-11 (CGSchNet); Schütt et al., SchNet (its ref. 24).
    """

    n_species: int = 100
    embed_dim: int = 64
    n_filters: int = 64
    n_interactions: int = 3
    n_rbf: int = 50
    rbf_width: float | None = None
    cutoff: float = 0.6
    output_features: Sequence[int] = (64,)
    param_dtype: Any = jnp.float32
    exclude: tuple[tuple[int, int], ...] = ()
    normalization: float = 1.0
    default_name: ClassVar[str] = "schnet"

    def needs_directed_edges(self) -> bool:
        """False: its filters depend on distances only, so each pair is listed once
        and :func:`~cgjax.potentials.convolve` sends messages both ways."""
        return False

    default_config: ClassVar = staticmethod(default_config)

    @nn.compact
    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        """Energy (kJ/mol, scalar) of the graph; other keywords are ignored."""
        del kwargs
        try:
            good = not isinstance(self.normalization, bool) and float(self.normalization) > 0
        except (TypeError, ValueError):
            good = False
        if not good:
            raise ValueError(
                f"SchNet.normalization must be a number > 0, got {self.normalization!r}"
            )
        rbf, envelope = radial_edge_features(
            graph, n_rbf=self.n_rbf, cutoff=self.cutoff, width=self.rbf_width, owner="SchNet"
        )
        if self.exclude:
            envelope = envelope * _kept_edges(self.exclude, graph)
        h = nn.Embed(
            self.n_species, self.embed_dim, param_dtype=self.param_dtype, name="embedding"
        )(graph.species)
        for t in range(self.n_interactions):
            h = Interaction(
                self.embed_dim,
                self.n_filters,
                self.param_dtype,
                self.normalization,
                name=f"interaction_{t}",
            )(h, graph, rbf, envelope, uniform=t == 0 and graph.uniform_species)
        out = MLP(
            (*self.output_features, 1), jnp.tanh, param_dtype=self.param_dtype, name="output"
        )(h)
        return jnp.sum(out)
