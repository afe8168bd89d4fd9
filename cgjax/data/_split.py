"""Train/validation/test splits by contiguous blocks of frames.

Neighbouring MD frames are strongly correlated; a split that scatters single
frames puts near-copies of test frames in the training set. Splitting whole
blocks of consecutive frames keeps the sets apart except at block boundaries,
and ``gap`` drops frames there as well.
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_blocks"]

_NAMES = ("train", "validation", "test")


def _block_counts(fractions: np.ndarray, n_blocks: int) -> np.ndarray:
    """Blocks per part by largest remainder: sums to ``n_blocks``, ties to the earlier part."""
    exact = fractions * n_blocks
    counts = np.floor(exact + 1e-9).astype(int)
    remainder = exact - counts
    order = np.argsort(-remainder, kind="stable")
    counts[order[: n_blocks - counts.sum()]] += 1
    return counts


def split_blocks(
    n_frames: int,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    *,
    n_blocks: int = 10,
    seed: int = 0,
    gap: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits frame indices ``0 .. n_frames - 1`` into train, validation and test.

    The frames are cut into ``n_blocks`` contiguous blocks of (nearly) equal
    length; the blocks are shuffled with ``seed`` and dealt to the three parts
    in proportion to ``fractions`` (largest-remainder rounding over blocks).
    The same arguments always give the same split.

    Args:
      n_frames: number of frames ``T``.
      fractions: ``(train, validation, test)``, non-negative, summing to 1. A
        zero fraction gives an empty part.
      n_blocks: number of contiguous blocks, ``1 <= n_blocks <= n_frames``.
      seed: seed of the block shuffle.
      gap: frames dropped at the start of every block whose preceding block
        went to another part, so that parts are at least ``gap + 1`` frames
        apart. With ``gap = 0`` every frame is used exactly once.

    Returns:
      ``(train_idx, val_idx, test_idx)``: sorted int arrays, disjoint.

    Raises:
      ValueError: on invalid arguments, or when a part with a positive
        fraction would get no frames (use more blocks or a larger fraction).
    """
    n_frames, n_blocks, gap = int(n_frames), int(n_blocks), int(gap)
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(f < 0) or not np.isfinite(f).all():
        raise ValueError(
            f"fractions must be three non-negative numbers (train, validation, test), "
            f"got {fractions!r}"
        )
    if abs(f.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions!r} (sum {f.sum():.6g})")
    if not 1 <= n_blocks <= n_frames:
        raise ValueError(f"n_blocks must be between 1 and n_frames = {n_frames}, got {n_blocks}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0 frames, got {gap}")
    counts = _block_counts(f, n_blocks)
    for name, frac, count in zip(_NAMES, f, counts, strict=True):
        if frac > 0 and count == 0:
            raise ValueError(
                f"the {name} fraction {frac:g} gives 0 of {n_blocks} blocks, so the {name} "
                f"split would have zero frames; use more blocks "
                f"(n_blocks >= {int(np.ceil(1 / frac))}) or a larger fraction"
            )
    blocks = np.array_split(np.arange(n_frames), n_blocks)
    order = np.random.default_rng(seed).permutation(n_blocks)
    part_of_block = np.empty(n_blocks, dtype=int)
    part_of_block[order] = np.repeat(np.arange(3), counts)
    parts = [[] for _ in _NAMES]
    for b, idx in enumerate(blocks):
        if gap and b > 0 and part_of_block[b] != part_of_block[b - 1]:
            if gap >= len(idx):
                raise ValueError(
                    f"gap = {gap} frames is not shorter than a block ({len(idx)} frames); "
                    "use fewer blocks or a smaller gap"
                )
            idx = idx[gap:]
        parts[part_of_block[b]].append(idx)
    return tuple(np.concatenate(p) if p else np.zeros(0, dtype=np.int64) for p in parts)
