"""Bisection for dynamics tuning: root to tolerance, both monotone directions, bad brackets."""

import math

import pytest

from cgjax import train


def test_finds_the_root_to_the_stated_tolerance():
    calls = []

    def f(x):
        calls.append(x)
        return x**3, {"note": "extra"}

    res = train.bisect(f, 0.0, 2.0, target=2.0, xtol=1e-6)
    root = 2.0 ** (1 / 3)
    assert res.converged
    assert abs(res.x - root) < 1e-6
    assert res.bracket[0] <= root <= res.bracket[1]
    assert res.bracket[1] - res.bracket[0] < 1e-6
    # Every evaluation is recorded, in order, with the bracket after it and fn's extras.
    assert [h["x"] for h in res.history] == calls
    assert all(h["note"] == "extra" and h["lo"] <= h["hi"] for h in res.history)
    assert len(calls) == 2 + math.ceil(math.log2(2.0 / 1e-6))


def test_decreasing_response_and_ftol():
    # D(A) falls as the high-frequency amplitude A grows (paper 004): target D_AA.
    res = train.bisect(lambda a: 5.0 - 3.0 * a, 0.0, 2.0, target=2.4, xtol=1e-9, ftol=1e-3)
    assert res.converged and abs(5.0 - 3.0 * res.x - 2.4) <= 1e-3
    assert abs(res.x - 2.6 / 3.0) < 1e-3


def test_bracket_without_sign_change_is_a_named_error():
    with pytest.raises(train.BracketError, match=r"no sign change in \[0, 1\].*both below") as e:
        train.bisect(lambda x: x, 0.0, 1.0, target=3.0, xtol=1e-3)
    assert [h["x"] for h in e.value.history] == [0.0, 1.0]
    with pytest.raises(ValueError, match="lo < hi"):
        train.bisect(lambda x: x, 1.0, 0.0, xtol=1e-3)
    with pytest.raises(ValueError, match="finite"):
        train.bisect(lambda x: math.nan, 0.0, 1.0, xtol=1e-3)


def test_max_evals_stops_unconverged():
    res = train.bisect(lambda x: x - 0.3, 0.0, 1.0, xtol=1e-12, max_evals=5)
    assert not res.converged and len(res.history) == 5
    assert res.bracket[0] <= 0.3 <= res.bracket[1]
