"""Fuzzing the low-level loaders: config YAML, ISA YAML, assembler text, program file.

Rule: whatever bytes or values a loader is given, it either succeeds or raises the project's error
class (TensorweaveError) -- never another exception, never a hang. Each loader has two targets:
mutated bytes of valid files (bit flips, cuts, insertions, deletions, duplicated runs) and
structured mutations (random values of the wrong type per config field, random edits of the ISA
description and of a program's manifest, random assembler lines). Each input runs under an alarm
(PER_INPUT_SECONDS) besides Hypothesis' deadline, so a hang fails instead of stalling the run.

Tiers: the default run takes DEFAULT_EXAMPLES inputs per target; the `slow` variants take
TW_FUZZ_EXAMPLES (default 100,000) per target and, with TW_FUZZ_REPORT=FILE, append their counts
to FILE as JSON lines (docs/reliability.md quotes them); TW_FUZZ_PROGRESS=1 prints the counts every
1,000 inputs. Run them with `pytest -m slow -s tests/fuzz`.
"""

from __future__ import annotations

import atexit
import copy
import io
import itertools
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fuzzing import mutated, outcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorweave.configs import load_config, preset_names
from tensorweave.configs.config import PRESET_DIR
from tensorweave.isa import Program, assemble, build_isa
from tensorweave.isa.asm import read_source
from tensorweave.isa.program import payload_digest
from tensorweave.isa.spec import ISA_YAML, enum_members
from tensorweave.sim.programs import blocked_gemm
from tensorweave.sim.random_programs import random_program_text

# Inputs per target in the default run (the ISA target is the slowest: each input parses 8 KiB of YAML).
DEFAULT_EXAMPLES = int(os.environ.get("TW_FUZZ_DEFAULT_EXAMPLES", "300"))
DEFAULT_ISA_EXAMPLES = int(os.environ.get("TW_FUZZ_DEFAULT_EXAMPLES", "200"))
SLOW_EXAMPLES = int(os.environ.get("TW_FUZZ_EXAMPLES", "100000"))
WORK = Path(tempfile.mkdtemp(prefix="tw-fuzz-"))
atexit.register(shutil.rmtree, WORK, True)
_names = itertools.count()


STATS: dict[str, Counter] = {}


def run_loader(target: str, load: Callable[[], Any]) -> None:
    """Run one input and count its outcome under `target` (fuzzing.outcome: success or a TensorweaveError)."""
    counts = STATS.setdefault(target, Counter())
    try:
        outcome(counts, load)
    finally:
        if os.environ.get("TW_FUZZ_PROGRESS") and counts["inputs"] % 1000 == 0:
            print(json.dumps({"target": target, "at": time.time(), **counts}), flush=True)


def fresh_path(suffix: str) -> Path:
    """A new file name per input: the ISA builder caches by path."""
    return WORK / f"f{next(_names)}{suffix}"


def loaded_from_file(raw: bytes, suffix: str, load: Callable[[Path], Any]) -> Callable[[], Any]:
    def go() -> Any:
        path = fresh_path(suffix)
        path.write_bytes(raw)
        try:
            return load(path)
        finally:
            path.unlink()
    return go


# --- byte mutations -------------------------------------------------------------------------------
SPECIAL = [b"\0", b"\xff", b":", b"[", b"{", b"- ", b"&a ", b"*a", b"\n  ", b"-1", b"99999999999999999999",
           b"!!python/object:os.system ", b"<<: ", b"\t", b"\xef\xbb\xbf", b"#", b"@", b"=", b",", b"0x"]




WILD = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.integers(-3, 300),
    st.floats(allow_nan=True), st.text(max_size=12),
    st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=4), st.lists(st.text(max_size=3), max_size=2)),
             max_size=4),
    st.dictionaries(st.text(max_size=4), st.one_of(st.integers(-5, 70), st.text(max_size=4)), max_size=3),
)


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=timedelta(seconds=5), derandomize=False,
                    suppress_health_check=list(HealthCheck), database=None)


def report(target: str, started: float) -> None:
    out = os.environ.get("TW_FUZZ_REPORT")
    counts = dict(STATS.get(target, Counter()))
    line = {"target": target, "seconds": round(time.monotonic() - started, 1), **counts}
    print(json.dumps(line))
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(line) + "\n")


# --- config YAML ------------------------------------------------------------------------------------
CONFIG_SEEDS = [(PRESET_DIR / f"{name}.yaml").read_bytes() for name in preset_names()]
# Every field's valid values (their combinations can still be invalid: a row under a byte, a buffer
# smaller than a row, a format overflowing its word).
GOOD = {
    "name": st.sampled_from(["a", "x-1", "tiny"]), "batch": st.sampled_from([1, 2, 4, 8, 16]),
    "block_in": st.sampled_from([2, 4, 8, 16, 32, 64]), "block_out": st.sampled_from([2, 4, 8, 16, 32, 64]),
    "inp_width": st.sampled_from([2, 4, 8]), "wgt_width": st.sampled_from([2, 4, 8]),
    "acc_width": st.sampled_from([16, 32]), "out_width": st.sampled_from([4, 8]),
    "uop_width": st.sampled_from([32, 64]), "bus_width": st.sampled_from([32, 64, 512]),
    "uop_buffer_bytes": st.sampled_from([2 ** k for k in range(6, 21)]),
    "inp_buffer_bytes": st.sampled_from([2 ** k for k in range(4, 23)]),
    "wgt_buffer_bytes": st.sampled_from([2 ** k for k in range(4, 23)]),
    "acc_buffer_bytes": st.sampled_from([2 ** k for k in range(4, 23)]),
    "alu_ops": st.lists(st.sampled_from(["MIN", "MAX", "ADD", "SHR", "MUL", "RSHR"]), min_size=1, unique=True),
    "clock_mhz": st.integers(1, 2000), "cmd_queue_depth": st.sampled_from([2, 16, 4096]),
    "dep_queue_depth": st.sampled_from([2, 256]),
}
NEAR = {  # values just outside a field's range, of the right type
    "batch": [0, 3, 32], "block_in": [1, 12, 128], "inp_width": [1, 16], "acc_width": [8, 64],
    "uop_buffer_bytes": [32, 3 * 1024], "clock_mhz": [0, -1, 2001], "alu_ops": [[], ["MIN", "MIN"], ["DIV"],
                                                                                [["MIN"]], [1]],
    "name": ["", "a b", "ü"], "cmd_queue_depth": [1, 8192],
}


@st.composite
def config_documents(draw: st.DrawFn) -> bytes:
    doc: dict[Any, Any] = {key: draw(good) for key, good in GOOD.items()}
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(sorted(GOOD)))
        action = draw(st.sampled_from(["wild", "near", "delete", "unknown"]))
        if action == "wild":
            doc[key] = draw(WILD)
        elif action == "near" and key in NEAR:
            doc[key] = draw(st.sampled_from(NEAR[key]))
        elif action == "delete":
            doc.pop(key, None)
        elif action == "unknown":
            doc[draw(st.text(max_size=8))] = draw(WILD)
    top = doc if draw(st.integers(0, 19)) else draw(WILD)
    return yaml.safe_dump(top).encode()


def load_config_and_isa(path: Path) -> Any:
    return build_isa(load_config(path))


def check_config_bytes(raw: bytes) -> None:
    run_loader("config YAML", loaded_from_file(raw, ".yaml", load_config_and_isa))


@fuzz_settings(DEFAULT_EXAMPLES)
@given(st.one_of(mutated(CONFIG_SEEDS, SPECIAL), config_documents()))
def test_config_loader_fuzz(raw):
    check_config_bytes(raw)


@pytest.mark.slow
def test_config_loader_fuzz_slow():
    started = time.monotonic()
    fuzz_settings(SLOW_EXAMPLES)(given(st.one_of(mutated(CONFIG_SEEDS, SPECIAL), config_documents()))(check_config_bytes))()
    report("config YAML", started)


# --- ISA YAML ---------------------------------------------------------------------------------------
ISA_SEED = ISA_YAML.read_bytes()
ISA_DATA = yaml.safe_load(ISA_SEED)
NAMES = ["opcode", "memory_id", "sram_addr", "loop_iter", "uop_index_width", "acc_index_width", "block_in",
         "batch", "uop_width", "nosuch", "alu_opcode"]
EXPRESSIONS = st.recursive(
    st.one_of(st.integers(-5, 300).map(str), st.sampled_from(NAMES), st.sampled_from(["", "1.5", "(", "a b"])),
    lambda kids: st.one_of(
        st.tuples(kids, st.sampled_from(["+", "-", "*", "//", "**", "%", "/", "<<"]), kids).map(" ".join),
        kids.map(lambda k: f"clog2({k})"), kids.map(lambda k: f"-{k}"),
        st.lists(kids, max_size=3).map(lambda ks: f"{'max' if len(ks) % 2 else 'min'}({', '.join(ks)})"),
        st.lists(kids, max_size=2).map(lambda ks: f"clog2({', '.join(ks)})")),
    max_leaves=8)
ISA_VALUES = st.one_of(WILD, EXPRESSIONS, st.integers(-70, 2000),
                       st.fixed_dictionaries({"name": st.sampled_from(NAMES + ["x", "unused_3"]),
                                              "width": st.one_of(EXPRESSIONS, st.integers(-2, 200))}),
                       st.fixed_dictionaries({"pad_to": st.integers(-8, 300)}))


@st.composite
def edited_tree(draw: st.DrawFn, tree: Any, values: st.SearchStrategy) -> Any:
    """`tree` with 1-4 random edits: a value replaced, a key or list entry deleted, added or repeated."""
    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, 4))):
        node = tree
        while isinstance(node, dict | list) and node and draw(st.integers(0, 2)):
            key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else range(len(node))))
            if not isinstance(node[key], dict | list):
                break
            node = node[key]
        if not isinstance(node, dict | list) or not node:
            continue
        key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else range(len(node))))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "repeat"]))
        if action == "replace":
            node[key] = draw(values)
        elif action == "delete":
            del node[key]
        elif isinstance(node, dict):
            node[draw(st.sampled_from(NAMES + ["fields", "doc", "pad_to", "width", "enum", "signed"]))] = draw(values)
        else:
            node.insert(key, copy.deepcopy(node[key]) if action == "repeat" else draw(values))
    return tree


def load_isa(path: Path) -> Any:
    enum_members("memory_id", path)
    return build_isa(load_config("tiny"), path), build_isa(load_config("vta-default"), path)


def check_isa_bytes(raw: bytes) -> None:
    run_loader("ISA YAML", loaded_from_file(raw, ".yaml", load_isa))


ISA_INPUTS = st.one_of(mutated([ISA_SEED], SPECIAL),
                       edited_tree(ISA_DATA, ISA_VALUES).map(lambda t: yaml.safe_dump(t, sort_keys=False).encode()))


@fuzz_settings(DEFAULT_ISA_EXAMPLES)
@given(ISA_INPUTS)
def test_isa_loader_fuzz(raw):
    check_isa_bytes(raw)


@pytest.mark.slow
def test_isa_loader_fuzz_slow():
    started = time.monotonic()
    fuzz_settings(SLOW_EXAMPLES)(given(ISA_INPUTS)(check_isa_bytes))()
    report("ISA YAML", started)


# --- assembler text ----------------------------------------------------------------------------------
TINY = load_config("tiny")
ASM_SEEDS = [blocked_gemm(TINY, 2, 8, 8), random_program_text(TINY, 3)]
FIELDS = sorted({f.name for fmt in build_isa(TINY).formats.values() for f in fmt.fields} | {"bogus", "unused_7"})
ASM_VALUES = st.one_of(st.integers(-(2 ** 40), 2 ** 40).map(str), st.integers(-3, 70).map(str),
                       st.integers(0, 2 ** 20).map(hex), st.sampled_from(["@A", "@uops", "@W+3", "@C+-1", "@nope",
                                                                          "INP", "max", "", "1e3", "0b12", "@"]))
TOKENS = st.one_of(st.tuples(st.sampled_from(FIELDS), ASM_VALUES).map("=".join), st.sampled_from(FIELDS))
OPS = st.sampled_from(["load.inp", "load.wgt", "load.uop", "load.acc", "store.out", "store", "gemm", "alu.max",
                       "alu.shr", "alu.div", "finish", "LOAD.XYZ", "gemm.inp", "nop", "LOAD"])
DIMS = st.lists(st.one_of(st.integers(-2, 40), st.integers(0, 2 ** 40)), min_size=1, max_size=4)
TENSOR_LINES = st.tuples(
    st.sampled_from(["A", "W", "C", "Z", "A", "x/y"]), st.sampled_from(["input", "weight", "output", "const", "bogus"]),
    st.sampled_from(["int8", "int4", "int2", "uint8", "int32", "float32"]),
    DIMS.map(lambda ds: ",".join(map(str, ds))),
    st.lists(st.one_of(st.integers(-16, 4096).map(lambda v: f"offset={v}"),
                       st.sampled_from(["init=zeros", "init=random:3", "init=random:-1", "init=values:1,2",
                                        "init=values:", "init=bogus", "shape=1", "offset=x"])), max_size=2),
).map(lambda t: " ".join([".tensor", *t[:4], *t[4]]))
ASM_LINES = st.one_of(
    st.tuples(OPS, st.lists(TOKENS, max_size=5)).map(lambda t: " ".join([t[0], *t[1]])),
    TENSOR_LINES,
    st.lists(st.tuples(st.sampled_from(["dst", "src", "wgt", "bad"]), ASM_VALUES).map("=".join), max_size=4)
    .map(lambda kv: " ".join([".uop", *kv])),
    st.text(max_size=30))


@st.composite
def edited_source(draw: st.DrawFn) -> bytes:
    lines = draw(st.sampled_from(ASM_SEEDS)).splitlines()
    for _ in range(draw(st.integers(1, 5))):
        pos = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["insert", "replace", "delete"]))
        if action != "insert" and pos < len(lines):
            del lines[pos]
        if action != "delete":
            lines.insert(pos, draw(ASM_LINES))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def load_asm(path: Path) -> Any:
    return assemble(read_source(path), TINY, source=str(path))


def check_asm_bytes(raw: bytes) -> None:
    run_loader("assembler text", loaded_from_file(raw, ".s", load_asm))


ASM_INPUTS = st.one_of(mutated([s.encode() for s in ASM_SEEDS], SPECIAL), edited_source())


@fuzz_settings(DEFAULT_EXAMPLES)
@given(ASM_INPUTS)
def test_asm_loader_fuzz(raw):
    check_asm_bytes(raw)


@pytest.mark.slow
def test_asm_loader_fuzz_slow():
    started = time.monotonic()
    fuzz_settings(SLOW_EXAMPLES)(given(ASM_INPUTS)(check_asm_bytes))()
    report("assembler text", started)


# --- program file ------------------------------------------------------------------------------------
def _program_seed() -> tuple[bytes, dict[str, Any], dict[str, bytes]]:
    path = WORK / "seed.twp"
    assemble(blocked_gemm(TINY, 2, 8, 8), TINY).save(path)
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    path.unlink()
    return raw, manifest, members


PROGRAM_SEED, MANIFEST, MEMBERS = _program_seed()
ARRAYS = st.one_of(
    st.sampled_from([np.zeros((2, 2, 1, 4), np.int64), np.ones(3), np.array([2 ** 40]), np.zeros((1, 2, 1, 4), bool),
                     np.zeros(0, np.int8), np.array(["x"])]).map(lambda a: _npy(a)),
    st.binary(max_size=64))


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


@st.composite
def edited_program(draw: st.DrawFn) -> bytes:
    body = {k: v for k, v in MANIFEST.items() if k != "sha256"}
    body = draw(edited_tree(body, st.one_of(WILD, st.integers(0, 2 ** 140).map(lambda w: f"{w:x}"))))
    members = dict(MEMBERS)
    if draw(st.booleans()):
        name = draw(st.sampled_from([*members, "data/zz.npy", "other.txt"]))
        members[name] = draw(ARRAYS)
    manifest = body | {"sha256": payload_digest(body, members)} if isinstance(body, dict) else body
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, raw in members.items():
            zf.writestr(name, raw)
    return buf.getvalue()


def check_program_bytes(raw: bytes) -> None:
    run_loader("program file", loaded_from_file(raw, ".twp", Program.load))


PROGRAM_INPUTS = st.one_of(mutated([PROGRAM_SEED], SPECIAL), edited_program())


@fuzz_settings(DEFAULT_EXAMPLES)
@given(PROGRAM_INPUTS)
def test_program_loader_fuzz(raw):
    check_program_bytes(raw)


@pytest.mark.slow
def test_program_loader_fuzz_slow():
    started = time.monotonic()
    fuzz_settings(SLOW_EXAMPLES)(given(PROGRAM_INPUTS)(check_program_bytes))()
    report("program file", started)


def test_the_fuzz_reaches_both_outcomes():
    """The targets are not vacuous: valid seeds load, and the mutations produce refusals."""
    for name, check, raw in [("config YAML", check_config_bytes, CONFIG_SEEDS[0]),
                             ("ISA YAML", check_isa_bytes, ISA_SEED),
                             ("assembler text", check_asm_bytes, ASM_SEEDS[0].encode()),
                             ("program file", check_program_bytes, PROGRAM_SEED)]:
        before = STATS.get(name, Counter())["accepted"]
        check(raw)
        assert STATS[name]["accepted"] == before + 1, name
        before = STATS[name]["refused"]
        check(raw[: len(raw) // 3] + b"\0\xff")
        assert STATS[name]["refused"] == before + 1, name
