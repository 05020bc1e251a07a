import numpy as np
import pytest
from tensorweave.configs import load_config
from tensorweave.hw.simulate import simulate
from tensorweave.isa import assemble
from tensorweave.sim import run_functional


@pytest.fixture
def tiny():
    return load_config("tiny")


def values(a) -> str:
    return ",".join(str(int(v)) for v in np.asarray(a).ravel())


def run_both(program, **kwargs):
    """Run on the functional simulator and the Amaranth model; assert DRAM is equal byte for byte."""
    reference = run_functional(program)
    hardware = simulate(program, **kwargs)
    assert hardware.done and not hardware.error, hardware.registers
    assert bytes(hardware.dram) == bytes(reference.dram)
    for name, array in reference.outputs.items():
        assert np.array_equal(hardware.outputs[name], array)
    return reference, hardware


@pytest.fixture
def check():
    def _check(text: str, config, **kwargs):
        return run_both(assemble(text, config), **kwargs)
    return _check


@pytest.fixture
def fmt():
    return values
