"""One run per work directory: a lock file created with ``O_EXCL``, taken over when stale.

``cgjax.run`` holds ``WORKDIR/.lock`` (``.lock.pK`` for process ``K`` of a
multi-process sweep, whose processes share one workdir) while it runs. The
file records the holder's pid, host and start time, and a thread touches it
every :data:`HEARTBEAT_S` seconds. A second run finds it and stops with
:class:`WorkdirLocked` naming the holder. A lock is stale, and taken over, when
its holder is on this host and its pid is gone (a ``kill -9``), or when its
heartbeat is older than :data:`STALE_S` (a holder on another host sharing the
filesystem, or a frozen one).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

__all__ = ["HEARTBEAT_S", "STALE_S", "WorkdirLock", "WorkdirLocked"]

#: Seconds between touches of a held lock file.
HEARTBEAT_S = 30.0
#: A lock file untouched for this long is stale whatever its host (s).
STALE_S = 300.0


class WorkdirLocked(RuntimeError):
    """Another live process holds the workdir (``holder``: its pid, host, start time)."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class WorkdirLock:
    """The lock of one workdir; ``acquire()`` it, ``release()`` it (or use ``with``).

    Args:
      workdir: the directory (created by ``acquire``).
      name: the lock file's name inside it.
    """

    def __init__(self, workdir: str, name: str = ".lock"):
        self.path = os.path.join(os.path.abspath(workdir), name)
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held = False

    def _read(self) -> dict | None:
        """The holder recorded in the lock file; ``{}`` when unreadable (being
        written, or left half-written); ``None`` when the file is gone."""
        try:
            with open(self.path) as f:
                text = f.read()
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(text)
        except ValueError:
            holder = {}
        return {**holder, "heartbeat_age_s": age} if isinstance(holder, dict) else {}

    def _stale(self, holder: dict) -> str | None:
        """Why the holder's lock is stale, or None when it may be alive."""
        age = holder.get("heartbeat_age_s", 0.0)
        if age > STALE_S:
            who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
            return f"no heartbeat for {age:.0f} s from {who}"
        pid = holder.get("pid")
        if holder.get("host") == self.host and isinstance(pid, int):
            if pid == os.getpid():
                return None  # this process: a lock not released in the same process
            if not _alive(pid):
                return f"process {pid} on {self.host} is gone"
        if not holder and age > 2 * HEARTBEAT_S:  # unreadable and old
            return f"unreadable lock file, {age:.0f} s old"
        return None

    def acquire(self) -> str | None:
        """Takes the lock; returns why a stale lock was taken over (None if none was).

        Raises:
          WorkdirLocked: another live process holds it; the message gives its
            pid, host, start time and the lock file.
        """
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        record = {"pid": os.getpid(), "host": self.host, "started": time.time()}
        took_over = None
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is None:  # released meanwhile
                    continue
                why = self._stale(holder)
                if why is None:
                    started = holder.get("started")
                    since = (
                        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
                        if isinstance(started, int | float)
                        else "?"
                    )
                    raise WorkdirLocked(
                        f"workdir {os.path.dirname(self.path)} is in use by process "
                        f"{holder.get('pid', '?')} on host {holder.get('host', '?')} (since "
                        f"{since}; lock file {self.path}); wait for it, use another --workdir, "
                        "or delete the lock file if that process is gone",
                        holder,
                    ) from None
                took_over = why
                self._remove_stale(holder)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            self._held = True
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
            return took_over
        raise WorkdirLocked(f"could not take the lock {self.path} (contended)", {})

    def _remove_stale(self, holder: dict) -> None:
        """Removes the stale lock file; if another run replaced it meanwhile with
        its own (fresh) lock, puts that back."""
        aside = f"{self.path}.stale.{os.getpid()}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            with open(aside) as f:
                moved = json.load(f)
        except (OSError, ValueError):
            moved = {}
        same = lambda k: moved.get(k) == holder.get(k)  # noqa: E731
        if moved and not (same("pid") and same("host") and same("started")):
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
        with contextlib.suppress(FileNotFoundError):
            os.remove(aside)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        """Removes the lock file (if this process holds it)."""
        if not self._held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self._read()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == self.host:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
        self._held = False

    def __enter__(self) -> WorkdirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
