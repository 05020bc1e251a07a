"""The software engines: the functional simulator (the ISA's definition) and the cycle model.

`functional.py` defines every instruction (`run_functional`), `cycle.py` estimates cycles
(`estimate_cycles`), and `engines.py` puts both behind the run interface of `contract/engine.py`
(engines "functional" and "cycle", cost model "cycle"). Co-simulation of the hardware is `cosim/`:
`sim` imports neither `hw` nor `cosim`.
"""

from .engines import CycleCostModel, CycleEngine, FunctionalEngine
from .functional import FunctionalSim, RunResult, SimError, Stats, alu_apply, run_functional

__all__ = ["CycleCostModel", "CycleEngine", "FunctionalEngine", "FunctionalSim", "RunResult", "SimError", "Stats",
           "alu_apply", "run_functional"]
