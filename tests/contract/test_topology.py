"""Units, token queues and the dispatch rule (which unit runs an instruction), as VTA has them."""

import pytest
from tensorweave.configs import load_config
from tensorweave.contract.topology import (
    TOKEN_QUEUES,
    UNITS,
    neighbour,
    sides_of,
    token_queue,
    unit_of,
    unit_of_memory,
)
from tensorweave.isa import Insn, ISAError, build_isa


def test_unit_of_routes_like_vta():
    isa = build_isa(load_config("tiny"))
    mem = isa.enums["memory_id"]
    assert [unit_of(isa, Insn("LOAD", {"memory_id": mem[m]})) for m in ("INP", "WGT", "UOP", "ACC")] == [
        "load", "load", "compute", "compute"]
    assert unit_of(isa, Insn("STORE", {"memory_id": mem["OUT"]})) == "store"
    assert unit_of(isa, Insn("GEMM", {})) == unit_of(isa, Insn("ALU", {})) == unit_of(isa, Insn("FINISH", {})) == \
        "compute"
    with pytest.raises(ISAError, match="STORE must use memory_id OUT, not INP"):
        unit_of(isa, Insn("STORE", {"memory_id": mem["INP"]}))
    with pytest.raises(ISAError, match="LOAD cannot target memory OUT"):
        unit_of(isa, Insn("LOAD", {"memory_id": mem["OUT"]}))
    with pytest.raises(ISAError, match="7 is not a valid memory_id"):
        unit_of(isa, Insn("LOAD", {"memory_id": 7}))
    assert unit_of_memory("LOAD", "WGT") == "load"


def test_units_form_a_pipeline_of_token_queues():
    assert UNITS == ("load", "compute", "store")
    assert [neighbour(u, "prev") for u in UNITS] == [None, "load", "compute"]
    assert [neighbour(u, "next") for u in UNITS] == ["compute", "store", None]
    assert [sides_of(u) for u in UNITS] == [("next",), ("prev", "next"), ("prev",)]
    assert list(TOKEN_QUEUES.values()) == ["load->compute", "compute->load", "compute->store", "store->compute"]
    assert token_queue("compute", "prev", "pop") == "load->compute"
    assert token_queue("compute", "prev", "push") == "compute->load"
    assert token_queue("compute", "next", "push") == "compute->store"
    assert token_queue("store", "prev", "pop") == "compute->store"
    assert token_queue("load", "prev", "pop") is None and token_queue("store", "next", "push") is None


def test_the_simulators_route_through_the_contract(monkeypatch):
    """The functional simulator and the cycle model dispatch with `contract.topology.unit_of`."""
    import tensorweave.sim.cycle as cycle
    import tensorweave.sim.functional as functional
    from tensorweave.isa import assemble

    config = load_config("tiny")
    program = assemble("load.inp y_size=0\nfinish\n", config)
    seen = []

    def spy(isa, insn):
        seen.append(insn.op)
        return unit_of(isa, insn)

    monkeypatch.setattr(functional, "unit_of", spy)
    monkeypatch.setattr(cycle, "unit_of", spy)
    functional.run_functional(program)
    assert seen == ["LOAD", "FINISH"]
    cycle.estimate_cycles(program)
    assert seen[2:] and set(seen[2:]) <= {"LOAD", "FINISH"}
