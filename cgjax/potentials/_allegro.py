"""Allegro: strictly local equivariant edge features, no message passing (paper 000 §2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cgjax.potentials._base import Term
from cgjax.potentials._graph import Graph
from cgjax.potentials._nequip import edge_harmonics, radial_basis
from cgjax.potentials._nn import MLP

__all__ = ["Allegro", "default_config"]


def default_config() -> ml_collections.ConfigDict:
    """Paper 000's CG-water Allegro (its Script 2), in nm.

    ``r_max = 7 Å``, ``l_max = 1``, one layer, ``env_embed_multiplicity = 2``,
    two-body MLP ``[8, 16, 32]``, latent MLP ``[32, 32, 32]`` (SiLU), edge
    energy MLP ``[8]``, 8 Bessel functions. ``avg_num_neighbors`` (``auto`` in
    the paper) is water's 33.4 nm^-3 times the cutoff sphere. Keys equal the
    :class:`Allegro` fields.
    """
    return ml_collections.ConfigDict(
        dict(
            n_species=1,
            cutoff=0.7,
            l_max=1,
            n_features=2,
            n_layers=1,
            n_rbf=8,
            two_body_features=(8, 16, 32),
            latent_features=(32, 32, 32),
            edge_features=(8,),
            avg_num_neighbors=48.0,
            param_dtype=jnp.float32,
        )
    )


class Allegro(Term):
    """Allegro energy: a sum of per-edge energies from local equivariant edge features.

    Every directed edge ``ij`` (centre ``i``, neighbour ``j``) carries a
    scalar latent ``x_ij`` and ``n_features`` equivariant channels ``V_ij``
    (irreps ``0e + 1o + ... `` up to ``l_max`` each):

    - ``x_ij = u(r_ij) MLP_2b([onehot(s_i), onehot(s_j), B(r_ij)])`` with ``B``
      the Bessel basis and ``u`` the C2 envelope; ``V_ij = w(x_ij) Y(r̂_ij)``.
    - each layer builds the environment of the centre,
      ``Γ_i = sum_k w'(x_ik) Y(r̂_ik) / sqrt(avg_num_neighbors)``, gathers it
      back onto the edges of ``i`` and takes the channel-wise tensor product
      ``V_ij ⊗ Γ_i``; its scalars update the latent,
      ``x_ij <- u(r_ij) (x_ij + MLP_latent([x_ij, scalars]))``, and a linear map
      of all its irreps gives the new ``V_ij``.
    - ``U = sum_ij u(r_ij) MLP_edge(x_ij)`` (kJ/mol).

    Only edges of the same centre ever meet, so the receptive field is one
    cutoff sphere (no message passing between centres). The ``l = 1`` part
    of ``V`` after each layer is sown as ``intermediates/layer_t``
    (``[E, n_features, 3]``) for equivariance tests.

    Simplifications against the reference Allegro: one-hot species enter the
    two-body MLP directly (no embedding layer); the environment weights are a
    linear map of the latent (``env_embed_mlp = []``, as in paper 000); the
    tensor-product output is mixed by a plain equivariant linear map (not one
    weighted by the latent); the latent resnet is an unweighted sum; the
    envelope is cgjax's C2 ``smooth_switch`` instead of the p = 6 polynomial;
    Bessel frequencies are fixed; no per-species-pair energy scales.

    Attributes:
      n_species: number of bead types.
      cutoff: interaction range (nm); energy and force go to zero smoothly there.
      l_max: largest angular momentum of the harmonics and equivariant features.
      n_features: channels of the equivariant features (``env_embed_multiplicity``).
      n_layers: tensor-product layers.
      n_rbf: Bessel functions of the radial basis.
      two_body_features: widths of the two-body MLP (SiLU); the last is the latent width.
      latent_features: hidden widths of the latent MLP (SiLU).
      edge_features: hidden widths of the edge-energy MLP (linear, as in the paper).
      avg_num_neighbors: fixed normaliser of the environment sum (its square root).
      param_dtype: dtype of the weights.

    References:
      Paper 000 §2 and Script 2; Musaelian et al., Nat. Commun. 14, 579 (2023) (its ref. 46).
    """

    n_species: int = 1
    cutoff: float = 0.7
    l_max: int = 1
    n_features: int = 2
    n_layers: int = 1
    n_rbf: int = 8
    two_body_features: Sequence[int] = (8, 16, 32)
    latent_features: Sequence[int] = (32, 32, 32)
    edge_features: Sequence[int] = (8,)
    avg_num_neighbors: float = 48.0
    param_dtype: Any = jnp.float32
    default_name: ClassVar[str] = "allegro"
    default_config: ClassVar = staticmethod(default_config)

    def _weighted_harmonics(self, sh: e3nn.IrrepsArray, w: jax.Array) -> e3nn.IrrepsArray:
        """``w [E, C * (l_max + 1)]`` times ``Y [E, sh]`` per channel and ``l``: ``[E, C, sh]``."""
        w = w.reshape(w.shape[0], self.n_features, self.l_max + 1)
        per_component = jnp.repeat(
            w, np.arange(self.l_max + 1) * 2 + 1, axis=-1, total_repeat_length=sh.irreps.dim
        )
        return e3nn.IrrepsArray(sh.irreps, sh.array[:, None, :] * per_component)

    @nn.compact
    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        """Energy (kJ/mol, scalar) of the graph; other keywords are ignored."""
        del kwargs
        dtype = self.param_dtype
        rbf, envelope = radial_basis(graph, n_rbf=self.n_rbf, cutoff=self.cutoff, owner="Allegro")
        u = envelope[:, None]
        sh = edge_harmonics(graph, self.l_max)
        si, sj = graph.edge_species()
        onehot = lambda s: jax.nn.one_hot(s, self.n_species, dtype=rbf.dtype)
        x = MLP(self.two_body_features, jax.nn.silu, param_dtype=dtype, name="two_body")(
            jnp.concatenate([onehot(si), onehot(sj), rbf], axis=-1)
        )
        x = x * u
        n_w = self.n_features * (self.l_max + 1)
        V = self._weighted_harmonics(sh, nn.Dense(n_w, param_dtype=dtype, name="embed_edge")(x))
        norm = 1.0 / math.sqrt(self.avg_num_neighbors)
        for t in range(self.n_layers):
            w_env = nn.Dense(n_w, use_bias=False, param_dtype=dtype, name=f"env_embed_{t}")(x)
            env_edges = self._weighted_harmonics(sh, w_env * u)
            env = graph.aggregate(env_edges.array) * norm  # [N, C, sh]: no messages between centres
            env = e3nn.IrrepsArray(sh.irreps, env[graph.receivers])
            tp = e3nn.tensor_product(V, env, filter_ir_out=sh.irreps)  # channel-wise
            scalars = tp.filter(keep="0e").array.reshape(x.shape[0], -1)
            update = MLP(
                (*self.latent_features, x.shape[-1]),
                jax.nn.silu,
                param_dtype=dtype,
                name=f"latent_{t}",
            )(jnp.concatenate([x, scalars], axis=-1))
            x = (x + update) * u
            tp_in = tp.astype(dtype) if self.is_initializing() else tp  # weights follow input
            V = e3nn.flax.Linear(sh.irreps, force_irreps_out=True, name=f"linear_{t}")(tp_in)
            self.sow("intermediates", f"layer_{t}", V.filter(keep="1o").array)
        e_edge = MLP((*self.edge_features, 1), lambda z: z, param_dtype=dtype, name="edge_energy")(
            x
        )
        return jnp.sum(jnp.where(graph.edge_mask, e_edge[:, 0] * envelope, 0.0))
