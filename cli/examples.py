"""`tensorweave examples`: the assembler programs shipped in the package (tensorweave/examples/*.s),
listed or copied out; `tensorweave asm NAME` assembles one by name."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..errors import TensorweaveError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_names() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.s"))


def find_source(name_or_path: str) -> Path:
    """An assembler source: an existing file, else a shipped example by name (with or without `.s`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = EXAMPLES / f"{path.stem}.s"
    if len(path.parts) == 1 and path.suffix in ("", ".s") and shipped.is_file():
        return shipped
    raise FileNotFoundError(f"assembler source '{name_or_path}' does not exist and is not a shipped example "
                            f"({', '.join(example_names())}; `tensorweave examples` lists them)")


def _summary(path: Path) -> str:
    """The first comment line of an example (its one-line description)."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").rstrip()
    return ""


def cmd_examples(args: argparse.Namespace) -> int:
    names = example_names()
    if args.copy:
        out = Path(args.copy)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            target = out / f"{name}.s"
            if target.exists() and not args.force:
                raise TensorweaveError(f"{target} exists; pass --force to overwrite it")
            shutil.copyfile(EXAMPLES / f"{name}.s", target)
            print(f"wrote {target}")
        return 0
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {_summary(EXAMPLES / f'{name}.s')}")
    print(f"\nassemble one by name: tensorweave asm {names[0]} --config tiny -o {names[0]}.twp"
          f"\ncopy them to edit:    tensorweave examples --copy DIR   (shipped in {EXAMPLES})")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("examples", help="list the shipped example programs, or copy them to a folder",
                              description="List the assembler programs shipped with tensorweave; `tensorweave asm "
                                          "NAME` assembles one by name.")
    p.add_argument("--copy", metavar="DIR", help="copy every example into DIR")
    p.add_argument("--force", action="store_true", help="with --copy: overwrite files that exist")
    p.set_defaults(func=cmd_examples)
