"""Pieces the message-passing potentials share: activations, MLPs, radial features, convolution.

:class:`~cgjax.potentials.GNN` (paper 004) and :class:`~cgjax.potentials.SchNet`
(paper 001) are the same machine with different names: a species embedding,
distances expanded in Gaussians, a filter network of the expansion that is
multiplied by a smooth envelope, and a sum over neighbours of
``filter_ij * node_net(h_j)``. Each piece is written here once.

References:
  Paper 004 §2.1 (GNN, shifted softplus); paper 001 §III B (CGSchNet, cfconv).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cgjax.potentials._cutoff import check_cutoff, smooth_switch
from cgjax.potentials._graph import Graph

__all__ = [
    "MLP",
    "convolve",
    "gaussian_rbf",
    "message_total",
    "radial_edge_features",
    "shifted_softplus",
]


#: ``log1p(y) / y`` on ``[0, 1]`` as a polynomial in ``y`` (lowest order first): the
#: degree-9 Chebyshev interpolant, ``np.polynomial.Chebyshev.fit(y, np.log1p(y) / y, 9,
#: domain=[0, 1])`` at 2000 Chebyshev nodes, converted to a power series. Its relative error
#: in ``y * p(y)`` is 4.8e-9 in exact arithmetic, 1.4e-7 in float32 (jnp.log1p's own: 2.1e-7).
_LOG1P_OVER_Y = (
    0.9999999953848525,
    -0.4999990399276396,
    0.3333000403522652,
    -0.2495455887119289,
    0.19678117257163577,
    -0.15311863105130397,
    0.10614264692822836,
    -0.057064200825261056,
    0.019907160963218935,
    -0.003256378481787808,
)


def _log1p(y: jax.Array) -> jax.Array:
    """``log(1 + y)`` for ``0 <= y <= 1`` (softplus passes ``e^-|x|``), to float round-off.

    float32: ``y * p(y)`` with :data:`_LOG1P_OVER_Y` (Horner, multiplies and adds only).
    XLA's CPU ``log`` costs several ``exp`` (over ``[8600, 16]``: 140 against 36 us,
    dispatch included); the polynomial took a shifted softplus over
    ``[9472, 16]`` from ~180-220 to ~110 us and the paper-004 GNN's energy and force
    from 2.33 to 2.11 ms wall (one process, interleaved, 10 x 200 calls; forces equal
    to 6e-8 relative). Other dtypes: ``log(1 + y)`` to a rounding by Goldberg's trick
    (XLA's CPU ``log1p`` ran at half the speed of ``log``), since the polynomial's
    4.8e-9 is above float64 round-off.
    """
    if y.dtype == jnp.float32:
        acc = jnp.asarray(_LOG1P_OVER_Y[-1], y.dtype)
        for c in _LOG1P_OVER_Y[-2::-1]:
            acc = acc * y + c
        return y * acc
    u = 1.0 + y
    return jnp.where(u == 1.0, y, jnp.log(u) * (y / (u - 1.0)))


@jax.custom_jvp
def softplus(x: jax.Array) -> jax.Array:
    """``log(1 + e^x)``, as ``max(x, 0) + log(1 + e^-|x|)``; its derivative is ``sigmoid(x)``.

    Equal to the exact value to float round-off (float32: 1.8e-7 relative over
    ``[-40, 40]``, ``jax.nn.softplus`` 2.3e-7; ``tests/potentials/test_nn.py``); the
    value and its derivative share one ``exp``, so value + gradient of the GNN's
    filters ran 1.5x faster on a CPU, and ``log1p`` is a polynomial (:func:`_log1p`).
    """
    return jnp.maximum(x, 0.0) + _log1p(jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    e = jnp.exp(-jnp.abs(x))
    sigmoid = jnp.where(x >= 0, 1.0, e) / (1.0 + e)
    return jnp.maximum(x, 0.0) + _log1p(e), t * sigmoid


def shifted_softplus(x: jax.Array) -> jax.Array:
    """``softplus(x) - log 2``: smooth, and zero at ``x = 0`` (SchNet's activation)."""
    # a Python float is weakly typed: float32 inputs stay float32 (np.log would not)
    return softplus(x) - math.log(2.0)


def gaussian_rbf(r: jax.Array, centers: jax.Array, width: float) -> jax.Array:
    """Gaussian expansion ``exp(-(r - mu_k)^2 / (2 width^2))``.

    Args:
      r: distances (nm), any shape ``[...]``.
      centers: ``[K]`` centres ``mu_k`` (nm).
      width: standard deviation of every Gaussian (nm).

    Returns:
      ``[..., K]``, in ``r``'s dtype.
    """
    d = (r[..., None] - centers) / width
    return jnp.exp(-0.5 * d * d)


class MLP(nn.Module):
    """Dense layers with an activation between them (none after the last by default).

    Parameters are ``{"dense_0": {"kernel", "bias"}, "dense_1": ...}``.

    Attributes:
      features: output width of each layer.
      activation: applied after every layer but the last.
      activate_final: also apply it after the last layer.
      param_dtype: dtype of the weights; the computation follows the inputs'
        and weights' dtypes (no casts).
    """

    features: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = jnp.tanh
    activate_final: bool = False
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``[..., F_in] -> [..., features[-1]]``."""
        for k, width in enumerate(self.features):
            x = nn.Dense(width, param_dtype=self.param_dtype, name=f"dense_{k}")(x)
            if k < len(self.features) - 1 or self.activate_final:
                x = self.activation(x)
        return x


def radial_edge_features(
    graph: Graph, *, n_rbf: int, cutoff: float, width: float | None = None, owner: str = "model"
) -> tuple[jax.Array, jax.Array]:
    """Gaussian-expanded edge lengths and the smooth envelope that cuts them off.

    The envelope is ``smooth_switch(r, 0, cutoff)``: C2, exactly zero at and
    beyond ``cutoff`` and on padding edges, so a filter multiplied by it makes
    energy and force go to zero smoothly at the cutoff.

    Args:
      graph: the system's :class:`~cgjax.potentials.Graph`.
      n_rbf: number of Gaussians, centred on ``[0, cutoff]``.
      cutoff: interaction range (nm).
      width: Gaussian width (nm); ``None``: the centre spacing.
      owner: name used in error messages.

    Returns:
      ``(rbf [E, n_rbf], envelope [E])``.
    """
    check_cutoff(0.0, cutoff, owner)
    if n_rbf < 2:
        raise ValueError(f"{owner}: n_rbf must be at least 2, got {n_rbf}")
    r = graph.edge_lengths
    width = cutoff / (n_rbf - 1) if width is None else width
    # centres in r's dtype: a float64 constant would silently promote float32 runs
    centers = jnp.linspace(0.0, cutoff, n_rbf, dtype=r.dtype)
    rbf = gaussian_rbf(r, centers, width)
    envelope = jnp.where(graph.edge_mask, smooth_switch(r, 0.0, cutoff), 0.0)
    return rbf, envelope


def convolve(
    graph: Graph, node_values: jax.Array, edge_filters: jax.Array, *, uniform: bool = False
) -> jax.Array:
    """Continuous-filter convolution ``z_i = sum_j filter_ij * x_j`` over neighbours ``j``.

    The filters must be symmetric (``filter_ij = filter_ji``, e.g. functions
    of the distance). On an undirected graph (each pair once) every pair's
    filter then serves both directions, ``z_i += f_ij x_j`` and
    ``z_j += f_ij x_i``: the filter network runs on half the edges.

    Args:
      graph: the system's graph (any neighbor-list format; padding excluded).
      node_values: ``[N, F]`` values ``x_j`` of the sending nodes.
      edge_filters: ``[E, F]`` filters (already multiplied by the envelope).
      uniform: the caller knows every row of ``node_values`` is the same
        (a first layer on a one-species graph, ``graph.uniform_species``):
        then ``z_i = x_0 * sum_j filter_ij``, with no per-edge gather of ``x``
        (equal to the general sum to float round-off; the paper-004 GNN's
        force on 512 water beads took 7-9 % less time).

    Returns:
      ``[N, F]``.
    """
    if uniform:
        if graph.directed:
            return graph.aggregate(edge_filters) * node_values[:1]
        return graph.aggregate_pairs(edge_filters, edge_filters) * node_values[:1]
    if graph.directed:
        return graph.aggregate(node_values[graph.senders] * edge_filters)
    return graph.aggregate_pairs(
        node_values[graph.senders] * edge_filters, node_values[graph.receivers] * edge_filters
    )


def message_total(
    graph: Graph, node_values: jax.Array, edge_filters: jax.Array, *, uniform: bool = False
) -> jax.Array:
    """``sum_i z_i`` of :func:`convolve`'s ``z``, as a sum over edges (no aggregation).

    For a readout that only sums the convolution over nodes: the sum of every
    message is ``sum_e filter_e * (x_sender + x_receiver)`` on an undirected
    graph (``sum_e filter_e * x_sender`` on a directed one), a reduction
    instead of a scatter onto nodes. Same arguments as :func:`convolve`;
    returns ``[F]``, equal to ``convolve(...).sum(0)`` to float round-off.
    """
    mask = graph.edge_mask[:, None]
    filters = jnp.where(mask, edge_filters, 0.0)
    if uniform:
        return jnp.sum(filters, 0) * node_values[0] * (1 if graph.directed else 2)
    if graph.directed:
        return jnp.sum(node_values[graph.senders] * filters, 0)
    return jnp.sum((node_values[graph.senders] + node_values[graph.receivers]) * filters, 0)
