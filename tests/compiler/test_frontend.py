"""ONNX frontend: constants, attributes, shapes, opset handling and the errors users see."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tensorweave.compiler.frontend import FrontendError, from_onnx, parse_input_shapes, to_onnx


def _model(opset: int = 17, batch: int | str = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w", ""], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Constant", [], ["shape"], name="const", value_ints=[0, -1]),
        helper.make_node("Relu", ["c"], ["r"]),  # unnamed: gets a generated name
        helper.make_node("Reshape", ["r", "shape"], ["y"], name="flat"),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_import_types_constants_attrs(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    g = from_onnx(path)
    assert g.opset == 17 and g.inputs == ("x",) and g.outputs == ("y",)
    assert [n.op for n in g.nodes] == ["Conv", "Relu", "Reshape"]
    assert g.nodes[1].name == "Relu_2"
    assert g.nodes[0].inputs == ("x", "w", "")  # absent optional input kept as ""
    assert g.nodes[0].attrs["pads"] == [1, 1, 1, 1] and isinstance(g.nodes[0].attrs["pads"][0], int)
    assert g.constants["shape"].tolist() == [0, -1] and g.constants["shape"].dtype == np.int64
    assert g.types["c"].shape == (1, 4, 8, 8) and g.types["y"].shape == (1, 256)
    assert g.types["w"].dtype == "float32"


def test_roundtrip_through_onnxruntime_matches():
    model = _model()
    g = from_onnx(model)
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = ort.InferenceSession(to_onnx(g).SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)
    assert from_onnx(to_onnx(g)).types["y"] == g.types["y"]


def test_dynamic_dims_refused_unless_given():
    with pytest.raises(FrontendError, match=r"input 'x' has a dynamic shape \(N,3,8,8\).*--input-shape x=1,3,8,8"):
        from_onnx(_model(batch="N"))
    g = from_onnx(_model(batch="N"), input_shapes=parse_input_shapes(["x=2,3,8,8"]))
    assert g.types["x"].shape == (2, 3, 8, 8) and g.types["y"].shape == (2, 256)
    with pytest.raises(FrontendError, match="disagrees"):
        from_onnx(_model(), input_shapes={"x": (2, 3, 8, 8)})
    with pytest.raises(FrontendError, match="model's inputs are x"):
        from_onnx(_model(), input_shapes={"nope": (1,)})
    with pytest.raises(FrontendError, match="name=1,3,224,224"):
        parse_input_shapes(["x=1,a"])


def test_old_opset_converted():
    g = from_onnx(_model(opset=11))
    assert g.opset == 13 and g.types["y"].shape == (1, 256)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FrontendError, match="does not exist"):
        from_onnx(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(FrontendError, match="not a readable ONNX model"):
        from_onnx(bad)
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["z"])], "b", [],
                               [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    model = helper.make_model(helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], name="branchy", then_branch=branch, else_branch=branch)], "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]), opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(FrontendError, match="node 'branchy' \\(If\\).*control flow"):
        from_onnx(model)


def test_local_functions_are_inlined_and_constants_decoded():
    square = helper.make_function("local", "Square", ["a"], ["b"], [helper.make_node("Mul", ["a", "a"], ["b"])],
                                  [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("Square", ["x"], ["s"], name="sq", domain="local"),
             helper.make_node("Constant", [], ["k"], name="k", value_float=2.5),
             helper.make_node("Add", ["s", "k"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "f", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    model = helper.make_model(graph, functions=[square],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    g = from_onnx(model)
    assert [n.op for n in g.nodes] == ["Mul", "Add"] and all(n.domain == "" for n in g.nodes)
    assert g.constants["k"].dtype == np.float32 and float(g.constants["k"]) == 2.5
    x = np.array([1, -2, 3], np.float32)
    out = ort.InferenceSession(to_onnx(g).SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(out[0], x * x + 2.5)
