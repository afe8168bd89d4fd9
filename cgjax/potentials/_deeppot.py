"""Deep Potential with the smooth ``se_e2_a`` descriptor (DeePMD), as used for CG water.

Each bead ``i`` sees its neighbours ``j`` within ``cutoff`` through the rows
``(s, s x/r, s y/r, s z/r)`` of its generalized coordinates ``R~_i``, with
``s(r) = S(r) / r`` and ``S`` DeePMD's C2 polynomial switch. An embedding net
``G(s)`` per species pair gives ``M1`` features per neighbour; the descriptor
``D_i = (G_i^T R~_i)(R~_i^T G_i<) / N_c^2`` (``M1 x M2``) is invariant under
rotation, translation and permutation of neighbours, and a fitting net per
bead species maps it to the bead's energy. Neighbours are the graph's edges,
so there is no fixed ``sel`` padding.

References:
  Paper 000 eqs. 3-4 and Script 1 (DeePMD ``se_e2_a`` for one-site CG water);
  paper 002 §II B (DeePCG: ``U = sum_i U_i``, per-type subnetworks); Zhang et al.,
  NeurIPS 2018 (smooth Deep Potential, DeePMD-kit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from cgjax.potentials._base import Term
from cgjax.potentials._cutoff import check_cutoff, smooth_switch
from cgjax.potentials._graph import Graph

__all__ = ["DeepPotSE", "TypedDense", "default_config"]


def default_config() -> ml_collections.ConfigDict:
    """Paper 000's one-site CG water model (its Script 1).

    ``rcut_smth = 1 Å``, ``rcut = 7 Å``, embedding ``[8, 16, 32]``, fitting
    ``[32, 32, 32]`` with ``resnet_dt``, ``sel = [60]`` (our ``neighbor_norm``),
    one bead type. ``axis_features`` is DeePMD-kit's default ``axis_neuron = 4``
    (the script does not set it). Keys equal the :class:`DeepPotSE` fields.
    """
    return ml_collections.ConfigDict(
        dict(
            n_species=1,
            cutoff=0.7,
            r_onset=0.1,
            embedding_features=(8, 16, 32),
            axis_features=4,
            fitting_features=(32, 32, 32),
            resnet_dt=True,
            neighbor_norm=60.0,
            type_one_side=False,
            param_dtype=jnp.float32,
        )
    )


class TypedDense(nn.Module):
    """A dense layer with one kernel and bias per type: ``y_k = x_k W[t_k] + b[t_k]``.

    Parameters: ``kernel [T, F_in, F_out]``, ``bias [T, F_out]``. Each row
    gathers its own weights, so the cost does not grow with ``T``.

    Attributes:
      n_types: number ``T`` of types.
      features: output width ``F_out``.
      param_dtype: dtype of the weights.
    """

    n_types: int
    features: int
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, types: jax.Array) -> jax.Array:
        """``x [K, F_in]``, int ``types [K]`` -> ``[K, F_out]``."""
        init = nn.initializers.lecun_normal(batch_axis=(0,))
        shape = (self.n_types, x.shape[-1], self.features)
        kernel = self.param("kernel", init, shape, self.param_dtype)
        bias = self.param(
            "bias", nn.initializers.zeros, (self.n_types, self.features), self.param_dtype
        )
        return jnp.einsum("ki,kio->ko", x, kernel[types]) + bias[types]


class DeepPotSE(Term):
    """Deep Potential energy ``U = sum_i F_{s_i}(D_i)`` (kJ/mol) with the ``se_e2_a`` descriptor.

    For every edge ``j -> i`` with ``r = |R_j - R_i| < cutoff`` (nm):

    - ``s(r) = S(r) / r`` (1/nm) with ``S = u^3 (-6 u^2 + 15 u - 10) + 1``,
      ``u = (r - r_onset) / (cutoff - r_onset)`` clipped to ``[0, 1]``: ``1/r``
      below ``r_onset``, zero with two derivatives at ``cutoff``;
    - the row ``R~_ij = (s, s x/r, s y/r, s z/r)`` of ``(x, y, z) = R_j - R_i``;
    - ``G_ij = G_{t_ij}(s)`` (``[M1]``), an embedding net per species pair
      ``t_ij = (s_i, s_j)`` (or per neighbour species with ``type_one_side``).

    Then ``T_i = sum_j G_ij^T R~_ij / N_c`` (``[M1, 4]``), ``D_i = T_i T_i<^T``
    (``[M1, M2]``, ``T_i<`` its first ``M2`` rows) and the fitting net of
    species ``s_i`` maps the flattened ``D_i`` to the energy of bead ``i``.
    An isolated bead has ``D_i = 0`` and energy ``F_{s_i}(0)``.

    Both nets are DeePMD's: tanh layers; the embedding adds its input to a
    layer of the same width and the doubled input to a layer of twice the
    width; the fitting net adds ``dt * layer`` between layers of equal width
    (``dt`` trainable with ``resnet_dt``, else 1) and ends in a linear layer
    to one number.

    Parameters: ``{"embedding_k": {"kernel": [T, F_in, F_out], "bias": [T, F_out]},
    ..., "fitting_k": {...}, "fitting_dt_k": [S, F] (resnet_dt), "fitting_out": {...}}``
    with ``T = S^2`` (``S`` with ``type_one_side``). The descriptor ``[N, M1, M2]``
    and the bead energies ``[N]`` are sown as ``intermediates`` ``"descriptor"``
    and ``"atomic_energies"``.

    Choices that are not from the papers: the input normalisation of DeePMD-kit
    (``davg``/``dstd`` statistics of the environment matrix) and the per-type
    energy bias fitted from data are left to training; initial weights are
    LeCun-normal, biases zero, ``dt`` one.

    Attributes:
      n_species: number ``S`` of bead types.
      cutoff: ``r_c`` (nm); energy and force go to zero smoothly there.
      r_onset: ``r_cs`` (nm), where ``s`` leaves ``1/r`` (DeePMD's ``rcut_smth``).
      embedding_features: widths of the embedding net (input width 1); the
        last is ``M1``.
      axis_features: ``M2 <= M1`` (DeePMD's ``axis_neuron``).
      fitting_features: hidden widths of the fitting net.
      resnet_dt: trainable residual step in the fitting net.
      neighbor_norm: ``N_c``, the constant that divides ``T_i`` (DeePMD's
        ``sum(sel)``); not a limit on the number of neighbours.
      type_one_side: embedding nets per neighbour species only.
      param_dtype: dtype of the weights.

    References:
      Paper 000 eqs. 3-4 (with the polynomial switch of DeePMD-kit in place of
      the cosine of eq. 4, which is only C1); paper 002 §II B; Zhang et al.,
      "End-to-end symmetry preserving inter-atomic potential energy model for
      finite and extended systems", NeurIPS 2018.
    """

    n_species: int = 1
    cutoff: float = 0.7
    r_onset: float = 0.1
    embedding_features: Sequence[int] = (8, 16, 32)
    axis_features: int = 4
    fitting_features: Sequence[int] = (32, 32, 32)
    resnet_dt: bool = True
    neighbor_norm: float = 60.0
    type_one_side: bool = False
    param_dtype: Any = jnp.float32
    default_name: ClassVar[str] = "deeppot"
    default_config: ClassVar = staticmethod(default_config)

    def _check(self) -> None:
        check_cutoff(self.r_onset, self.cutoff, "DeepPotSE")
        m1 = self.embedding_features[-1] if len(self.embedding_features) else 0
        if not 0 < self.axis_features <= m1:
            raise ValueError(
                f"DeepPotSE: need 0 < axis_features <= embedding_features[-1], "
                f"got axis_features={self.axis_features}, embedding_features="
                f"{tuple(self.embedding_features)}"
            )
        if not self.neighbor_norm > 0:
            raise ValueError(f"DeepPotSE: neighbor_norm must be positive, got {self.neighbor_norm}")

    def generalized_coordinates(self, graph: Graph) -> jax.Array:
        """Rows ``(s, s x/r, s y/r, s z/r)`` of the edges, ``[E, 4]`` (1/nm); 0 past the cutoff."""
        r = graph.edge_lengths
        inside = graph.edge_mask & (r < self.cutoff)
        # Outside edges get a harmless length before dividing, so no gradient is NaN.
        r_safe = jnp.where(inside, r, self.cutoff)
        s = jnp.where(inside, smooth_switch(r_safe, self.r_onset, self.cutoff) / r_safe, 0.0)
        unit = jnp.where(inside[:, None], graph.edge_vectors, 0.0) / r_safe[:, None]
        return jnp.concatenate([s[:, None], s[:, None] * unit], axis=-1)

    def _embedding(self, s: jax.Array, types: jax.Array, n_types: int) -> jax.Array:
        x = s[:, None]
        for k, width in enumerate(self.embedding_features):
            h = jnp.tanh(
                TypedDense(n_types, width, self.param_dtype, name=f"embedding_{k}")(x, types)
            )
            if width == x.shape[-1]:
                x = x + h
            elif width == 2 * x.shape[-1]:
                x = jnp.concatenate([x, x], axis=-1) + h
            else:
                x = h
        return x

    def _fitting(self, d: jax.Array, species: jax.Array) -> jax.Array:
        x = d
        for k, width in enumerate(self.fitting_features):
            h = jnp.tanh(
                TypedDense(self.n_species, width, self.param_dtype, name=f"fitting_{k}")(x, species)
            )
            if k > 0 and width == x.shape[-1]:
                if self.resnet_dt:
                    dt = self.param(
                        f"fitting_dt_{k}",
                        nn.initializers.ones,
                        (self.n_species, width),
                        self.param_dtype,
                    )
                    h = dt[species] * h
                x = x + h
            else:
                x = h
        out = TypedDense(self.n_species, 1, self.param_dtype, name="fitting_out")(x, species)
        return out[:, 0]

    @nn.compact
    def __call__(self, graph: Graph, **kwargs) -> jax.Array:
        """Energy (kJ/mol, scalar) of the graph; other keywords are ignored."""
        del kwargs
        self._check()
        si, sj = graph.edge_species()
        if self.type_one_side:
            types, n_types = sj, self.n_species
        else:
            types, n_types = si * self.n_species + sj, self.n_species**2
        coords = self.generalized_coordinates(graph)  # [E, 4]
        g = self._embedding(coords[:, 0], types, n_types)  # [E, M1]
        t = graph.aggregate(g[:, :, None] * coords[:, None, :]) / self.neighbor_norm  # [N, M1, 4]
        d = jnp.einsum("nap,nbp->nab", t, t[:, : self.axis_features])  # [N, M1, M2]
        self.sow("intermediates", "descriptor", d)
        e = self._fitting(d.reshape(d.shape[0], -1), graph.species)
        self.sow("intermediates", "atomic_energies", e)
        return jnp.sum(e)
