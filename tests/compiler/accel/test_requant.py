"""The integer requantization: exact round-half-up of v * M0 / 2^n, within the accumulator's bits,
and within 1 LSB of onnxruntime's float requantization."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from tensorweave.compiler.accel import AccelError, Requant, plan_requant, requantize, requantize_float
from tensorweave.configs import load_config

VTA = load_config("vta-default")


def test_fixed_point_is_exact_rounding_of_the_integer_multiplier():
    """y = floor(v * M0 / 2^n + 1/2) + zp, clamped: checked with Python fractions on edge values."""
    rq = Requant(0.031, (0.0042, 0.0077), 0.093, output_zero_point=4)
    bound = 1 << 22
    plan = plan_requant(VTA, rq, 2, bound)
    assert plan.mode == "fixed" and plan.bits >= 16
    v = np.array([[-bound + 1, -12345, -1, 0, 1, 777, 99999, bound - 1]] * 2).T  # (8, 2): channel axis 1
    y = requantize(v, plan)
    for (i, k), value in np.ndenumerate(v):
        exact = Fraction(int(value) * int(plan.multiplier[k]), 1 << int(plan.shift[k])) + Fraction(1, 2)
        expected = min(max(int(exact.__floor__()) + 4, -128), 127)
        assert y[i, k] == expected


def test_multiplier_precision_and_agreement_with_float():
    rng = np.random.default_rng(0)
    rq = Requant(0.05, tuple(rng.uniform(0.001, 0.01, 16)), 0.15)
    plan = plan_requant(VTA, rq, 16, 1 << 23)
    rel = np.abs(plan.multiplier / 2.0 ** plan.shift - rq.multipliers(16)) / rq.multipliers(16)
    assert rel.max() < 2.0 ** -plan.bits
    v = rng.integers(-(1 << 16), 1 << 16, (20000, 16))
    diff = np.abs(requantize(v, plan) - requantize_float(v, rq))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def test_relu_clamps_at_zero_point():
    plan = plan_requant(VTA, Requant(0.1, (0.1,), 0.1, output_zero_point=-5, relu=True), 1, 1 << 10)
    assert plan.low == -5
    assert requantize(np.array([[-500], [5000]]), plan).ravel().tolist() == [-5, 127]


def test_power_of_two_plan_rounds_ties_to_even_like_onnxruntime():
    """Power-of-two multipliers with the ALU's RSHR: round to nearest, ties to even, exactly onnxruntime's
    float32 requantization on every value (v * 2^-n is exact in float32)."""
    rq = Requant(0.5, (0.25, 0.5), 4.0, output_zero_point=3)  # M = 2^-5, 2^-4
    plan = plan_requant(VTA, rq, 2, 1 << 12)
    assert plan.mode == "pow2" and plan.ties_even and plan.shift.tolist() == [5, 4]
    v = np.arange(-3000, 3000).reshape(-1, 2)
    assert np.array_equal(requantize(v, plan), requantize_float(v, rq))
    assert "ties to even" in plan.describe()


def test_power_of_two_plan_without_rshr_rounds_half_up():
    """Configs without RSHR shift with round half up: ties (fraction exactly .5) go up, where
    onnxruntime rounds to even; every other value agrees."""
    config = dataclasses.replace(VTA, name="no-rshr", alu_ops=("MIN", "MAX", "ADD", "SHR", "MUL"))
    rq = Requant(0.5, (0.25,), 4.0)  # M = 2^-5
    plan = plan_requant(config, rq, 1, 1 << 12)
    assert plan.mode == "pow2" and not plan.ties_even and plan.shift.tolist() == [5]
    v = np.arange(-200, 200).reshape(-1, 1)
    ours, theirs = requantize(v, plan), requantize_float(v, rq)
    ties = (v % 32) == 16
    assert np.array_equal(ours[~ties], theirs[~ties])
    assert np.abs(ours - theirs).max() == 1 and np.all(ours[ties] >= theirs[ties])


def test_overflowing_accumulator_is_refused():
    with pytest.raises(AccelError, match="acc_width of 16 bits"):
        plan_requant(load_config("w4a8"), Requant(0.5, (0.25,), 4.0), 1, 1 << 17)


def test_tiny_output_scale_is_refused():
    with pytest.raises(AccelError, match="too large for the fixed-point"):
        plan_requant(VTA, Requant(1.0, (1.0,), 1e-7), 1, 1 << 20)
