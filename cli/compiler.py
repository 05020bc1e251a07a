"""`tensorweave quantize | compile | run`: thin commands over tensorweave.compiler."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .options import named_npy_file, nonneg_int, positive_int
from .outputs import OutputError, check_output, new_folder, write_file


def cmd_quantize(args: argparse.Namespace) -> int:
    import onnx

    from ..compiler.frontend import load_model, parse_input_shapes
    from ..compiler.quantize import load_samples, quantize_model

    output = check_output(args.output, force=args.force, inputs=[args.model])
    model = load_model(args.model)
    shapes = parse_input_shapes(args.input_shape)
    data = load_samples(args.data, model) if args.data else None
    quantized = quantize_model(model, samples=args.samples, data=data, seed=args.seed, input_shapes=shapes,
                               scales=args.scales)
    write_file(output, lambda tmp: onnx.save(quantized, str(tmp)))
    counts: dict[str, int] = {}
    for node in quantized.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    source = f"{len(data)} samples from {args.data}" if data else f"{args.samples} random samples (seed {args.seed})"
    kind = "power-of-two scales" if args.scales == "pow2" else "onnxruntime's scales"
    print(f"wrote {output}: int8 QDQ ({kind}), calibrated on {source}; "
          f"{counts.get('QuantizeLinear', 0)} QuantizeLinear, {counts.get('DequantizeLinear', 0)} DequantizeLinear")
    return 0


def _compile(args: argparse.Namespace, progress: bool):
    from ..compiler.frontend import parse_input_shapes
    from ..compiler.pipeline import compile_model, load_compiled

    if Path(args.model).is_dir():
        return load_compiled(args.model, progress=progress)
    return compile_model(args.model, args.config, target=args.target,
                         input_shapes=parse_input_shapes(args.input_shape), progress=progress,
                         gpu_api=getattr(args, "gpu_api", "auto"), tensor_cores=getattr(args, "tensor_cores", False))


def _model_inputs(args: argparse.Namespace) -> list[Path]:
    """The files the command reads: the model, or a compiled folder's model.onnx and settings.json."""
    from ..compiler.compiled import SETTINGS_FILE

    model = Path(args.model)
    return [model / "model.onnx", model / SETTINGS_FILE] if model.is_dir() else [model]


def cmd_compile(args: argparse.Namespace) -> int:
    from ..compiler.compiled import SETTINGS_FILE

    output = None
    if args.output:
        # An earlier compiled folder (settings.json) may be replaced; checked before the minutes of compiling.
        output = check_output(args.output, "folder", force=args.force, marker=SETTINGS_FILE)
        if Path(args.model).is_dir() and _same_folder(Path(args.model), output):
            raise OutputError(f"-o {output} is the compiled folder being loaded; give another folder")
    start = time.perf_counter()
    compiled = _compile(args, progress=True)
    took = time.perf_counter() - start
    if args.explain:
        print(compiled.explain())
    else:
        print(compiled.table())
    if output:
        with new_folder(output) as tmp:
            compiled.save(tmp)
        path = output
        print(f"wrote {path}/ (model.onnx, settings.json, plan.txt, {compiled.target} layer programs)")
    print(f"compiled in {took:.1f} s")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..compiler.run import (
        compare_outputs,
        format_agreement,
        format_step_agreement,
        load_inputs,
        reference_outputs,
        step_agreement,
        steps_ok,
    )

    output = None
    if args.output:
        output = check_output(args.output, force=args.force, inputs=[*_model_inputs(args), *_input_files(args)])
    compiled = _compile(args, progress=True)
    inputs = load_inputs(compiled, args.input, seed=args.seed)
    start = time.perf_counter()
    outputs = compiled.run(inputs, engine=args.engine, progress=True)
    took = time.perf_counter() - start
    print(compiled.table(timings=True))
    where = f"accelerator ({compiled.config.name}, {args.engine} engine)" if compiled.target == "accel" else "CPU"
    if compiled.target == "gpu":
        where = f"GPU ({compiled.steps[0].executable.device})"
    print(f"ran on the {where} in {took:.2f} s")
    np.set_printoptions(threshold=20, edgeitems=5, linewidth=110)
    for name, value in outputs.items():
        print(f"output {name} {value.dtype}{list(value.shape)}: {value.reshape(-1)[:10]}")
    if output:
        # written to exactly the path given (np.savez would add ".npz" to a name without it)
        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **outputs)
        write_file(output, save)
        print(f"wrote {output} ({', '.join(outputs)})")
    if args.profile:
        if compiled.target != "gpu":
            print("--profile times GPU kernels: use it with --target gpu")
            return 2
        from ..compiler.backends.gpu import format_profile

        exe = compiled.steps[0].executable
        print(format_profile(exe.profile(inputs), exe.device))
    ok = True
    if args.check:
        agreements = compare_outputs(compiled.graph, outputs, reference_outputs(compiled.model, inputs))
        print(format_agreement(agreements))
        ok = all(a.ok for a in agreements)
        if compiled.offload_warning():  # the check passed on the CPU alone: say so after it, too
            print(compiled.offload_warning())
    if args.check_layers:
        rows = step_agreement(compiled, inputs, engine=args.engine)
        print(format_step_agreement(rows))
        ok = ok and steps_ok(rows)
    return 0 if ok else 1


def _same_folder(a: Path, b: Path) -> bool:
    return b.exists() and a.resolve() == b.resolve()


def _input_files(args: argparse.Namespace) -> list[str]:
    return [spec.partition("=")[2] for spec in args.input or () if "=" in spec]


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="quantize a float ONNX model to int8 QDQ (onnxruntime's quantizer)",
                              description="Calibrate with onnxruntime's static quantizer (MinMax) on random or "
                                          "given inputs; int8 symmetric activations, per-channel int8 weights.")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True, help="the quantized model (.onnx)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--samples", type=positive_int, default=8, help="random calibration inputs (default 8)")
    group.add_argument("--data", help=".npz with one array per input, first axis = samples")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--scales", choices=("pow2", "onnxruntime"), default="pow2",
                   help="pow2 (default): round every scale up to a power of two, so the accelerator requantizes "
                        "with one rounding shift and matches onnxruntime bit for bit; onnxruntime: keep its scales")
    p.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...", help="fix a dynamic input shape")
    p.set_defaults(func=cmd_quantize)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="ONNX model (QDQ int8 for the accelerator), or a directory from compile -o")
        p.add_argument("--config", default="vta-default", help="accelerator config (preset or YAML)")
        p.add_argument("--target", choices=("accel", "cpu", "gpu"), default="accel")
        p.add_argument("--gpu-api", choices=("auto", "opencl", "cuda"), default="auto",
                       help="--target gpu: CUDA or OpenCL (auto: CUDA when a CUDA device works, else OpenCL)")
        p.add_argument("--tensor-cores", action="store_true",
                       help="--target gpu on CUDA: int8 x int8 convolutions and matrix products on Tensor Cores "
                            "(wmma; exact)")
        p.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...", help="fix a dynamic input shape")

    p = subparsers.add_parser("compile", help="compile an ONNX model for the accelerator (+ CPU) and show the plan",
                              description="Partition the model between the accelerator and the CPU, compile both "
                                          "parts, and print the per-layer plan.")
    common(p)
    p.add_argument("--explain", action="store_true", help="print tiles, instruction counts and cycles per layer")
    p.add_argument("-o", "--output", help="save the compiled model to this folder (a new or empty one, or an "
                                          "earlier compiled model's, which is replaced)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder that is not a compiled "
                                                        "model (its files of the same names are replaced)")
    p.set_defaults(func=cmd_compile)

    p = subparsers.add_parser("run", help="compile and run an ONNX model; --check compares with onnxruntime",
                              description="Run a model on the simulated accelerator or the CPU back end with "
                                          "seeded random inputs (or --input NAME=FILE.npy).")
    common(p)
    p.add_argument("--engine", choices=("functional", "rtl"), default="functional")
    p.add_argument("--input", action="append", type=named_npy_file, metavar="NAME=FILE.npy")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the random inputs")
    p.add_argument("--check", action="store_true", help="compare the outputs with onnxruntime on the same model")
    p.add_argument("--check-layers", action="store_true",
                   help="also run each layer on onnxruntime's inputs and compare its int8 output (isolates each "
                        "layer's rounding from differences propagated from earlier layers)")
    p.add_argument("--profile", action="store_true",
                   help="--target gpu: time every kernel on its own and print the slowest and the time per op type")
    p.add_argument("-o", "--output", help="write the outputs to this file (NumPy .npz format, exactly this name)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_run)
