"""Test-suite setup: float64 is available (tests of gradients and conservation use it).

Compiled programs are freed after each test module, and after each test of
``tests/experiments``. The whole suite runs in one process and compiles several
hundred XLA programs (the experiment smokes alone compile GNN simulations,
trainers and adjoints). Kept to the end, their code mappings approached the
kernel's limit on memory maps per process (``vm.max_map_count``, 65530; the
experiment smokes alone took the process from 2k to 48k maps), and XLA's
compiler segfaulted about 70 % of the way through on clean CI clones, at
different tests each time. Freeing them keeps the count near 2k.
"""

import gc

import jax
import pytest

jax.config.update("jax_enable_x64", True)


def _free_compiled_programs_now():
    jax.clear_caches()
    from cgjax.simulate import _differentiable, _runner

    _runner._CHUNK_CACHE.clear()
    _differentiable._SEGMENT_CACHE.clear()
    gc.collect()


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    yield
    _free_compiled_programs_now()


def pytest_runtest_teardown(item, nextitem):
    # Each experiment smoke compiles a whole pipeline; free it before the next.
    if "experiments" in item.path.parts:
        _free_compiled_programs_now()


def pytest_terminal_summary(terminalreporter):
    """Prints the kill points the fault-injection tests tried (``tests/faults``), which
    they record as ``fault_injection`` properties (print() is lost under xdist)."""
    lines = [
        value
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for name, value in getattr(report, "user_properties", [])
        if name == "fault_injection"
    ]
    if lines:
        terminalreporter.write_sep("-", f"fault injection: {len(lines)} experiments")
        for line in lines:
            terminalreporter.write_line(line)
