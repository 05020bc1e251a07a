"""Verilog and JSON metadata for one config: `generate(config, out_dir) -> GeneratedRTL`.

Writes `tensorweave_top.v` (module `tensorweave_top`, ports `clk`, `rst`, `irq`, `dram__*`,
`ctrl__*`) and `tensorweave_top.json`: the ports with widths and directions, the register map,
the error codes, the config (dict and digest) and the sha256 of the Verilog, so harnesses and
board wrappers can check they were built for the same design point.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from ..configs import AccelConfig
from ..contract.error_codes import ERROR_CODES
from ..contract.registers import DATA_WIDTH, REGISTERS, config_digest_value
from ..errors import TensorweaveError
from .top import Accelerator

TOP_NAME = "tensorweave_top"
LINT_WAIVERS = Path(__file__).resolve().parent / "lint_waivers.vlt"


class RTLError(TensorweaveError, RuntimeError):
    """Generating or checking the RTL failed; the message says which step and why."""


@dataclass(frozen=True)
class GeneratedRTL:
    verilog: Path
    metadata: Path
    digest: str          # the config digest
    verilog_sha256: str


def ports(component: wiring.Component) -> list[dict[str, object]]:
    """Verilog ports of the top level, in signature order, plus clk and rst."""
    out: list[dict[str, object]] = [{"name": "clk", "direction": "input", "width": 1},
                                     {"name": "rst", "direction": "input", "width": 1}]
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        out.append({"name": name, "direction": "output" if member.flow == wiring.Out else "input",
                    "width": member.shape.width if hasattr(member.shape, "width") else len(_value)})
    return out


def convert(config: AccelConfig) -> tuple[str, Accelerator]:
    top = Accelerator(config)
    text = verilog.convert(top, name=TOP_NAME, emit_src=False)
    return text, top


def generate(config: AccelConfig, out_dir: str | Path) -> GeneratedRTL:
    """Write the Verilog and its JSON metadata for `config` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RTLError(f"cannot create output directory '{out}': {exc.strerror}") from None
    text, top = convert(config)
    sha = hashlib.sha256(text.encode()).hexdigest()
    vpath = out / f"{TOP_NAME}.v"
    vpath.write_text(text)
    meta = {
        "top": TOP_NAME,
        "config": config.to_dict(),
        "config_digest": config.digest,
        "config_digest_register": config_digest_value(config),
        "verilog_sha256": sha,
        "clock": {"port": "clk", "reset": "rst", "reset_active": "high", "reset_sync": True},
        "ports": ports(top),
        "registers": [{"name": r.name, "offset": r.offset, "width": DATA_WIDTH, "access": r.access, "doc": r.doc}
                      for r in REGISTERS],
        "error_codes": {str(e.code): e.message for e in ERROR_CODES},
    }
    jpath = out / f"{TOP_NAME}.json"
    jpath.write_text(json.dumps(meta, indent=1) + "\n")
    return GeneratedRTL(vpath, jpath, config.digest, sha)
