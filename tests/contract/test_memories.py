"""One description per memory, derived from the config and the ISA, for every preset."""

import numpy as np
import pytest
from tensorweave.configs import load_config, preset_names
from tensorweave.contract.memories import NAMES, memories, memory
from tensorweave.isa import ISAError, build_isa, element_bytes
from tensorweave.sim import FunctionalSim


@pytest.mark.parametrize("preset", preset_names())
def test_memories_agree_with_the_config_and_the_isa(preset):
    config = load_config(preset)
    found = memories(config)
    assert tuple(found) == NAMES
    assert {m.name: m.memory_id for m in found.values()} == dict(build_isa(config).enums["memory_id"])
    for m in found.values():
        assert m.row_bytes == element_bytes(config, m.name)     # the DRAM element a LOAD / STORE moves
    assert [found[n].depth for n in ("UOP", "WGT", "INP", "ACC", "OUT")] == [
        config.uop_depth, config.wgt_depth, config.inp_depth, config.acc_depth, config.acc_depth]
    assert [found[n].element_bits for n in ("UOP", "WGT", "INP", "ACC", "OUT")] == [
        config.uop_width, config.wgt_width, config.inp_width, config.acc_width, config.out_width]
    assert [found[n].index_width for n in ("UOP", "WGT", "INP", "ACC")] == [
        config.uop_index_width, config.wgt_index_width, config.inp_index_width, config.acc_index_width]
    assert not found["UOP"].signed and all(found[n].signed for n in ("WGT", "INP", "ACC", "OUT"))
    sim = FunctionalSim(config)
    for name, array in (("INP", sim.inp), ("WGT", sim.wgt), ("ACC", sim.acc), ("UOP", sim.uop)):
        assert array.shape == found[name].shape


def test_vta_default_numbers():
    found = memories(load_config("vta-default"))
    wgt, acc, uop = found["WGT"], found["ACC"], found["UOP"]
    assert (wgt.depth, wgt.lanes, wgt.row_bits, wgt.row_bytes, wgt.dtype) == (1024, (16, 16), 2048, 256, np.int8)
    assert (acc.depth, acc.lanes, acc.row_bytes, acc.dtype) == (2048, (1, 16), 64, np.int32)
    assert (uop.shape, uop.row_bytes, uop.dtype) == ((8192,), 4, np.uint32)
    assert memories(load_config("w4a8"))["WGT"].dtype == np.int8    # 4-bit values held in int8


def test_unknown_memory_is_named():
    with pytest.raises(ISAError, match="no memory 'PSUM'; memories: UOP, WGT, INP, ACC, OUT"):
        memory(load_config("tiny"), "PSUM")
