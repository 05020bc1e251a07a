"""tensorweave.contract: what the accelerator and its software agree on, written once, without Amaranth.

Layer: above `configs` and `isa`, below `sim`, `hw`, `cosim`, `fpga` and `compiler`. Import the
submodules directly (this package imports nothing at import time, so that every layer can use any
part of it without pulling in the rest):

    engine.py     the run interface every engine implements (`Engine`, `CostModel`, `RunResult`) and
                  the registry that resolves engine and cost-model names without importing them
    alu.py        one record per ALU operation (name, opcode, NumPy semantics, operand, area facts),
                  read by configs, isa, sim, hw, the tensorizer and the area model
    registers.py  the AXI4-Lite register map (names, offsets, access), STATUS and UNIT_STATE bits
    error_codes.py  the ERROR_CODE values with their names and messages
    topology.py   the units, their token queues and `unit_of` (which unit runs an instruction)
    memories.py   one description per memory (UOP, WGT, INP, ACC, OUT) derived from the config
    codegen.py    the C form of the above, `generated/contract.h` (with the ISA's files: `isa generate`)
"""
