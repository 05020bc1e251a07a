"""tensorweave.compiler: ONNX models onto the accelerator, with the CPU for the rest.

    frontend.py   ONNX -> graph IR (`from_onnx`, `to_onnx`); graph.py holds the IR (frozen dataclasses)
    quantize.py   float ONNX -> int8 QDQ with onnxruntime's quantizer (`quantize_model`)
    partition.py  DQ -> Conv/Gemm/MatMul [-> Relu] -> Q layers fused into accelerator nodes
    accel_ops.py  the accelerator-op records (conv, matmul) the partitioner and the pipeline iterate over
    pipeline.py   `compile_model(model, config, target)`: the named list of passes (`PASSES`), `load_compiled`
    compiled.py   `CompiledModel` (.run on an engine, .save) and its steps; options.py `TargetOptions`
    report.py     the per-layer rows, `.table()` and `.explain()`
    run.py        onnxruntime reference and the agreement rules (`compare_outputs`, `step_agreement`)
    models.py     seeded models built in code (small CNN, ResNet-18); demo.py the end-to-end demo
    accel/        accelerator kernels (compile_conv / compile_matmul); loopnest/ the loop-nest IR and tensorizer
    backends/cpu/ the C back end for everything else

Submodules are imported on use (onnx and onnxruntime are heavy to import).
"""
