"""Static shapes are never taken on trust (issue 17, item 1): declared shapes are checked by inference, symbolic
dims are bound and checked, value-decided shapes come from constants or are refused, inputs are checked
before any C runs, and BitShift by >= the width matches onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper
from tensorweave.cli import main
from tensorweave.compiler.backends.cpu import InputError, UnsupportedOp, compile_graph
from tensorweave.compiler.backends.cpu.executable import compile_node, generate_c
from tensorweave.compiler.frontend import FrontendError, from_onnx
from tensorweave.compiler.graph import Graph, Node, TensorType
from tensorweave.compiler.models import small_cnn


def _model(nodes, inputs, outputs, initializers=(), value_info=(), opset=17) -> onnx.ModelProto:
    graph = h.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers), value_info=list(value_info))
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


def _ort(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def _dynamic_cnn(output_batch: str | int) -> onnx.ModelProto:
    model = small_cnn()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    dim = model.graph.output[0].type.tensor_type.shape.dim[0]
    if isinstance(output_batch, str):
        dim.dim_param = output_batch
    else:
        dim.dim_value = output_batch
    return model


# ---- declared shapes -----------------------------------------------------------------------------------
def test_dynamic_batch_is_bound_and_compiled_for_the_given_size() -> None:
    """The batch given with --input-shape is the compiled size: a batch-4 run is correct, batch 2 is refused."""
    model = _dynamic_cnn("N")
    graph = from_onnx(model, {"input": (4, 3, 16, 16)})
    assert graph.types["fc_out"].shape == (4, 10)
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    exe = compile_graph(graph)
    np.testing.assert_allclose(exe.run({"input": x})["fc_out"], _ort(model, {"input": x})[0], rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError, match=r"input 'input' is float32\[2,3,16,16\]; .* float32\[4,3,16,16\]"):
        exe.run({"input": x[:2]})


def test_dynamic_input_with_a_fixed_declared_output_is_refused() -> None:
    """Before: compiled with the declared [1, 10] output buffer, the batch-4 Gemm wrote past it (exit 0)."""
    with pytest.raises(FrontendError, match=r"node 'fc' \(Gemm\) computes 'fc_out' as float32\[4,10\], but the model "
                                            r"declares float32\[1,10\]"):
        from_onnx(_dynamic_cnn(1), {"input": (4, 3, 16, 16)})


def test_cli_run_with_a_larger_batch_fails_cleanly(tmp_path, capsys) -> None:
    path = tmp_path / "dyn.onnx"
    onnx.save(_dynamic_cnn(1), str(path))
    assert main(["run", str(path), "--target", "cpu", "--input-shape", "input=4,3,16,16"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "node 'fc' (Gemm)" in err[0] and "Traceback" not in err[0]


def test_one_symbolic_dim_bound_to_two_sizes_is_refused() -> None:
    a = h.make_tensor_value_info("a", T.FLOAT, ["N", 3])
    b = h.make_tensor_value_info("b", T.FLOAT, ["N", 3])
    y = h.make_tensor_value_info("y", T.FLOAT, ["N", 3])
    model = _model([h.make_node("Add", ["a", "b"], ["y"], name="add")], [a, b], [y])
    with pytest.raises(FrontendError, match="'N'"):
        from_onnx(model, {"a": (2, 3), "b": (4, 3)})
    assert from_onnx(model, {"a": (2, 3), "b": (2, 3)}).types["y"].shape == (2, 3)


def test_wrong_declared_output_shape_names_the_node() -> None:
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 3])
    y = h.make_tensor_value_info("y", T.FLOAT, [2, 2])
    model = _model([h.make_node("Relu", ["x"], ["y"], name="relu0")], [x], [y])
    with pytest.raises(FrontendError, match=r"node 'relu0' \(Relu\) computes 'y' as float32\[2,3\].*\[2,2\]"):
        from_onnx(model)


def test_wrong_declared_output_dtype_names_the_node() -> None:
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 3])
    y = h.make_tensor_value_info("y", T.INT32, [2, 3])
    model = _model([h.make_node("Relu", ["x"], ["y"], name="relu0")], [x], [y])
    with pytest.raises(FrontendError, match=r"node 'relu0' \(Relu\) computes 'y' as float32\[2,3\]"):
        from_onnx(model)


def test_wrong_intermediate_value_info_names_the_node() -> None:
    """Before: the [1, 3] value_info sized the buffer of 't' and the answer was silently wrong."""
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 3])
    y = h.make_tensor_value_info("y", T.FLOAT, [2, 3])
    t = h.make_tensor_value_info("t", T.FLOAT, [1, 3])
    model = _model([h.make_node("Relu", ["x"], ["t"], name="relu0"), h.make_node("Neg", ["t"], ["y"], name="neg0")],
                   [x], [y], value_info=[t])
    with pytest.raises(FrontendError, match=r"node 'relu0' \(Relu\) computes 't' as float32\[2,3\]"):
        from_onnx(model)


def test_right_and_partial_declarations_are_accepted() -> None:
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 3])
    y = h.make_tensor_value_info("y", T.FLOAT, ["M", None])
    t = h.make_tensor_value_info("t", T.FLOAT, [2, 3])
    model = _model([h.make_node("Relu", ["x"], ["t"], name="relu0"), h.make_node("Neg", ["t"], ["y"], name="neg0")],
                   [x], [y], value_info=[t])
    assert from_onnx(model).types["y"] == TensorType((2, 3), "float32")


# ---- shapes decided by values ------------------------------------------------------------------------------
def _i64(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


VALUE_CASES = {
    # op: (node, data shape, (name of the shape-deciding input, its value), other inputs as constants)
    "Slice": (h.make_node("Slice", ["x", "p", "e"], ["y"], name="slice0"), [10], ("p", [2]), {"e": [7]}),
    "ReduceSum": (h.make_node("ReduceSum", ["x", "p"], ["y"], name="reduce0", keepdims=0), [2, 3, 4], ("p", [1]), {}),
    "Tile": (h.make_node("Tile", ["x", "p"], ["y"], name="tile0"), [2, 3], ("p", [2, 3]), {}),
    "Pad": (h.make_node("Pad", ["x", "p"], ["y"], name="pad0"), [2, 3], ("p", [1, 0, 2, 1]), {}),
}


@pytest.mark.parametrize("op", sorted(VALUE_CASES))
def test_shape_decided_by_a_run_time_value_is_refused(op: str) -> None:
    """Before: onnxruntime on all-zero inputs guessed the shape, and the C ran with it on the real values."""
    node, shape, (name, value), others = VALUE_CASES[op]
    x = h.make_tensor_value_info("x", T.FLOAT, shape)
    p = h.make_tensor_value_info(name, T.INT64, [len(value)])
    y = h.make_tensor_value_info("y", T.FLOAT, None)
    model = _model([node], [x, p], [y], [_i64(k, v) for k, v in others.items()])
    with pytest.raises(FrontendError, match=rf"node '{node.name}' \({op}\): .* input 1 '{name}'"):
        from_onnx(model)


@pytest.mark.parametrize("op", sorted(VALUE_CASES))
def test_shape_decided_by_a_constant_is_computed(op: str) -> None:
    node, shape, (name, value), others = VALUE_CASES[op]
    x = h.make_tensor_value_info("x", T.FLOAT, shape)
    y = h.make_tensor_value_info("y", T.FLOAT, None)
    model = _model([node], [x], [y], [_i64(k, v) for k, v in {**others, name: value}.items()])
    data = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    (want,) = _ort(model, {"x": data})
    got = compile_graph(from_onnx(model)).run({"x": data})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_shape_decided_by_a_value_computed_from_shapes_is_static() -> None:
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape (how exporters write flatten) is known when compiling."""
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 3, 4])
    y = h.make_tensor_value_info("y", T.FLOAT, None)
    nodes = [h.make_node("Shape", ["x"], ["s"]), h.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             h.make_node("Unsqueeze", ["n", "zero1"], ["n1"]), h.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             h.make_node("Reshape", ["x", "shape"], ["y"], name="flatten")]
    model = _model(nodes, [x], [y], [_i64("zero", 0), _i64("zero1", [0]), _i64("minus1", [-1])])
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert from_onnx(model).types["y"].shape == (2, 12)
    np.testing.assert_array_equal(compile_graph(from_onnx(model)).run({"x": data})["y"], data.reshape(2, 12))


def test_back_end_refuses_a_hand_built_graph_with_a_run_time_slice_start() -> None:
    node = Node("Slice", "slice0", ("x", "s", "e"), ("y",))
    graph = Graph("g", (node,), ("x", "s"), ("y",), {"x": TensorType((10,), "float32"), "s": TensorType((1,), "int64"),
                                                     "y": TensorType((5,), "float32")},
                  {"e": np.array([7])}, 17)
    with pytest.raises(UnsupportedOp, match=r"node 'slice0' \(Slice\): .* input 1 's'"):
        generate_c(graph)


def test_compile_node_keeps_shape_deciding_constants() -> None:
    x = h.make_tensor_value_info("x", T.FLOAT, [10])
    y = h.make_tensor_value_info("y", T.FLOAT, None)
    model = _model([h.make_node("Slice", ["x", "s", "e"], ["y"], name="slice0")], [x], [y],
                   [_i64("s", [2]), _i64("e", [7])])
    graph = from_onnx(model)
    run = compile_node(graph, graph.node("slice0"))
    data = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(run(data, np.array([2]), np.array([7]))[0], data[2:7])
    with pytest.raises(InputError, match="'s'"):
        run(data, np.array([6]), np.array([7]))


# ---- inputs at run time --------------------------------------------------------------------------------------
def test_inputs_are_checked_before_the_c_runs() -> None:
    x = h.make_tensor_value_info("x", T.INT32, [3])
    y = h.make_tensor_value_info("y", T.INT32, [3])
    exe = compile_graph(from_onnx(_model([h.make_node("Neg", ["x"], ["y"], name="neg0")], [x], [y])))
    np.testing.assert_array_equal(exe.run({"x": np.array([1, 2, 3], np.int64)})["y"], [-1, -2, -3])
    with pytest.raises(InputError, match=r"input 'x' is int64\[3\]; .* int32\[3\]"):
        exe.run({"x": np.array([1, 2, 1 << 40], np.int64)})  # would wrap in a silent cast
    with pytest.raises(InputError, match=r"input 'x' is float32\[3\]; .* int32\[3\]"):
        exe.run({"x": np.zeros(3, np.float32)})
    with pytest.raises(InputError, match=r"input 'x' is int32\[4\]; .* int32\[3\]"):
        exe.run({"x": np.zeros(4, np.int32)})
    with pytest.raises(InputError, match="no input"):
        exe.run({"x": np.zeros(3, np.int32), "z": np.zeros(3, np.int32)})


# ---- BitShift ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift_by_the_width_or_more_equals_onnxruntime(dtype: str, direction: str) -> None:
    """C leaves x << 32 undefined (on x86 it shifts by 0); onnxruntime gives 0."""
    width = 8 * np.dtype(dtype).itemsize
    kind = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    a = h.make_tensor_value_info("a", kind, [8])
    b = h.make_tensor_value_info("b", kind, [8])
    y = h.make_tensor_value_info("y", kind, [8])
    model = _model([h.make_node("BitShift", ["a", "b"], ["y"], name="shift0", direction=direction)], [a, b], [y])
    top = np.iinfo(dtype).max
    xs = np.array([1, 3, top, 7, 9, top, 5, 1], dtype=dtype)
    shifts = np.array([width - 1, width, width + 1, min(top, 1000), 2 * width, 0, 1, 255], dtype=dtype)
    got = compile_graph(from_onnx(model)).run({"a": xs, "b": shifts})["y"]
    np.testing.assert_array_equal(got, _ort(model, {"a": xs, "b": shifts})[0])
