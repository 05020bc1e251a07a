"""`tensorweave cache info|clear`: what the on-disk cache holds, and removing it."""

from __future__ import annotations

import argparse

from ..cache import cache_kinds, cache_root, clear


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def cmd_cache_info(args: argparse.Namespace) -> int:
    folders = cache_kinds()
    print(f"cache root {cache_root()} (set $TENSORWEAVE_CACHE to move it)")
    if not folders:
        print("empty")
        return 0
    width = max(len(f.path.name) for f in folders)
    for f in folders:
        print(f"{f.path.name:<{width}}  {_size(f.size):>10}  {f.entries} entries")
    print(f"{'total':<{width}}  {_size(sum(f.size for f in folders)):>10}  "
          f"{sum(f.entries for f in folders)} entries")
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    removed = clear(args.kind)
    for f in removed:
        print(f"removed {f.path} ({_size(f.size)}, {f.entries} entries)")
    if not removed:
        print(f"nothing to remove: {cache_root()} holds no cache folder")
    return 0


def register(subparsers) -> None:
    cache = subparsers.add_parser("cache", help="list or clear the on-disk cache (Verilator builds, compiled "
                                                "code, schedules, synthesis results)")
    sub = cache.add_subparsers(dest="what", required=True)
    p = sub.add_parser("info", help="the cache root and each <kind>-v<version> folder's size and entries")
    p.set_defaults(func=cmd_cache_info)
    p = sub.add_parser("clear", help="remove the cache's folders (all, or those of one kind); they are "
                                     "rebuilt when next needed")
    p.add_argument("kind", nargs="?", help="only this kind, e.g. verilator, cpu, schedules, fpga (see `cache info`)")
    p.set_defaults(func=cmd_cache_clear)
