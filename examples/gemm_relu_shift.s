# A hand-written blocked GEMM + ReLU + shift for the `tiny` config (block 4x4, batch 1):
#   C (2 x 8) = max(A (2 x 8) . W (8 x 8)^T, 0) >> 2
# A is packed as 2 row tiles x 2 reduction tiles of 1x4; W as 2 column tiles x 2 reduction tiles of 4x4.
#   tensorweave asm gemm_relu_shift --config tiny -o /tmp/g.twp && tensorweave sim /tmp/g.twp
.tensor A input int8 2,2,1,4 init=values:1,2,3,4,5,6,7,8,-1,-2,-3,-4,10,20,30,40
.tensor W weight int8 2,2,4,4 init=values:1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,-1,-1,-1,-1,2,2,2,2,0,0,0,0,1,-1,1,-1,3,0,0,0,0,3,0,0,0,0,3,0,0,0,0,3
.tensor C output int8 2,2,1,4
# micro-op k multiplies input tile (row, k) by weight tile (col, k) into accumulator row*2 + col
.uop dst=0 src=0 wgt=0
.uop dst=0 src=1 wgt=1
load.inp sram_base=0 dram_base=@A y_size=1 x_size=4 x_stride=4
load.wgt sram_base=0 dram_base=@W y_size=1 x_size=4 x_stride=4 push_next
load.uop sram_base=0 dram_base=@uops y_size=1 x_size=2 x_stride=2
gemm reset uop_begin=0 uop_end=1 iter_out=2 iter_in=2 dst_factor_out=2 dst_factor_in=1
gemm pop_prev uop_begin=0 uop_end=2 iter_out=2 iter_in=2 dst_factor_out=2 dst_factor_in=1 src_factor_out=2 wgt_factor_in=2
alu.max use_imm imm=0 uop_begin=0 uop_end=1 iter_out=4 iter_in=1 dst_factor_out=1 src_factor_out=1
alu.shr use_imm imm=2 uop_begin=0 uop_end=1 iter_out=4 iter_in=1 dst_factor_out=1 src_factor_out=1 push_next
store.out pop_prev push_prev sram_base=0 dram_base=@C y_size=1 x_size=4 x_stride=4
finish pop_next
