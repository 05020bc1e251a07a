"""Graph IR: construction checks, queries, subgraphs, immutability."""

import numpy as np
import pytest
from tensorweave.compiler.graph import Graph, GraphError, Node, TensorType, topological_order
from tensorweave.errors import TensorweaveError


def _chain() -> Graph:
    f = "float32"
    return Graph(
        name="chain",
        nodes=(Node("Relu", "r", ("x",), ("a",)),
               Node("Add", "add", ("a", "c"), ("b",)),
               Node("Mul", "mul", ("b", "a"), ("y",), {"note": "keep"})),
        inputs=("x",), outputs=("y",),
        types={"x": TensorType((2, 3), f), "a": TensorType((2, 3), f), "b": TensorType((2, 3), f),
               "y": TensorType((2, 3), f)},
        constants={"c": np.ones((2, 3), np.float32)}, opset=17)


def test_types_constants_and_queries():
    g = _chain()
    assert g.types["c"] == TensorType((2, 3), "float32")  # constants get their type automatically
    assert g.producer("b").name == "add" and g.producer("x") is None
    assert [n.name for n in g.consumers("a")] == ["add", "mul"]
    assert g.ops() == {"Relu": 1, "Add": 1, "Mul": 1}
    assert g.is_constant("c") and not g.is_constant("a")
    assert TensorType((2, 3), np.float32).dtype == "float32" and TensorType((2, 3), "f4").size == 6
    assert "b = Add(a, c)" in str(g)


def test_immutable():
    g = _chain()
    with pytest.raises(TypeError):
        g.constants["c"] = np.zeros((2, 3), np.float32)  # type: ignore[index]
    with pytest.raises(ValueError):
        g.constants["c"][0, 0] = 5
    with pytest.raises(TypeError):
        g.nodes[2].attrs["note"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        g.name = "other"  # type: ignore[misc]


def test_rejects_use_before_definition():
    g = _chain()
    with pytest.raises(GraphError, match="node 'add' .* reads 'a' before it is defined"):
        g.replace(nodes=(g.nodes[1], g.nodes[0], g.nodes[2]))
    assert issubclass(GraphError, TensorweaveError)


def test_rejects_missing_type_and_duplicate_definition():
    g = _chain()
    types = dict(g.types)
    del types["b"]
    with pytest.raises(GraphError, match="no type for 'b'"):
        g.replace(types=types)
    with pytest.raises(GraphError, match="redefines 'a'"):
        g.replace(nodes=g.nodes + (Node("Relu", "again", ("x",), ("a",)),))


def test_topological_order_sorts_and_detects_cycles():
    g = _chain()
    shuffled = (g.nodes[2], g.nodes[0], g.nodes[1])
    assert [n.name for n in topological_order(shuffled, ["x", "c"])] == ["r", "add", "mul"]
    with pytest.raises(GraphError, match="cycle"):
        topological_order((Node("Relu", "p", ("q_out",), ("p_out",)), Node("Relu", "q", ("p_out",), ("q_out",))), [])


def test_subgraph_and_prune():
    g = _chain()
    sub = g.subgraph([g.nodes[1]])
    assert sub.inputs == ("a",) and sub.outputs == ("b",) and set(sub.constants) == {"c"}
    sub2 = g.subgraph(g.nodes[:2])
    assert sub2.inputs == ("x",) and sub2.outputs == ("a", "b")  # a is read later by mul
    dead = g.replace(nodes=g.nodes + (Node("Neg", "dead", ("x",), ("z",)),),
                     types={**g.types, "z": TensorType((2, 3), "float32")})
    assert [n.name for n in dead.prune().nodes] == ["r", "add", "mul"]
