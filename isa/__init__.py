"""The instruction set: isa.yaml evaluated for a config, its encoder/decoder, assembler and generators."""

from .asm import AsmError, assemble, disassemble, element_bytes
from .program import Program, ProgramError, Tensor
from .spec import ISA, Field, Format, Insn, ISAError, Uop, build_isa

__all__ = ["AsmError", "Field", "Format", "ISA", "ISAError", "Insn", "Program", "ProgramError",
           "Tensor", "Uop", "assemble", "build_isa", "disassemble", "element_bytes"]
