"""Integer requantization on the accelerator's ALU, and its exact NumPy definition.

Per output channel k the real multiplier M_k = input_scale * weight_scale_k / output_scale (float32,
as onnxruntime computes it) becomes an integer M0_k with `bits` significant bits and a shift n_k:
M_k ~= M0_k / 2^n_k. With v = acc + bias (|v| < 2^a, a bound taken from the weights), the kernel computes

    y = clamp(floor((v * M0_k + 2^(n_k - 1)) / 2^n_k) + zero_point, low, 127)        (mode "fixed")

i.e. v * M0 / 2^n rounded half up, exactly, although v * M0 does not fit the accumulator: v is
split as v = hi * 2^h + lo (hi = v >> h, 0 <= lo < 2^h) and, since floor division by 2^h and
then by 2^(n-h) equals floor division by 2^n,

    y' = (hi * M0 + ((lo * M0) >> h) + 2^(n-1-h) + zp * 2^(n-h)) >> (n - h)

where every intermediate stays below 2^(acc_width - 1) (`plan_requant` chooses h and bits so, and
checks). The ALU sequence (one instruction each over an output tile; A = accumulators, T = temp):
T = 0; T += A; A >>= h; A *= -2^h; T += A (T = lo); A >>= h (A = -hi); A *= -M0; T *= M0; T >>= h;
A += T; A += RND; A >>= (n - h); A = max(A, low); A = min(A, 127). low is -128, or the zero point
with ReLU. zero_point is the accelerator's int8 one (`Requant.device_output_zero_point`: a uint8 output
is computed as int8 with its zero point - 128 and shifted back by the kernel). Bias is added first (A += bias row).

Mode "pow2" (every M_k an exact power of two 2^-n_k, as `tensorweave quantize --scales pow2` makes
them): with the ALU's RSHR (round to nearest, ties to even, as QuantizeLinear rounds) one ADD of the
row bias, A = RSHR(A, n), A += zp (after the rounding: an odd zp would flip the parity of ties), then
the clamp: exactly onnxruntime's result, ties included (v * 2^-n is exact in float32 too).
Configs without RSHR: ADD bias + 2^(n-1) + zp * 2^n, then A >>= n (round half up; ties differ by
1 LSB as in (1) below).

How it can differ from onnxruntime (float32: round(v * M_k) half to even, + zp, clamp), by at most
1 LSB and only on these elements: (1) exact ties v * M = j + 1/2 with j even: we give j + 1,
onnxruntime the even j (ties with j odd agree); (2) near ties: where v * M lies
within |v| * |M - M0/2^n| (< |v * M| * 2^-bits) of j + 1/2, the rounded integer multiplier can move
it across; (3) float32's own rounding of v * M in onnxruntime (relative 2^-24). `compare_float`
counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...configs import AccelConfig
from .spec import AccelError, Requant

MAX_BITS = 24      # float32 multipliers have 24 significant bits; more would not match better
MAX_SPLIT = 15     # h: the ALU's 16-bit signed immediate holds -2^h


@dataclass(frozen=True)
class RequantPlan:
    mode: str                 # "fixed" or "pow2"
    multiplier: np.ndarray    # M0 per channel (int64); 1 in pow2 mode
    shift: np.ndarray         # n per channel
    split: int                # h (fixed mode)
    bits: int                 # significant bits of M0
    zero_point: int
    low: int
    high: int
    acc_bound: int            # |acc + bias| < acc_bound (a strict bound, not rounded)
    ties_even: bool = False   # pow2 with RSHR: round half to even; otherwise half up

    def rounding_row(self, bias: np.ndarray) -> np.ndarray:
        """The per-channel constant added before the final shift (pow2: bias folded in)."""
        if self.mode == "pow2":
            if self.ties_even:
                return bias + np.zeros_like(self.shift)
            return bias + _half(self.shift) + self.zero_point * (1 << self.shift)
        return (1 << (self.shift - 1 - self.split)) + self.zero_point * (1 << (self.shift - self.split))

    def describe(self) -> str:
        if self.mode == "pow2":
            shifts = sorted(set(self.shift.tolist()))
            if self.ties_even:
                return (f"power-of-two requantization: RSHR(acc + bias, n) + zp (to nearest, ties to even) "
                        f"with n in {shifts}, clamp to [{self.low}, {self.high}]")
            return (f"power-of-two requantization: (acc + bias + 2^(n-1) + zp*2^n) >> n with n in {shifts}, "
                    f"clamp to [{self.low}, {self.high}]")
        return (f"fixed-point requantization: M0 with {self.bits} bits, acc split at h = {self.split} "
                f"(|acc + bias| < 2^{(self.acc_bound - 1).bit_length()}), shifts n in "
                f"{int(self.shift.min())}..{int(self.shift.max())}, round half up, clamp to [{self.low}, {self.high}]")


def _half(shift: np.ndarray) -> np.ndarray:
    """2^(n-1) for n > 0, else 0: the round-half-up constant of a right shift by n."""
    return np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 0)


def acc_bound(weight: np.ndarray, bias: np.ndarray | None, inp_width: int) -> int:
    """A strict upper bound of |sum(x * w) + bias| over every output channel and every int input."""
    k = weight.shape[0]
    per_channel = np.abs(weight.reshape(k, -1).astype(np.int64)).sum(axis=1) * (1 << (inp_width - 1))
    if bias is not None:
        per_channel = per_channel + np.abs(np.asarray(bias, dtype=np.int64))
    return int(per_channel.max()) + 1


def plan_requant(config: AccelConfig, requant: Requant, channels: int, bound: int) -> RequantPlan:
    """Choose the integer requantization for `channels` outputs whose |acc + bias| < bound."""
    width = config.acc_width
    limit = 1 << (width - 1)
    if bound > limit:
        raise AccelError(f"accumulators may reach {bound - 1} in magnitude, beyond the config '{config.name}' "
                         f"acc_width of {width} bits; use fewer input channels per output or a wider accumulator")
    mult = requant.multipliers(channels).astype(np.float64)
    zp = requant.device_output_zero_point  # a uint8 output is computed in int8, shifted by 128
    lo_out, hi_out = -(1 << (config.out_width - 1)), (1 << (config.out_width - 1)) - 1
    if not lo_out <= zp <= hi_out:
        raise AccelError(f"Requant.output_zero_point = {requant.output_zero_point} ({requant.output_dtype}) is "
                         f"outside int{config.out_width} ({lo_out}..{hi_out}) on the accelerator")
    low = zp if requant.relu else lo_out
    mantissa, exponent = np.frexp(mult)
    pow2 = bool(np.all(mantissa == 0.5)) and bool(np.all(exponent <= 1))
    a = (int(bound) - 1).bit_length()  # |acc + bias| < 2^a
    if pow2:
        shift = (1 - exponent).astype(np.int64)
        plan = RequantPlan("pow2", np.ones(channels, dtype=np.int64), shift, 0, 1, zp, low, hi_out, bound,
                           ties_even=config.alu_has("RSHR"))
        _check_pow2(plan, limit, config)
        return plan
    if not config.alu_has("MUL"):
        bad = int(np.argmax(mantissa != 0.5))
        raise AccelError(f"config '{config.name}' has no ALU MUL, so requantization must be a power of two; "
                         f"channel {bad}'s multiplier {mult[bad]:.6g} is not (quantize with power-of-two scales)")
    split = min(MAX_SPLIT, (a + 1) // 2)
    bits = min(MAX_BITS, width - 2 - max(split, a - split))
    if bits < 8:
        raise AccelError(f"accumulators up to 2^{a} leave only {bits} multiplier bits within acc_width {width}")
    # M ~= M0 / 2^n with M0 in [2^(bits-1), 2^bits).
    shift = (bits - exponent).astype(np.int64)
    m0 = np.round(mantissa * (1 << bits)).astype(np.int64)
    carry = m0 == (1 << bits)
    m0[carry] >>= 1
    shift[carry] -= 1
    if np.any(shift < split + 1):
        k = int(np.argmin(shift))
        raise AccelError(f"requantization multiplier {mult[k]:.6g} (channel {k}) is too large for the fixed-point "
                         f"path (needs shift >= {split + 1}); the output scale is too small for the input scale")
    plan = RequantPlan("fixed", m0, shift, split, bits, zp, low, hi_out, bound)
    _check_fixed(plan, limit)
    return plan


def _check_pow2(plan: RequantPlan, limit: int, config: AccelConfig) -> None:
    rnd = plan.rounding_row(np.zeros_like(plan.shift))  # bias is inside acc_bound already
    worst = plan.acc_bound - 1 + int(np.abs(rnd).max())
    if worst >= limit or int(plan.shift.max()) >= config.acc_width:
        raise AccelError(f"power-of-two requantization needs {worst.bit_length()} bits, more than acc_width "
                         f"{config.acc_width}")


def _check_fixed(plan: RequantPlan, limit: int) -> None:
    h, m0 = plan.split, int(plan.multiplier.max())
    hi = plan.acc_bound >> h
    steps = {"hi * M0": hi * m0, "lo * M0": ((1 << h) - 1) * m0, "hi * 2^h": hi << h}
    rnd = int(np.abs(plan.rounding_row(np.zeros_like(plan.shift))).max())
    steps["sum"] = hi * m0 + (((1 << h) - 1) * m0 >> h) + rnd
    for what, value in steps.items():
        if value >= limit:
            raise AccelError(f"fixed-point requantization: {what} reaches {value}, beyond the accumulator's "
                             f"{limit.bit_length()} bits")


def requantize(acc: np.ndarray, plan: RequantPlan, channel_axis: int = 1) -> np.ndarray:
    """The exact integer requantization of `acc` (= conv/matmul result + bias), as the ALU computes it."""
    v = np.asarray(acc, dtype=np.int64)
    shape = [1] * v.ndim
    shape[channel_axis] = -1
    m0, n = plan.multiplier.reshape(shape), plan.shift.reshape(shape)
    if plan.mode == "pow2" and plan.ties_even:
        y = _round_half_even(v, n) + plan.zero_point
    elif plan.mode == "pow2":
        y = (v + _half(n) + plan.zero_point * (1 << n)) >> n
    else:
        h = plan.split
        hi, lo = v >> h, v & ((1 << h) - 1)
        y = (hi * m0 + ((lo * m0) >> h) + plan.rounding_row(np.zeros(0)).reshape(shape)) >> (n - h)
    return np.clip(y, plan.low, plan.high)


def _round_half_even(v: np.ndarray, n: np.ndarray) -> np.ndarray:
    """v / 2^n to nearest, ties to even (n >= 0; n = 0 is v)."""
    q = v >> n
    r = v - (q << n)
    half = np.where(n > 0, np.left_shift(1, np.maximum(n - 1, 0)), 1)
    return q + ((n > 0) & ((r > half) | ((r == half) & (q % 2 == 1))))


def requantize_float(acc: np.ndarray, requant: Requant, out_width: int = 8, channel_axis: int = 1) -> np.ndarray:
    """onnxruntime's float32 requantization: round-half-even(float(acc) * M) + zp, clamped to the output type
    (int`out_width`, or uint8 for `requant.output_dtype` "uint8"; ReLU at zp). `acc` is the true accumulator
    sum(w * (x - zp_x)) + bias."""
    v = np.asarray(acc)
    mult = requant.multipliers(v.shape[channel_axis])
    shape = [1] * v.ndim
    shape[channel_axis] = -1
    scaled = v.astype(np.float32) * mult.reshape(shape)
    y = np.rint(scaled).astype(np.int64) + requant.output_zero_point
    if requant.output_dtype == "uint8":
        low, high = 0, 255
    else:
        low, high = -(1 << (out_width - 1)), (1 << (out_width - 1)) - 1
    return np.clip(y, requant.output_zero_point if requant.relu else low, high)
