"""Several processes (hosts): ``jax.distributed`` start-up, member shards, gathering results."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.extend.backend
import numpy as np

__all__ = ["gather_rows", "init_distributed", "process_shard"]

_ENV = {
    "coordinator_address": "CGJAX_COORDINATOR_ADDRESS",
    "num_processes": "CGJAX_NUM_PROCESSES",
    "process_id": "CGJAX_PROCESS_ID",
}


def init_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    cpu_collectives: str | None = "gloo",
    initialization_timeout: int = 120,
) -> tuple[int, int]:
    """Starts ``jax.distributed`` for a multi-process sweep; a no-op for one process.

    Arguments left ``None`` are read from ``CGJAX_COORDINATOR_ADDRESS``
    (``host:port`` of process 0), ``CGJAX_NUM_PROCESSES`` and
    ``CGJAX_PROCESS_ID``. With one process (or none configured) nothing is
    initialised. Call it before any other JAX call in the process.

    Args:
      coordinator_address: ``"host:port"`` where process 0 listens.
      num_processes: number of processes.
      process_id: this process's index, ``0 .. num_processes - 1``.
      cpu_collectives: the CPU collectives implementation (``"gloo"``, so
        cross-process collectives such as :func:`gather_rows` work on CPU), or
        ``None`` to leave JAX's default.
      initialization_timeout: seconds to wait for every process to connect.

    Returns:
      ``(process_id, num_processes)``.

    Raises:
      ValueError: a missing or out-of-range ``process_id`` or address with
        several processes.
    """
    env = {k: os.environ.get(v) for k, v in _ENV.items()}
    coordinator_address = coordinator_address or env["coordinator_address"]
    if num_processes is None and env["num_processes"]:
        num_processes = int(env["num_processes"])
    if process_id is None and env["process_id"]:
        process_id = int(env["process_id"])
    if num_processes is None or int(num_processes) <= 1:
        return 0, 1
    num_processes = int(num_processes)
    if process_id is None or not 0 <= int(process_id) < num_processes:
        raise ValueError(
            f"process_id must be in 0..{num_processes - 1} (argument or "
            f"{_ENV['process_id']}), got {process_id}"
        )
    if not coordinator_address:
        raise ValueError(
            f"{num_processes} processes need a coordinator_address 'host:port' (argument or "
            f"{_ENV['coordinator_address']})"
        )
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    kwargs = dict(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=int(process_id),
        initialization_timeout=int(initialization_timeout),
    )
    try:
        jax.distributed.initialize(**kwargs)
    except RuntimeError as e:
        if "must be called before" not in str(e):
            raise
        # Importing jax-md (hence cgjax) builds arrays at import time
        # (jax_md.rigid_body), which starts the single-process CPU backend. No
        # cgjax array exists yet, so the backend is dropped and started again
        # as part of the distributed system.
        jax.extend.backend.clear_backends()
        jax.distributed.initialize(**kwargs)
    return jax.process_index(), jax.process_count()


def process_shard(
    items: Sequence[Any], process_id: int | None = None, num_processes: int | None = None
) -> list[Any]:
    """This process's share of ``items``: ``items[process_id::num_processes]``.

    Defaults are ``jax.process_index()`` and ``jax.process_count()``.
    """
    pid = jax.process_index() if process_id is None else int(process_id)
    n = jax.process_count() if num_processes is None else int(num_processes)
    return list(items)[pid::n]


def gather_rows(rows: Sequence[dict]) -> list[dict]:
    """Every process's ``rows`` (JSON-serialisable dicts), in process order.

    With one process it returns ``rows``; with several it is a collective
    (every process must call it) over ``multihost_utils.process_allgather``
    of the rows encoded as JSON bytes.
    """
    rows = list(rows)
    if jax.process_count() == 1:
        return rows
    from jax.experimental import multihost_utils

    data = np.frombuffer(json.dumps(rows).encode(), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.asarray([data.size], np.int32)))
    buf = np.zeros(int(sizes.max()), np.uint8)
    buf[: data.size] = data
    everything = np.asarray(multihost_utils.process_allgather(buf))
    out = []
    for size, chunk in zip(sizes.reshape(-1), everything, strict=True):
        out.extend(json.loads(bytes(chunk[: int(size)]).decode()))
    return out
