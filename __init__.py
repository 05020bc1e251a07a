"""tensorweave: a hardware-software co-design toolkit for VTA-like tensor accelerators.

Everything is driven by one accelerator config (`tensorweave.configs`) and one instruction-set
description (`tensorweave.isa`); see README.md for the tour.
"""

__version__ = "0.1.0"
