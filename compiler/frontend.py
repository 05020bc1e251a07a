"""ONNX frontend: `from_onnx(model_or_path) -> Graph`, and `to_onnx(graph)` back.

- Opset: the default domain must be opset 13 or newer; older models are converted with
  `onnx.version_converter` to 13, or refused with the converter's reason.
- Shapes: every graph input needs a static shape. Dynamic dims (symbolic or unknown) are refused unless
  `input_shapes={"name": (1, 3, 224, 224)}` gives them; a symbolic dim ("N") given a size is bound to it
  everywhere. ONNX shape inference (strict, with data propagation) types every value from the inputs alone:
  the model's declared output and value_info shapes are not trusted but checked against it, and a mismatch
  is an error naming the node and value. A shape decided by a run-time value (Slice starts, Pad pads,
  ReduceSum axes, Tile repeats, ...: `shapes.VALUE_SHAPED`) is refused naming the node and input; once none
  is, values inference leaves open are typed by running the model once in onnxruntime on zeros (their shapes
  cannot depend on the zeros), checked against what inference knew of them.
- Constants: initializers and `Constant` nodes become `Graph.constants`; inputs that have an
  initializer (old exporters list weights as inputs) are constants too.
- Local functions are inlined; control flow (`If`, `Loop`, `Scan`: graph attributes) is refused.
Errors are `FrontendError`s naming the node or input at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import TensorweaveError
from .graph import Graph, Node, TensorType, topological_order
from .shapes import ShapeError, check_declared, check_value_shapes

__all__ = ["FrontendError", "MIN_OPSET", "from_onnx", "load_model", "parse_input_shapes", "to_onnx"]

MIN_OPSET = 13


class FrontendError(TensorweaveError):
    """An ONNX model the frontend cannot turn into a graph (the message names the node or input)."""


def load_model(model_or_path: onnx.ModelProto | str | Path | bytes) -> onnx.ModelProto:
    """The ModelProto of a model, a path to a .onnx file or its bytes; a file that is missing, not a
    file, or not an ONNX model (bad protobuf, no graph, a missing external-data file) is a FrontendError
    naming it."""
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    if isinstance(model_or_path, bytes):
        return _parsed(lambda: onnx.load_from_string(model_or_path), "the model bytes")
    path = Path(model_or_path)
    if path.is_dir():
        raise FrontendError(f"ONNX model '{path}' is a folder, not a .onnx file")
    if not path.is_file():
        raise FrontendError(f"ONNX model '{path}' does not exist")
    return _parsed(lambda: onnx.load(str(path)), f"'{path}'")


def _parsed(load: Callable[[], onnx.ModelProto], what: str) -> onnx.ModelProto:
    try:
        model = load()
    except Exception as exc:  # noqa: BLE001 - protobuf decode, external-data and OS errors have many types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FrontendError(f"{what} is not a readable ONNX model: {reason}") from None
    # protobuf parses many byte strings (an empty file, a truncated one) as a message with fields unset
    if not model.HasField("graph") or model.ir_version <= 0:
        missing = "graph" if not model.HasField("graph") else "ir_version"
        raise FrontendError(f"{what} is not an ONNX model: it has no {missing} (an empty, truncated or "
                            f"non-ONNX file?)")
    _check_names(model, what)
    _check_stored_tensors(model, what)
    _check_input_types(model, what)
    return model


def _check_names(model: onnx.ModelProto, what: str) -> None:
    """Names are text: protobuf hands a string field that is not valid UTF-8 back as bytes."""
    g = model.graph
    names = [g.name, *(v.name for v in [*g.input, *g.output, *g.value_info, *g.initializer]),
             *(x for n in g.node for x in (n.name, n.op_type, n.domain, *n.input, *n.output)),
             *(a.name for n in g.node for a in n.attribute), *(o.domain for o in model.opset_import)]
    for name in names:
        if not isinstance(name, str):
            raise FrontendError(f"{what}: holds a name that is not UTF-8 text ({name[:40]!r})")


def _check_input_types(model: onnx.ModelProto, what: str) -> None:
    """Every run-time input is a tensor of a known element type (the rest of the import relies on it)."""
    inits = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in inits or not value.type.HasField("tensor_type"):
            continue  # non-tensor inputs are refused by name later
        elem = value.type.tensor_type.elem_type
        try:
            np.dtype(helper.tensor_dtype_to_np_dtype(elem))
        except Exception:  # noqa: BLE001 - onnx raises KeyError or ValueError for an unknown type
            raise FrontendError(f"{what}: input '{value.name}' has no valid element type ({elem})") from None


def _check_stored_tensors(model: onnx.ModelProto, what: str) -> None:
    """Every initializer and Constant value decodes to an array of its declared type and shape (a
    damaged file often keeps its structure but not its tensors)."""
    tensors = [(f"initializer '{t.name}'", t) for t in model.graph.initializer]
    tensors += [(f"Constant node '{n.name or (n.output[0] if n.output else '?')}'", a.t) for n in model.graph.node
                if n.op_type == "Constant" for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    for name, tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            continue  # read from its own file by onnx.load, which checked it exists
        try:
            numpy_helper.to_array(tensor)
        except Exception as exc:  # noqa: BLE001 - numpy and onnx raise several types for a bad tensor
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FrontendError(f"{what}: {name} is damaged: {reason}") from None


def parse_input_shapes(specs: Sequence[str] | None) -> dict[str, tuple[int, ...]]:
    """Parse command-line shapes `name=1,3,224,224` into a dict."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs or ():
        name, sep, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d <= 0 for d in shape):
            raise FrontendError(f"input shape '{spec}' should look like name=1,3,224,224 (positive integers)")
        shapes[name] = shape
    return shapes


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _upgrade(model: onnx.ModelProto) -> onnx.ModelProto:
    if not any(entry.domain in ("", "ai.onnx") for entry in model.opset_import):
        imported = ", ".join(f"{e.domain} (opset {e.version})" for e in model.opset_import) or "no domain at all"
        raise FrontendError(f"the model imports {imported} but not the default ONNX domain (ai.onnx): tensorweave "
                            f"runs ai.onnx operators, opset {MIN_OPSET} or newer; the ai.onnx.ml and "
                            "ai.onnx.preview.training domains are not supported")
    opset = default_opset(model)
    if opset >= MIN_OPSET:
        return model
    from onnx import version_converter
    try:
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:
        raise FrontendError(f"the model uses opset {opset}; tensorweave needs opset {MIN_OPSET} or newer and "
                            f"onnx.version_converter could not convert it: {str(exc).splitlines()[0]}") from exc


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    t = value.type.tensor_type
    if not t.HasField("shape"):
        return [None]
    out: list[int | str | None] = []
    for d in t.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        elif d.HasField("dim_value") and d.dim_value == 0:
            out.append(0)
        else:
            out.append(d.dim_param or None)
    return out


def _bindings(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """The symbolic dims ("N") that the given input shapes bind; one name bound to two sizes is an error."""
    bindings: dict[str, int] = {}
    bound_by: dict[str, str] = {}
    for value in model.graph.input:
        if value.name not in shapes or not value.type.HasField("tensor_type"):
            continue
        for have, want in zip(_dims(value), shapes[value.name], strict=False):
            if isinstance(have, str):
                if bindings.setdefault(have, int(want)) != int(want):
                    raise FrontendError(f"input '{value.name}' binds the dimension '{have}' to {want}, but input "
                                        f"'{bound_by[have]}' binds it to {bindings[have]}")
                bound_by.setdefault(have, value.name)
    return bindings


def _fix_input_shapes(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]]) -> onnx.ModelProto:
    model = _copy(model)
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    runtime = [v for v in graph.input if v.name not in inits]
    unknown = set(shapes) - {v.name for v in runtime}
    if unknown:
        raise FrontendError(f"--input-shape names {', '.join(sorted(unknown))}, but the model's inputs are "
                            f"{', '.join(v.name for v in runtime)}")
    for value in runtime:
        if not value.type.HasField("tensor_type"):
            raise FrontendError(f"input '{value.name}' is not a tensor (sequences and maps are not supported)")
        dims = _dims(value)
        if value.name in shapes:
            given = tuple(int(d) for d in shapes[value.name])
            if dims != [None] and len(dims) != len(given):
                raise FrontendError(f"input '{value.name}' has rank {len(dims)}, but the given shape "
                                    f"{','.join(map(str, given))} has rank {len(given)}")
            for have, want in zip(dims, given, strict=False):
                if isinstance(have, int) and have != want:
                    raise FrontendError(f"input '{value.name}' has the fixed shape {dims}; the given shape "
                                        f"{list(given)} disagrees")
            shape_proto = value.type.tensor_type.shape
            shape_proto.Clear()
            for d in given:
                shape_proto.dim.add().dim_value = d
        elif dims == [None] or not all(isinstance(d, int) for d in dims):
            shown = "unknown rank" if dims == [None] else ",".join(str(d if d is not None else "?") for d in dims)
            raise FrontendError(f"input '{value.name}' has a dynamic shape ({shown}); give it, e.g. "
                                f"--input-shape {value.name}=" + ",".join(
                                    str(d) if isinstance(d, int) else "1" for d in (dims if dims != [None] else [1])))
    return model


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _decode_attr(node: onnx.NodeProto, attr: onnx.AttributeProto) -> Any:
    kind = attr.type
    A = onnx.AttributeProto
    if kind in (A.GRAPH, A.GRAPHS):
        raise FrontendError(f"node '{node.name or node.op_type}' ({node.op_type}) has a subgraph attribute "
                            f"'{attr.name}': control flow is not supported")
    if kind == A.TENSOR:
        return numpy_helper.to_array(attr.t)
    if kind == A.TENSORS:
        return [numpy_helper.to_array(t) for t in attr.tensors]
    if kind == A.SPARSE_TENSOR:
        raise FrontendError(f"node '{node.name or node.op_type}' ({node.op_type}): sparse tensor attribute "
                            f"'{attr.name}' is not supported")
    if kind == A.TYPE_PROTO or kind == A.TYPE_PROTOS:
        raise FrontendError(f"node '{node.name or node.op_type}' ({node.op_type}): type attribute "
                            f"'{attr.name}' is not supported")
    value = helper.get_attribute_value(attr)
    if kind == A.STRING:
        return value.decode("utf-8")
    if kind == A.STRINGS:
        return [v.decode("utf-8") for v in value]
    if kind == A.INT:
        return int(value)
    if kind == A.FLOAT:
        return float(value)
    if kind == A.INTS:
        return [int(v) for v in value]
    if kind == A.FLOATS:
        return [float(v) for v in value]
    return value


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    (attr,) = node.attribute
    name = attr.name
    value = _decode_attr(node, attr)
    if name == "value":
        return np.asarray(value)
    if name == "value_float":
        return np.array(value, dtype=np.float32)
    if name == "value_floats":
        return np.array(value, dtype=np.float32)
    if name == "value_int":
        return np.array(value, dtype=np.int64)
    if name == "value_ints":
        return np.array(value, dtype=np.int64)
    raise FrontendError(f"Constant node '{node.name}' uses attribute '{name}', which is not supported")


def _tensor_type(value: onnx.ValueInfoProto) -> TensorType | None:
    t = value.type.tensor_type
    if not value.type.HasField("tensor_type") or t.elem_type == 0 or not t.HasField("shape"):
        return None
    dims = _dims(value)
    if not all(isinstance(d, int) for d in dims):
        return None
    try:
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
    except Exception:
        return None
    return TensorType(tuple(int(d) for d in dims), np.dtype(dtype).name)  # type: ignore[arg-type]


def _infer(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """The model with inferred value_info, and strict inference's complaint ("" when it had none)."""
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True), ""
    except Exception as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        try:  # strict mode stops at the first node it cannot type; what it leaves open is typed by running
            inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
            typed = [v for v in inferred.graph.value_info if v.type.tensor_type.elem_type != 0]
            del inferred.graph.value_info[:]
            inferred.graph.value_info.extend(typed)
            return inferred, reason
        except Exception:
            pass
        raise FrontendError(f"ONNX shape inference failed: {reason}") from exc


@dataclass(frozen=True)
class _Declared:
    """A type the model declares for a node's output (value_info or graph output)."""

    dtype: str | None
    dims: tuple[int | str | None, ...] | None


def _declared(model: onnx.ModelProto) -> dict[str, _Declared]:
    inputs = {v.name for v in model.graph.input}
    out: dict[str, _Declared] = {}
    for value in [*model.graph.value_info, *model.graph.output]:
        if value.name in inputs or not value.type.HasField("tensor_type"):
            continue
        t = value.type.tensor_type
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).name if t.elem_type else None
        except Exception:
            dtype = None
        dims = _dims(value)
        out[value.name] = _Declared(dtype, None if dims == [None] else tuple(dims))
    return out


def _strip_declared(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without declared shapes of node outputs: inference computes them, and they are checked after
    (a wrong declaration would otherwise size the buffers)."""
    model = _copy(model)
    del model.graph.value_info[:]
    inputs = {v.name for v in model.graph.input}
    for value in model.graph.output:
        if value.name not in inputs and value.type.HasField("tensor_type"):
            value.ClearField("type")
    return model


def _types_by_running(model: onnx.ModelProto, missing: Sequence[str], reason: str) -> dict[str, TensorType]:
    """Type values shape inference left open by running the model once on zeros in onnxruntime.

    Only called once no output shape depends on a run-time value (`check_value_shapes`), so the shapes found
    do not depend on the zeros; each is checked against what inference knew of it (rank, known dims).
    """
    import onnxruntime as ort

    probe = _copy(model)
    partial = {v.name: v for v in [*probe.graph.value_info, *probe.graph.output]}
    known = {o.name for o in probe.graph.output}
    for name in missing:
        if name not in known:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    inits = {i.name for i in probe.graph.initializer}
    feeds = {}
    for value in probe.graph.input:
        if value.name in inits:
            continue
        tt = _tensor_type(value)
        assert tt is not None  # inputs were checked to be static
        feeds[value.name] = np.zeros(tt.shape, dtype=tt.dtype)
    why = f" (strict shape inference: {reason})" if reason else ""
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        results = session.run(list(missing), feeds)
    except Exception as exc:
        raise FrontendError(f"could not determine the shapes of {', '.join(missing[:5])}: shape inference left "
                            f"them open{why} and onnxruntime failed on the model: {str(exc).splitlines()[0]}") from exc
    types = {}
    for name, result in zip(missing, results, strict=True):
        if not isinstance(result, np.ndarray):
            raise FrontendError(f"value '{name}' is a {type(result).__name__}, not a tensor "
                                "(sequences and maps are not supported)")
        types[name] = TensorType(result.shape, result.dtype.name)
        if name in partial:
            dims = _dims(partial[name])
            elem = partial[name].type.tensor_type.elem_type
            if (dims != [None] and (len(dims) != result.ndim or any(
                    isinstance(d, int) and d != r for d, r in zip(dims, result.shape, strict=False)))) or (
                    elem and np.dtype(helper.tensor_dtype_to_np_dtype(elem)) != result.dtype):
                raise FrontendError(f"value '{name}': onnxruntime computes {types[name]}, but shape inference "
                                    f"says {dims}{why}")
    return types


def from_onnx(model_or_path: onnx.ModelProto | str | Path | bytes,
              input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """Import an ONNX model (a ModelProto, a path or serialized bytes) into a typed, static `Graph`."""
    model = load_model(model_or_path)
    if model.graph.sparse_initializer:
        raise FrontendError("the model has sparse initializers, which are not supported")
    for index, proto in enumerate(model.graph.node):
        for attr in proto.attribute:
            if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise FrontendError(f"node '{proto.name or f'{proto.op_type}_{index}'}' ({proto.op_type}) has a "
                                    f"subgraph attribute '{attr.name}': control flow is not supported")
    model = _fix_input_shapes(model, input_shapes or {})
    bindings = _bindings(load_model(model_or_path), input_shapes or {})
    model = _upgrade(model)
    if model.functions:
        from onnx import inliner
        model = inliner.inline_local_functions(model)
    declared = _declared(model)
    model, reason = _infer(_strip_declared(model))
    graph = model.graph

    constants: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    inputs = tuple(v.name for v in graph.input if v.name not in constants)
    types: dict[str, TensorType] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tt = _tensor_type(value)
        if tt is not None and value.name not in constants:
            types[value.name] = tt

    nodes: list[Node] = []
    names: set[str] = set()
    for index, proto in enumerate(graph.node):
        name = proto.name or f"{proto.op_type}_{index}"
        while name in names:
            name = f"{name}_{index}"
        names.add(name)
        if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx"):
            if len(proto.attribute) != 1:
                raise FrontendError(f"Constant node '{name}' needs exactly one value attribute")
            constants[proto.output[0]] = _constant_value(proto)
            types.pop(proto.output[0], None)
            continue
        attrs = {a.name: _decode_attr(proto, a) for a in proto.attribute}
        nodes.append(Node(op=proto.op_type, name=name, inputs=tuple(proto.input), outputs=tuple(proto.output),
                          attrs=attrs, domain=proto.domain))

    ordered = topological_order(nodes, [*inputs, *constants])
    try:
        check_value_shapes(ordered, constants)
    except ShapeError as exc:
        raise FrontendError(str(exc)) from exc
    missing = [v for n in ordered for v in n.outputs if v and v not in types]
    if missing:
        types.update(_types_by_running(model, missing, reason))
    for value in inputs:
        if value not in types:
            raise FrontendError(f"input '{value}' has no tensor type")
    producers = {v: (n.name, n.op) for n in ordered for v in n.outputs if v}
    try:
        check_declared(declared, types, producers, bindings)
    except ShapeError as exc:
        raise FrontendError(str(exc)) from exc
    # Unused outputs of a node ("" or dangling) keep their types; values with no type left are an error.
    return Graph(name=graph.name or "model", nodes=ordered, inputs=inputs,
                 outputs=tuple(v.name for v in graph.output), types=types, constants=constants,
                 opset=default_opset(model))


def _attr_proto(key: str, value: Any) -> onnx.AttributeProto:
    if isinstance(value, np.ndarray):
        return helper.make_attribute(key, numpy_helper.from_array(value))
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
        return helper.make_attribute(key, [numpy_helper.from_array(v) for v in value])
    if isinstance(value, (list, tuple)) and not value:
        return helper.make_attribute(key, [], attr_type=onnx.AttributeProto.INTS)
    if isinstance(value, (list, tuple)) and any(isinstance(v, float) for v in value):
        return helper.make_attribute(key, [float(v) for v in value])
    return helper.make_attribute(key, value)


def to_onnx(graph: Graph, ir_version: int = 8) -> onnx.ModelProto:
    """The graph as an ONNX model (constants as initializers, every value's type as value_info)."""
    def info(name: str) -> onnx.ValueInfoProto:
        t = graph.types[name]
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)), t.shape)

    nodes = []
    for node in graph.nodes:
        proto = helper.make_node(node.op, list(node.inputs), list(node.outputs), name=node.name,
                                 domain=node.domain or None)
        proto.attribute.extend(_attr_proto(k, v) for k, v in node.attrs.items())
        nodes.append(proto)
    produced = {v for n in graph.nodes for v in n.outputs if v}
    body = helper.make_graph(
        nodes, graph.name, [info(v) for v in graph.inputs], [info(v) for v in graph.outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), k) for k, a in graph.constants.items()],
        value_info=[info(v) for v in produced if v not in graph.outputs and v in graph.types])
    domains = {n.domain for n in graph.nodes if n.domain}
    opsets = [helper.make_opsetid("", graph.opset)] + [helper.make_opsetid(d, 1) for d in sorted(domains)]
    return helper.make_model(body, opset_imports=opsets, ir_version=ir_version, producer_name="tensorweave")
