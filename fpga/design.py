"""What the FPGA flow builds: the accelerator for a config, or the small demo design.

A design is named by a config (preset name or YAML path) or by `demo` (`fpga.demo.DotDemo`, with the
accelerator's ports). `write_design` writes its Verilog (module `tensorweave_top`) into a folder and
returns the file with its sha256, which keys every cached FPGA result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.lib import wiring

from ..configs import load_config

TOP = "tensorweave_top"
DEMO = "demo"


@dataclass(frozen=True)
class DesignSource:
    name: str           # config name, or "demo"
    verilog: Path       # tensorweave_top.v
    sha256: str
    bus_width: int
    digest: str         # the config digest ("demo" for the demo design)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def design_component(name: str) -> wiring.Component:
    """The Amaranth component for design `name` (a fresh instance)."""
    if name == DEMO:
        from .demo import DotDemo
        return DotDemo(64)
    config = load_config(name)
    from ..hw.top import Accelerator
    return Accelerator(config)


def design_bus_width(name: str) -> int:
    return 64 if name == DEMO else load_config(name).bus_width


def write_design(name: str, out_dir: Path) -> DesignSource:
    """Write design `name` as `out_dir/tensorweave_top.v` (+ `.json` metadata) and describe it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    verilog = out_dir / f"{TOP}.v"
    if name == DEMO:
        from amaranth.back import verilog as amaranth_verilog
        verilog.write_text(amaranth_verilog.convert(design_component(DEMO), name=TOP))
        sha = _sha256(verilog)
        (out_dir / f"{TOP}.json").write_text(json.dumps({"design": DEMO, "verilog_sha256": sha}, indent=2))
        return DesignSource(DEMO, verilog, sha, 64, DEMO)
    config = load_config(name)
    from ..hw.verilog import generate
    generated = generate(config, out_dir)
    path = Path(generated.verilog)
    return DesignSource(config.name, path, _sha256(path), config.bus_width, config.digest)
