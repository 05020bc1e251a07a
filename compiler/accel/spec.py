"""What the accelerator kernels take: a conv's shape (`ConvSpec`), its requantization (`Requant`),
and the exact integer NumPy references the kernels are tested against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import TensorweaveError
from ..loopnest.builders import Conv2dParams, conv_output_size


class AccelError(TensorweaveError, ValueError):
    """A kernel the accelerator cannot run as asked; the message names the field and what would fit."""


@dataclass(frozen=True)
class ConvSpec(Conv2dParams):
    """A 2-D convolution over NCHW int8 activations and (K, C/groups, R, S) int8 weights, validated.

    The fields are `Conv2dParams`' (pads are top, left, bottom, right)."""

    def __post_init__(self) -> None:
        for name in ("batch", "in_channels", "height", "width", "out_channels", "groups"):
            if getattr(self, name) < 1:
                raise AccelError(f"ConvSpec.{name} = {getattr(self, name)} must be at least 1")
        for name, size in (("kernel", 2), ("stride", 2), ("pads", 4), ("dilation", 2)):
            value = getattr(self, name)
            if len(value) != size:
                raise AccelError(f"ConvSpec.{name} = {value} must have {size} entries")
            object.__setattr__(self, name, tuple(int(v) for v in value))
        if min(self.kernel + self.stride + self.dilation) < 1 or min(self.pads) < 0:
            raise AccelError(f"ConvSpec: kernel, stride and dilation must be >= 1 and pads >= 0, got kernel "
                             f"{self.kernel}, stride {self.stride}, dilation {self.dilation}, pads {self.pads}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise AccelError(f"ConvSpec.groups = {self.groups} must divide in_channels {self.in_channels} and "
                             f"out_channels {self.out_channels}")
        if self.out_height < 1 or self.out_width < 1:
            raise AccelError(f"ConvSpec: the {self.kernel} kernel does not fit the padded {self.height}x{self.width} "
                             "input")

    @property
    def out_height(self) -> int:
        return conv_output_size(self.height, self.kernel[0], self.stride[0], self.pads[0], self.pads[2],
                                self.dilation[0])

    @property
    def out_width(self) -> int:
        return conv_output_size(self.width, self.kernel[1], self.stride[1], self.pads[1], self.pads[3],
                                self.dilation[1])

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.out_channels, self.out_height, self.out_width)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel)

    @property
    def macs(self) -> int:
        return (self.batch * self.out_channels * self.out_height * self.out_width
                * (self.in_channels // self.groups) * self.kernel[0] * self.kernel[1])


ACTIVATION_DTYPES = {"int8": (-128, 127), "uint8": (0, 255)}


@dataclass(frozen=True)
class Requant:
    """y = clamp(round((acc + bias - input_zero_point * sum(w_k)) * input_scale * weight_scale[k] / output_scale)
    + output_zero_point) into the output type's range, ReLU as a lower clamp at the zero point.

    `input_dtype` / `output_dtype` are the model's activation types ("int8" or "uint8") and the zero points
    are in them (onnxruntime's defaults: uint8 or int8 activations with any zero point). The accelerator
    computes in int8: a uint8 x enters shifted by -128 (exact), its zero point with it (`device_input_zero_point`),
    and a uint8 y leaves shifted by +128 from an int8 result with zero point `device_output_zero_point`.
    The input zero point's term is folded into the bias (`folded_bias`); padding takes the zero point."""

    input_scale: float
    weight_scales: tuple[float, ...]
    output_scale: float
    output_zero_point: int = 0
    relu: bool = False
    input_zero_point: int = 0
    input_dtype: str = "int8"
    output_dtype: str = "int8"

    def __post_init__(self) -> None:
        scales = tuple(float(s) for s in np.atleast_1d(self.weight_scales))
        object.__setattr__(self, "weight_scales", scales)
        for name, value in (("input_scale", self.input_scale), ("output_scale", self.output_scale),
                            *((f"weight_scales[{i}]", s) for i, s in enumerate(scales))):
            if not (value > 0 and np.isfinite(value)):
                raise AccelError(f"Requant.{name} = {value} must be a positive finite number")
        if not scales:
            raise AccelError("Requant.weight_scales is empty; give one scale or one per output channel")
        for side in ("input", "output"):
            dtype, zp = getattr(self, f"{side}_dtype"), int(getattr(self, f"{side}_zero_point"))
            if dtype not in ACTIVATION_DTYPES:
                raise AccelError(f"Requant.{side}_dtype = '{dtype}'; the accelerator takes "
                                 f"{' or '.join(ACTIVATION_DTYPES)} activations")
            lo, hi = ACTIVATION_DTYPES[dtype]
            if not lo <= zp <= hi:
                raise AccelError(f"Requant.{side}_zero_point = {zp} is outside {dtype} ({lo}..{hi})")
            object.__setattr__(self, f"{side}_zero_point", zp)

    @property
    def input_offset(self) -> int:
        """What is subtracted from an input value to give the accelerator's int8 value (128 for uint8)."""
        return 128 if self.input_dtype == "uint8" else 0

    @property
    def output_offset(self) -> int:
        """What is added to the accelerator's int8 result to give the output value (128 for uint8)."""
        return 128 if self.output_dtype == "uint8" else 0

    @property
    def device_input_zero_point(self) -> int:
        return self.input_zero_point - self.input_offset

    @property
    def device_output_zero_point(self) -> int:
        return self.output_zero_point - self.output_offset

    def folded_bias(self, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray | None:
        """bias - zp_x' * sum(w_k) per output channel (weight (K, ...), output channels first): the input
        zero point's term of sum(w * (x - zp_x')), so the accelerator sums w * x' alone. None stays None
        when the zero point is 0."""
        zp = self.device_input_zero_point
        if zp == 0:
            return bias
        w = np.asarray(weight, dtype=np.int64)
        folded = -zp * w.reshape(w.shape[0], -1).sum(axis=1)
        return folded if bias is None else folded + np.asarray(bias, dtype=np.int64)

    def multipliers(self, channels: int) -> np.ndarray:
        """The real multiplier per output channel, computed in float32 as onnxruntime does."""
        if len(self.weight_scales) not in (1, channels):
            raise AccelError(f"Requant.weight_scales has {len(self.weight_scales)} entries; give 1 or {channels} "
                             "(one per output channel)")
        w = np.broadcast_to(np.asarray(self.weight_scales, dtype=np.float32), (channels,))
        return (np.float32(self.input_scale) * w / np.float32(self.output_scale)).astype(np.float32)


def conv2d_int(x: np.ndarray, weight: np.ndarray, spec: ConvSpec, bias: np.ndarray | None = None) -> np.ndarray:
    """Exact int64 conv2d (+ bias) over NCHW, by im2col: the accumulator values before requantization."""
    n, c, h, w = spec.batch, spec.in_channels, spec.height, spec.width
    (kr, ks), (sh, sw), (dh, dw), g = spec.kernel, spec.stride, spec.dilation, spec.groups
    pt, pl, pb, pr = spec.pads
    oh, ow = spec.out_height, spec.out_width
    padded = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=np.int64)
    padded[:, :, pt:pt + h, pl:pl + w] = x
    cg, kg = c // g, spec.out_channels // g
    out = np.zeros(spec.output_shape, dtype=np.int64)
    for gi in range(g):
        cols = np.empty((n, cg, kr, ks, oh, ow), dtype=np.int64)
        for r in range(kr):
            for s in range(ks):
                cols[:, :, r, s] = padded[:, gi * cg:(gi + 1) * cg, r * dh:r * dh + sh * (oh - 1) + 1:sh,
                                          s * dw:s * dw + sw * (ow - 1) + 1:sw]
        wg = weight[gi * kg:(gi + 1) * kg].astype(np.int64).reshape(kg, -1)
        out[:, gi * kg:(gi + 1) * kg] = np.einsum("kq,nqp->nkp", wg, cols.reshape(n, cg * kr * ks, oh * ow)
                                                  ).reshape(n, kg, oh, ow)
    if bias is not None:
        out += np.asarray(bias, dtype=np.int64)[None, :, None, None]
    return out
