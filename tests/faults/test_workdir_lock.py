"""One run per workdir: a second ``cgjax.run`` stops naming the first; a killed run's
lock is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from test_run_checks import CONFIG, EXPERIMENT

from cgjax import run
from cgjax._workdir_lock import STALE_S, WorkdirLock, WorkdirLocked

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path):
    wd = str(tmp_path / "w")
    first = WorkdirLock(wd)
    assert first.acquire() is None
    record = json.loads(open(first.path).read())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    with pytest.raises(WorkdirLocked, match=rf"in use by process {os.getpid()} on host ") as e:
        WorkdirLock(wd).acquire()
    assert e.value.holder["pid"] == os.getpid()
    first.release()
    assert not os.path.exists(first.path)
    # a holder on this host whose process is gone (kill -9): taken over
    lock = WorkdirLock(wd)
    with open(lock.path, "w") as f:
        json.dump({"pid": _dead_pid(), "host": socket.gethostname(), "started": time.time()}, f)
    assert "is gone" in lock.acquire()
    lock.release()
    # a holder on another host: alive while its heartbeat is fresh, stale after STALE_S
    with open(lock.path, "w") as f:
        json.dump({"pid": 1, "host": "elsewhere", "started": time.time()}, f)
    with pytest.raises(WorkdirLocked, match="process 1 on host elsewhere"):
        lock.acquire()
    old = time.time() - STALE_S - 10
    os.utime(lock.path, (old, old))
    assert "no heartbeat" in lock.acquire()
    assert json.loads(open(lock.path).read())["pid"] == os.getpid()
    lock.release()


def test_second_run_refuses_and_a_rerun_takes_over_after_kill_9(tmp_path, capsys):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "configs").mkdir()
    exp = tmp_path / "experiments" / "tiny.py"
    exp.write_text(EXPERIMENT)
    (tmp_path / "configs" / "tiny.py").write_text(CONFIG)
    wd = tmp_path / "w"
    env = {**os.environ, "CGJAX_TEST_SLEEP": "120", "PYTHONPATH": ROOT}
    first = subprocess.Popen(
        [sys.executable, "-m", "cgjax.run", str(exp), f"--workdir={wd}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while not (wd / "started").exists():
            assert first.poll() is None and time.time() < deadline, "the first run did not start"
            time.sleep(0.2)
        host = socket.gethostname()
        with pytest.raises(SystemExit, match=rf"in use by process {first.pid} on host {host}"):
            run.main([str(exp), f"--workdir={wd}"])
        assert not (wd / "results.json").exists()
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    capsys.readouterr()
    assert run.main([str(exp), f"--workdir={wd}"]) == {"n_steps": 3}
    out = capsys.readouterr().out
    assert f"took over a stale lock: process {first.pid} on {host} is gone" in out
    assert json.loads((wd / "results.json").read_text()) == {"n_steps": 3}
    assert not (wd / ".lock").exists()
