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


def test_illinois_brackets_the_root_and_needs_fewer_evaluations():
    # D(A) = D0 / (1 + A / A_half): monotone, not exponential, so ln D is curved
    D = lambda a: 5e-3 / (1 + a / 0.05)  # noqa: E731
    target = 5e-3 / 3  # root at A = 0.1
    kw = dict(target=target, xtol=1e-12, ftol=1e-3 * target, max_evals=40)
    ill = train.bisect(D, 0.0, 0.193, method="illinois", transform=math.log, **kw)
    bis = train.bisect(D, 0.0, 0.193, **kw)
    assert ill.converged and bis.converged
    assert abs(D(ill.x) / target - 1) <= 1e-3 and abs(ill.x - 0.1) < 2e-4
    # every bracket after an evaluation still holds the root, and it only shrinks
    assert all(h["lo"] <= 0.1 <= h["hi"] for h in ill.history)
    widths = [h["hi"] - h["lo"] for h in ill.history]
    assert all(b <= a for a, b in zip(widths, widths[1:], strict=False))
    assert len(ill.history) <= 6 < len(bis.history)
    # an exactly exponential response is linear in ln: the first interpolation is the root
    exp = train.bisect(lambda a: 2.0 * math.exp(-30.0 * a), 0.0, 0.2, target=0.5, xtol=1e-9,
                       ftol=1e-9, method="illinois", transform=math.log)  # fmt: skip
    assert len(exp.history) == 3 and exp.x == pytest.approx(math.log(4.0) / 30.0, rel=1e-9)
    # without ftol it stops at max_evals and returns the interpolated root of the final bracket
    res = train.bisect(D, 0.0, 0.193, target=target, xtol=1e-12, max_evals=4,
                       method="illinois", transform=math.log)  # fmt: skip
    lo, hi = res.bracket
    g = lambda a: math.log(D(a) / target)  # noqa: E731
    assert not res.converged
    assert res.x == pytest.approx(lo + (hi - lo) * g(lo) / (g(lo) - g(hi)), rel=1e-12)


def test_illinois_bad_input_is_named():
    with pytest.raises(ValueError, match="method must be 'bisection' or 'illinois'"):
        train.bisect(lambda x: x, 0.0, 1.0, xtol=1e-3, method="secant")
    # a value outside the transform's domain (ln of a negative D)
    with pytest.raises(ValueError, match="transform failed on the value -0.5"):
        train.bisect(lambda x: 1.0 - 1.5 * x, 0.0, 1.0, target=0.2, xtol=1e-3,
                     method="illinois", transform=math.log)  # fmt: skip
