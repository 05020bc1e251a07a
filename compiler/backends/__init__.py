"""Code-generating back ends of the compiler: `cpu` (generated C, compiled with the system compiler) and `gpu`
(OpenCL C and CUDA C from the loop-nest IR); `common` holds what they share, `conformance` the ONNX node set."""
