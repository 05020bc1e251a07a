"""Assembler input a careless or hostile user could give (issue 17, item 3): every problem an AsmError
naming the file and line; `read_source` reads a source file without a UnicodeDecodeError."""

import pytest
from tensorweave.configs import load_config
from tensorweave.isa import AsmError, assemble
from tensorweave.isa.asm import MAX_INIT_ELEMENTS, read_source

TINY = load_config("tiny")


@pytest.mark.parametrize("text, message", [
    # was numpy's ValueError (a negative seed)
    (".tensor A input int8 4 init=random:-1", r"x.s:1: seed -1 is negative; allowed: random:SEED with SEED >= 0"),
    # were accepted: a negative offset placed the tensor anywhere; a negative dimension gave a negative size
    (".tensor A input int8 4 offset=-16", r"x.s:1: offset -16 is negative; allowed: a byte offset >= 0"),
    (".tensor A input int8 4,-2", r"x.s:1: shape '4,-2' has a negative dimension"),
    # was a 128 MiB allocation (and MemoryError for larger shapes) before any check
    (f".tensor A input int8 {MAX_INIT_ELEMENTS + 1} init=zeros",
     fr"x.s:1: tensor 'A' has {MAX_INIT_ELEMENTS + 1} elements; init= allows at most {MAX_INIT_ELEMENTS}"),
    (".tensor A input int8 65536,65536,65536", r"x.s:1: tensor 'A': shape \(65536, 65536, 65536\) has more elements"),
    (".tensor A input int8 8589934592", r"x.s: tensor 'A' ends at byte \d+, beyond the largest DRAM image"),
    # found by the slow fuzz run: numpy's ValueError making zeros of shape (0, 39, 1966170, 15035368184)
    (".tensor A input int8 0,39,1966170,15035368184 init=zeros",
     r"x.s:1: tensor 'A': shape \(0, 39, 1966170, 15035368184\) has more elements than a DRAM image"),
    (".uop dst=-1", r"x.s:1: micro-op.dst = -1 does not fit its 6 bits"),
    ("gemm uop_begin=" + "9" * 5000, r"x.s:1: '9999.*' is not an integer"),
])
def test_bad_lines_named(text, message):
    with pytest.raises(AsmError, match=message):
        assemble(text, TINY, source="x.s")


def test_read_source_refuses_binary_and_bad_utf8(tmp_path):
    """The CLI read sources with read_text(): a binary file gave UnicodeDecodeError."""
    path = tmp_path / "x.s"
    path.write_bytes(b"finish\n\xff\xfe\x00garbage")
    with pytest.raises(AsmError, match=r"x.s:2: byte 7 is not UTF-8 text; allowed: UTF-8 assembler text"):
        read_source(path)
    path.write_bytes(b"finish\nfin\x00ish\n")
    with pytest.raises(AsmError, match=r"x.s:2: a NUL character: a binary file, not assembler text"):
        read_source(path)
    with pytest.raises(AsmError, match="assembler source .*nope.s' does not exist"):
        read_source(tmp_path / "nope.s")
    path.write_text("# ünïcode comment\nfinish\n")
    assert len(assemble(read_source(path), TINY).insns) == 1
