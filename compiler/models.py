"""Float ONNX models built in code (no downloads): seeded random weights, opset 17.

- `small_cnn()`: three convolutions with ReLU, a max pool, a global average pool and a Gemm, with
  BatchNormalization after the convs (folded by `quant_pre_process`) and one residual Add.
- `light_model(name)`: a real architecture from onnx's own test data with random weights (squeezenet, ...).
- `resnet18()`: torchvision's layout: 7x7/2 stem + BN + ReLU, 3x3/2 max pool, four stages of two
  BasicBlocks (64, 128, 256, 512 channels; 1x1/2 downsample convs), global average pool, flatten, fc.

Weights use He initialisation and BatchNorm statistics are drawn near identity, so activations stay
in a sensible range through the depth and int8 calibration is meaningful.

    python -m tensorweave.compiler.models resnet18 -o resnet18.onnx
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import TensorweaveError

__all__ = ["MODELS", "build_model", "resnet18", "small_cnn"]

OPSET = 17


class _Builder:
    """Accumulates nodes and seeded initializers for one model."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, name: str | None = None,
             bias: bool = False) -> str:
        name = name or self._name("conv")
        fan_in = cin * k * k
        w = (self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        inputs = [x, self.const(f"{name}.weight", w)]
        if bias:
            inputs.append(self.const(f"{name}.bias", (self.rng.standard_normal(cout) * 0.05).astype(np.float32)))
        pad = k // 2
        return self.node("Conv", inputs, name, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad, pad, pad, pad])

    def bn(self, x: str, channels: int, name: str) -> str:
        r = self.rng
        params = [
            (1.0 + 0.1 * r.standard_normal(channels)).astype(np.float32),   # scale
            (0.05 * r.standard_normal(channels)).astype(np.float32),        # bias
            (0.05 * r.standard_normal(channels)).astype(np.float32),        # mean
            (1.0 + 0.1 * np.abs(r.standard_normal(channels))).astype(np.float32),  # var
        ]
        names = [self.const(f"{name}.{p}", v) for p, v in zip(("weight", "bias", "mean", "var"), params, strict=True)]
        return self.node("BatchNormalization", [x, *names], name, epsilon=1e-5)

    def relu(self, x: str, name: str | None = None) -> str:
        return self.node("Relu", [x], name or self._name("relu"))

    def model(self, name: str, x: str, shape: list[int], y: str, out_shape: list[int]) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info(y, TensorProto.FLOAT, out_shape)],
                                  initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="tensorweave.compiler.models")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def small_cnn(seed: int = 0, image: int = 16, classes: int = 10) -> onnx.ModelProto:
    """A few convs with ReLU (one residual Add), a max pool, global average pool and a Gemm."""
    b = _Builder(seed)
    x = b.relu(b.bn(b.conv("input", 3, 16, 3, name="conv1"), 16, "bn1"), "relu1")
    y = b.relu(b.bn(b.conv(x, 16, 16, 3, name="conv2"), 16, "bn2"), "relu2")
    x = b.relu(b.node("Add", [x, y], "add"), "relu3")
    x = b.node("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    x = b.relu(b.conv(x, 16, 32, 3, stride=2, name="conv3", bias=True), "relu4")
    x = b.node("GlobalAveragePool", [x], "gap")
    x = b.node("Flatten", [x], "flatten", axis=1)
    w = (b.rng.standard_normal((classes, 32)) * np.sqrt(1.0 / 32)).astype(np.float32)
    bias = (b.rng.standard_normal(classes) * 0.05).astype(np.float32)
    y = b.node("Gemm", [x, b.const("fc.weight", w), b.const("fc.bias", bias)], "fc", transB=1)
    return b.model("small_cnn", "input", [1, 3, image, image], y, [1, classes])


def resnet18(seed: int = 0, image: int = 224, classes: int = 1000) -> onnx.ModelProto:
    """torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2]) with BatchNorm nodes and random weights."""
    b = _Builder(seed)
    x = b.relu(b.bn(b.conv("input", 3, 64, 7, stride=2, name="conv1"), 64, "bn1"), "relu")
    x = b.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            stride = 2 if block == 0 and stage > 1 else 1
            y = b.relu(b.bn(b.conv(x, cin, cout, 3, stride, name=f"{p}.conv1"), cout, f"{p}.bn1"), f"{p}.relu1")
            y = b.bn(b.conv(y, cout, cout, 3, 1, name=f"{p}.conv2"), cout, f"{p}.bn2")
            if stride != 1 or cin != cout:
                x = b.bn(b.conv(x, cin, cout, 1, stride, name=f"{p}.downsample.0"), cout, f"{p}.downsample.1")
            x = b.relu(b.node("Add", [y, x], f"{p}.add"), f"{p}.relu2")
            cin = cout
    x = b.node("GlobalAveragePool", [x], "avgpool")
    x = b.node("Flatten", [x], "flatten", axis=1)
    w = (b.rng.standard_normal((classes, 512)) * np.sqrt(1.0 / 512)).astype(np.float32)
    bias = (b.rng.standard_normal(classes) * 0.05).astype(np.float32)
    y = b.node("Gemm", [x, b.const("fc.weight", w), b.const("fc.bias", bias)], "fc", transB=1)
    return b.model("resnet18", "input", [1, 3, image, image], y, [1, classes])


LIGHT_MODELS = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
                "squeezenet", "vgg19", "zfnet512")


def light_model(name: str, seed: int = 0) -> onnx.ModelProto:
    """A real architecture from the onnx wheel's test data (`onnx/backend/test/data/light/`), whose weights
    are `ConstantOfShape` placeholders there, with seeded random initializers instead (He-scaled for
    weights; 1-D parameters near 1 for scales and variances, near 0 otherwise). Converted to opset 13."""
    from onnx import version_converter

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"
    if not path.is_file():
        raise TensorweaveError(f"no light model '{name}' in the onnx package; there are {', '.join(LIGHT_MODELS)}")
    model = version_converter.convert_version(onnx.load(str(path)), 13)
    model.ir_version = max(model.ir_version, 8)  # initializers need not be graph inputs
    rng = np.random.default_rng(seed)
    shapes = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    shapes.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    kept = []
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in shapes:
            kept.append(node)
            continue
        shape = tuple(int(d) for d in shapes[node.input[0]])
        if len(shape) > 1:
            value = rng.standard_normal(shape) * np.sqrt(2.0 / int(np.prod(shape[1:])))
        elif any(k in node.output[0].lower() for k in ("var", "scale", "_s_", "gamma")):
            value = 1.0 + 0.1 * np.abs(rng.standard_normal(shape))
        else:
            value = 0.05 * rng.standard_normal(shape)
        model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
    used = {v for n in kept for v in n.input} | {o.name for o in model.graph.output}
    kept = [n for n in kept if n.op_type != "Constant" or n.output[0] in used]  # the dropped shapes
    inits = [i for i in model.graph.initializer if i.name in used]
    del model.graph.node[:], model.graph.initializer[:]
    model.graph.node.extend(kept)
    model.graph.initializer.extend(inits)
    return model


MODELS: dict[str, Callable[..., onnx.ModelProto]] = {"small_cnn": small_cnn, "resnet18": resnet18}


def build_model(name: str, seed: int = 0) -> onnx.ModelProto:
    if name in LIGHT_MODELS:
        return light_model(name, seed)
    if name not in MODELS:
        raise TensorweaveError(f"unknown model '{name}'; built-in models are {', '.join(MODELS)}, and from onnx's "
                               f"test data {', '.join(LIGHT_MODELS)}")
    return MODELS[name](seed=seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tensorweave.compiler.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(MODELS) + list(LIGHT_MODELS))
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = build_model(args.model, args.seed)
    onnx.save(model, args.output)
    values = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    print(f"wrote {args.output}: {args.model}, {len(model.graph.node)} nodes, {values:,} weight values, "
          f"{Path(args.output).stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
