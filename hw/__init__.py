"""The accelerator in Amaranth: `top.Accelerator(config)` and `verilog.generate(config, out_dir)`.

Modules: `axi` (port signatures), `arbiter` (the shared DRAM port), `fetch`, `load`, `compute`,
`store` (the units), `unit` (their common instruction sequence and error codes), `dma` (2-D
strided DMA reads), `core` (the pipelined GEMM/ALU), `scratchpad`, `queues` (command and token
queues), `top` (registers and wiring; the per-instruction timing model is in its docstring),
`verilog` and `lint` (Verilog, JSON metadata, Verilator lint), `simulate` (Amaranth-simulator
runs with an AXI DRAM model).
"""
