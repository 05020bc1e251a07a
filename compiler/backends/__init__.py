"""Code-generating back ends of the compiler: `cpu` (generated C, compiled with the system compiler)."""
