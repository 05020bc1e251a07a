"""Sweep spaces: which config fields vary, under which constraints, on which workloads, measured how.

A sweep space is one YAML file (see `configs/sweeps/`):

    name: resnet18                      # names the results folder and the design points
    base: vta-default                   # a preset name, a config path, or an inline mapping
    parameters:                         # config fields that vary, each a list or a range
      block_in: [8, 16, 32]
      bus_width: {range: [64, 256], scale: pow2}       # 64, 128, 256
      clock_mhz: {range: [100, 200], step: 50}         # 100, 150, 200
    constraints:                        # expressions over config fields and derived values
      - block_in * block_out <= 1024
    workloads: [resnet18, {conv: L1, height: 14, width: 14, in_channels: 64, out_channels: 64, kernel: 3,
                padding: 1}, {matmul: fc, m: 16, k: 512, n: 1000}]
    programs: gemm                      # gemm (dse/workloads.py, fast) or compiler (compile_conv)
    metrics: [cycles, latency_ms, utilization, dram_bytes, lut, ff, dsp, bram, fmax_mhz]
    search: {method: nsga2, trials: 48, population: 12, seed: 0, objectives: [latency_ms, lut]}

A constraint is a small expression language, interpreted (never `eval`ed): comparisons, + - * / //
% and **, and / or / not, parentheses, numbers, config fields and derived values, min() max() abs()
log2(); any value past 2^1024 is refused, naming the constraint and the part.

Points stream (`SweepSpace.points` is a generator): a space of millions of points starts at once.
`method` is `grid` (every valid point), `random` (`samples` distinct valid points) or `nsga2`
(optuna's NSGA-II over `trials` points, minimising the `objectives`; utilization is maximised).
Every mistake raises `SweepError` naming the field.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import itertools
import json
import math
import operator
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..configs import AccelConfig, ConfigError, load_config
from ..configs.config import read_yaml
from ..errors import TensorweaveError
from ..isa import ISAError, build_isa
from .workloads import NAMED_WORKLOADS, PROGRAM_SOURCES, Layer, WorkloadError, parse_layer


class SweepError(TensorweaveError, ValueError):
    """An invalid sweep space or sweep request; the message names the field."""


# metric -> (description, direction for optimisation)
METRICS: dict[str, tuple[str, str]] = {
    "cycles": ("cycle-model cycles, summed over the workload's layers", "minimize"),
    "latency_ms": ("cycles at the config's clock_mhz, in milliseconds", "minimize"),
    "utilization": ("MACs / (cycles x MACs per cycle)", "maximize"),
    "macs": ("multiply-accumulates the GEMM core performs (padding included)", "maximize"),
    "dram_bytes": ("DRAM bytes read and written, instructions included", "minimize"),
    "lut": ("LUT estimate (dse/area.py)", "minimize"),
    "ff": ("flip-flop estimate", "minimize"),
    "dsp": ("DSP48 estimate", "minimize"),
    "bram": ("RAMB36 estimate", "minimize"),
    "fmax_mhz": ("Fmax estimate (heuristic)", "maximize"),
}
METHODS = ("grid", "random", "nsga2")
RANDOM_LISTED = 1_000_000  # random search over a space up to this size samples the list of its valid points
_CONFIG_FIELDS = [f.name for f in dataclasses.fields(AccelConfig) if f.name not in ("name", "source")]
_CONSTRAINT_NAMES = set(_CONFIG_FIELDS) | {
    "macs_per_cycle", "inp_row_bytes", "wgt_row_bytes", "acc_row_bytes", "out_row_bytes", "uop_bytes",
    "inp_depth", "wgt_depth", "acc_depth", "uop_depth", "bus_bytes"}
# The constraint grammar: comparisons (chained too), + - * / // % and a bounded **, unary - + not,
# and / or, parentheses, integer and float literals, the names above, and the functions below. It is
# interpreted node by node (never eval), and no value may grow past _MAX_BITS bits, so no constraint
# can spin or fill memory (`9 ** 9 ** 9 ** 9` is refused at once).
_MAX_BITS = 1024
_FUNCTIONS: dict[str, Any] = {"min": min, "max": max, "abs": abs, "log2": math.log2}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_ALLOWED = "comparisons, + - * / // % **, and/or/not, parentheses, numbers, config fields, min() max() abs() log2()"


class _Refused(Exception):
    """A part of a constraint outside the grammar or its bounds: (the part's text, why)."""


def _part(node: ast.AST) -> str:
    return ast.unparse(node)


def _check_tree(node: ast.AST) -> None:
    """Refuse anything outside the grammar, naming the offending part."""
    if isinstance(node, ast.Expression):
        _check_tree(node.body)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check_tree(value)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check_tree(node.left)
        _check_tree(node.right)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check_tree(node.operand)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for value in (node.left, *node.comparators):
            _check_tree(value)
    elif isinstance(node, ast.Name):
        if node.id not in _CONSTRAINT_NAMES:
            raise _Refused(node.id, "is not a config field or derived value; names: "
                           + ", ".join(sorted(_CONSTRAINT_NAMES)))
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _Refused(_part(node), "is not a number")
    elif isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords or not node.args:
            raise _Refused(_part(node), f"calls something other than {', '.join(f'{f}()' for f in _FUNCTIONS)} "
                                        f"with positional arguments")
        for arg in node.args:
            _check_tree(arg)
    else:
        raise _Refused(_part(node), f"({type(node).__name__}) is outside the grammar")


def _bounded(value: Any, node: ast.AST) -> Any:
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise _Refused(_part(node), f"is larger than 2^{_MAX_BITS}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused(_part(node), "is not a finite number")
    return value


def _evaluate(node: ast.AST, names: Mapping[str, Any]) -> Any:
    """The value of a checked constraint tree (`_check_tree`), every intermediate value bounded."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, names)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.BoolOp):
        value: Any = None
        for item in node.values:
            value = _evaluate(item, names)
            if bool(value) == isinstance(node.op, ast.Or):
                return value
        return value
    if isinstance(node, ast.UnaryOp):
        return _bounded(_UNARY[type(node.op)](_evaluate(node.operand, names)), node)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, names)
        for op, item in zip(node.ops, node.comparators):
            right = _evaluate(item, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        args = [_evaluate(arg, names) for arg in node.args]
        return _bounded(_FUNCTIONS[node.func.id](*args), node)  # type: ignore[attr-defined]
    assert isinstance(node, ast.BinOp)
    left, right = _evaluate(node.left, names), _evaluate(node.right, names)
    if isinstance(node.op, ast.Pow):
        # Bound the result before computing it: |left| ** right has about right * log2|left| bits.
        if isinstance(right, (int, float)) and right > 0 and abs(left) > 1 and \
                right * math.log2(abs(left)) > _MAX_BITS:
            raise _Refused(_part(node), f"would be larger than 2^{_MAX_BITS}")
    return _bounded(_BINARY[type(node.op)](left, right), node)


@dataclass(frozen=True)
class Constraint:
    """A checked expression (see `parse_constraint`); kept as text so spaces pickle to workers."""

    text: str
    where: str = ""

    def holds(self, config: AccelConfig) -> bool:
        names = {n: getattr(config, n) for n in _CONSTRAINT_NAMES}
        try:
            return bool(_evaluate(_parsed(self.text), names))
        except _Refused as exc:  # a value past the bounds
            part, why = exc.args
            raise SweepError(f"{self.where or 'constraint'}: constraint '{self.text}': '{part}' {why}") from None
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise SweepError(f"{self.where or 'constraint'}: constraint '{self.text}' cannot be evaluated for "
                             f"config '{config.name}' ({type(exc).__name__}: {exc})") from None


    def check_bounds(self, config: AccelConfig) -> None:
        """`SweepError` if evaluating the constraint for `config` passes the grammar's bounds (arithmetic
        errors, which may be particular to this config, are left to `holds`)."""
        try:
            self.holds(config)
        except SweepError as exc:
            if isinstance(exc.__context__, _Refused):
                raise


@lru_cache(maxsize=256)
def _parsed(text: str) -> ast.Expression:
    return ast.parse(text, mode="eval")


def parse_constraint(text: object, where: str) -> Constraint:
    """A constraint in the grammar above, or `SweepError` naming it, `where` and the offending part."""
    if not isinstance(text, str) or not text.strip():
        raise SweepError(f"{where}: a constraint is an expression string like 'block_in * block_out <= 1024', "
                         f"not {text!r}")
    if len(text) > 1000:
        raise SweepError(f"{where}: constraint of {len(text)} characters; at most 1000")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise SweepError(f"{where}: constraint '{text}' is not a valid expression "
                         f"({getattr(exc, 'msg', exc)})") from None
    except RecursionError:
        raise SweepError(f"{where}: constraint '{text[:60]}...' is nested too deeply") from None
    try:
        _check_tree(tree)
    except _Refused as exc:
        part, why = exc.args
        raise SweepError(f"{where}: constraint '{text}': '{part}' {why}; allowed: {_ALLOWED}") from None
    return Constraint(text, where)


@dataclass(frozen=True)
class Search:
    method: str = "grid"
    samples: int = 0
    trials: int = 0
    population: int = 0
    seed: int = 0
    objectives: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepSpace:
    name: str
    base: AccelConfig
    parameters: dict[str, tuple[Any, ...]]
    constraints: tuple[Constraint, ...]
    workloads: tuple[Layer, ...]
    metrics: tuple[str, ...]
    search: Search
    source: str = "<dict>"
    programs: str = "gemm"

    def config(self, point: Mapping[str, Any]) -> AccelConfig:
        """The design point's config: the base with the point's fields, named `<space>-<key>`."""
        data = {**self.base.to_dict(), **point, "name": f"{self.name}-{point_key(point)}"}
        return AccelConfig.from_dict(data, source=f"{self.source} point {dict(point)}")

    def check(self, point: Mapping[str, Any]) -> AccelConfig | None:
        """The point's config if it is a valid config whose ISA fits its instruction word and that
        meets every constraint, else None."""
        try:
            config = self.config(point)
            build_isa(config)
        except (ConfigError, ISAError):
            return None
        return config if all(c.holds(config) for c in self.constraints) else None

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination of parameter values, in order, valid or not (generated, never stored)."""
        names = list(self.parameters)
        for values in itertools.product(*(self.parameters[n] for n in names)):
            yield dict(zip(names, values))

    @property
    def size(self) -> int:
        """How many combinations the grid holds, valid or not."""
        return math.prod(len(v) for v in self.parameters.values())

    def point_at(self, index: int) -> dict[str, Any]:
        """The grid's `index`-th combination (the last parameter varies fastest, as in `grid`)."""
        point: dict[str, Any] = {}
        for name in reversed(self.parameters):
            values = self.parameters[name]
            index, i = divmod(index, len(values))
            point[name] = values[i]
        return {name: point[name] for name in self.parameters}

    def points(self) -> Iterator[dict[str, Any]]:
        """The points a grid or random search evaluates (nsga2 asks optuna instead), as a stream: the first
        one comes without enumerating the space, so a space of millions of points starts at once.

        grid: the valid points in grid order. random: `samples` distinct valid points drawn with the
        search's seed (a space of up to `RANDOM_LISTED` combinations samples its list of valid points;
        a larger one draws grid indices, at most 50 per requested sample)."""
        if self.search.method != "random":
            return (p for p in self.grid() if self.check(p) is not None)
        rng = random.Random(self.search.seed)
        if self.size <= RANDOM_LISTED:
            valid = [p for p in self.grid() if self.check(p) is not None]
            return iter(rng.sample(valid, min(self.search.samples, len(valid))))
        return self._drawn(rng)

    def _drawn(self, rng: random.Random) -> Iterator[dict[str, Any]]:
        seen: set[int] = set()
        found = 0
        for _ in range(50 * self.search.samples):
            if found == self.search.samples:
                return
            index = rng.randrange(self.size)
            if index in seen:
                continue
            seen.add(index)
            point = self.point_at(index)
            if self.check(point) is not None:
                found += 1
                yield point

    def first_point(self) -> dict[str, Any]:
        """The first point `points` gives, or `SweepError` when the space has none."""
        for point in self.points():
            return point
        raise SweepError(f"{self.source}: no point of the space is a valid config meeting every constraint")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base.to_dict(), "parameters": {k: list(v) for k, v in
                                                                               self.parameters.items()},
                "constraints": [c.text for c in self.constraints], "metrics": list(self.metrics),
                "workloads": [dataclasses.asdict(w) | {"kind": type(w).__name__} for w in self.workloads],
                "search": dataclasses.asdict(self.search), "programs": self.programs}


def point_key(point: Mapping[str, Any]) -> str:
    """A short stable name of a point (its varied fields and values)."""
    return hashlib.sha256(json.dumps(dict(point), sort_keys=True).encode()).hexdigest()[:10]


def _values(field: str, spec: object, where: str) -> tuple[Any, ...]:
    if isinstance(spec, list):
        if not spec:
            raise SweepError(f"{where}: parameter '{field}' has an empty list of values")
        values = tuple(tuple(v) if isinstance(v, list) else v for v in spec)
    elif isinstance(spec, dict) and "range" in spec:
        unknown = set(spec) - {"range", "step", "scale"}
        if unknown:
            raise SweepError(f"{where}: parameter '{field}': unknown key(s) {', '.join(sorted(unknown))}; "
                             f"a range takes range: [lo, hi] and step: N or scale: pow2")
        bounds = spec["range"]
        if (not isinstance(bounds, list) or len(bounds) != 2 or not all(isinstance(b, int) for b in bounds)
                or bounds[0] > bounds[1]):
            raise SweepError(f"{where}: parameter '{field}': range must be [lo, hi] integers with lo <= hi, "
                             f"not {bounds!r}")
        lo, hi = bounds
        if spec.get("scale") == "pow2":
            values = tuple(1 << b for b in range(max(lo, 1).bit_length() - 1, hi.bit_length()) if lo <= 1 << b <= hi)
        elif "scale" in spec:
            raise SweepError(f"{where}: parameter '{field}': scale must be 'pow2', not {spec['scale']!r}")
        else:
            step = spec.get("step", 1)
            if not isinstance(step, int) or step < 1:
                raise SweepError(f"{where}: parameter '{field}': step must be a positive integer, not {step!r}")
            values = tuple(range(lo, hi + 1, step))
        if not values:
            raise SweepError(f"{where}: parameter '{field}': range {bounds} holds no value")
    else:
        raise SweepError(f"{where}: parameter '{field}' must be a list of values or {{range: [lo, hi], ...}}, "
                         f"not {spec!r}")
    if len(set(map(repr, values))) != len(values):
        raise SweepError(f"{where}: parameter '{field}' lists a value twice: {list(values)}")
    return values


def _check_values(base: AccelConfig, field: str, values: tuple[Any, ...], where: str) -> None:
    """Each value alone must be allowed for its field (combinations may still be rejected later)."""
    for value in values:
        data = {**base.to_dict(), field: list(value) if isinstance(value, tuple) else value}
        try:
            AccelConfig.from_dict(data)
        except ConfigError as exc:
            message = str(exc).split(": ", 1)[-1]
            raise SweepError(f"{where}: parameter '{field}': value {value!r} is not allowed ({message})") from None


def _int_field(search: dict, key: str, where: str, minimum: int, default: int | None = None) -> int:
    value = search.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SweepError(f"{where}: search field '{key}' must be an integer >= {minimum}, not {value!r}")
    return value


def _search(data: object, metrics: tuple[str, ...], where: str) -> Search:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SweepError(f"{where}: 'search' must be a mapping with 'method', not {data!r}")
    method = data.get("method", "grid")
    if method not in METHODS:
        raise SweepError(f"{where}: search field 'method' must be one of {', '.join(METHODS)}, not {method!r}")
    allowed = {"grid": {"method", "seed"}, "random": {"method", "samples", "seed"},
               "nsga2": {"method", "trials", "population", "seed", "objectives"}}[method]
    unknown = set(data) - allowed
    if unknown:
        raise SweepError(f"{where}: search field(s) {', '.join(sorted(unknown))} do not apply to method "
                         f"'{method}'; it takes {', '.join(sorted(allowed))}")
    seed = _int_field(data, "seed", where, 0, 0)
    if method == "grid":
        return Search("grid", seed=seed)
    if method == "random":
        return Search("random", samples=_int_field(data, "samples", where, 1), seed=seed)
    objectives = data.get("objectives", ["latency_ms", "lut"])
    if not isinstance(objectives, list) or len(objectives) < 2:
        raise SweepError(f"{where}: search field 'objectives' must list at least two metrics, not {objectives!r}")
    for name in objectives:
        if name not in metrics:
            raise SweepError(f"{where}: search objective '{name}' is not one of the sweep's metrics "
                             f"({', '.join(metrics)})")
    return Search("nsga2", trials=_int_field(data, "trials", where, 1),
                  population=_int_field(data, "population", where, 2, 8), seed=seed,
                  objectives=tuple(objectives))


def _workloads(data: object, where: str) -> tuple[Layer, ...]:
    if not isinstance(data, list) or not data:
        raise SweepError(f"{where}: 'workloads' must be a non-empty list (named sets: "
                         f"{', '.join(NAMED_WORKLOADS)}; or conv / matmul layers)")
    layers: list[Layer] = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            if item not in NAMED_WORKLOADS:
                raise SweepError(f"{where}: workloads[{i}]: no workload named '{item}'; named: "
                                 f"{', '.join(NAMED_WORKLOADS)}")
            layers.extend(NAMED_WORKLOADS[item])
        else:
            try:
                layers.append(parse_layer(item, f"{where}: workloads[{i}]"))
            except WorkloadError as exc:
                raise SweepError(str(exc)) from None
    names = [layer.name for layer in layers]
    for name in names:
        if names.count(name) > 1:
            raise SweepError(f"{where}: workloads: layer name '{name}' appears twice")
    return tuple(layers)


def parse_space(data: object, source: str = "<dict>") -> SweepSpace:
    """Validate a sweep space given as a mapping (a parsed YAML file)."""
    if not isinstance(data, dict):
        raise SweepError(f"{source}: a sweep space is a mapping, not {type(data).__name__}")
    known = {"name", "base", "parameters", "constraints", "workloads", "metrics", "search", "programs"}
    unknown = set(data) - known
    if unknown:
        raise SweepError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}; fields: {', '.join(sorted(known))}")
    name = data.get("name")
    if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
        raise SweepError(f"{source}: field 'name' must be a non-empty name of letters, digits, '-' and '_', "
                         f"not {name!r}")
    base_spec = data.get("base", "vta-default")
    try:
        if isinstance(base_spec, dict):
            base = AccelConfig.from_dict({"name": f"{name}-base", **base_spec}, source=f"{source} base")
        elif isinstance(base_spec, str):
            path = Path(source).parent / base_spec if source != "<dict>" else Path(base_spec)
            base = load_config(path if path.suffix and path.exists() else base_spec)
        else:
            raise SweepError(f"{source}: field 'base' must be a preset name, a config path or a mapping")
    except ConfigError as exc:
        raise SweepError(f"{source}: field 'base': {exc}") from None
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{source}: field 'parameters' must map config fields to values; config fields: "
                         f"{', '.join(_CONFIG_FIELDS)}")
    parameters = {}
    for field, spec in params.items():
        if field not in _CONFIG_FIELDS:
            raise SweepError(f"{source}: parameter '{field}' is not a config field; "
                             f"fields: {', '.join(_CONFIG_FIELDS)}")
        parameters[field] = _values(field, spec, source)
        _check_values(base, field, parameters[field], source)
    raw_constraints = data.get("constraints", []) or []
    if not isinstance(raw_constraints, list):
        raise SweepError(f"{source}: field 'constraints' must be a list of expressions")
    constraints = tuple(parse_constraint(c, f"{source}: constraints[{i}]") for i, c in enumerate(raw_constraints))
    metrics = data.get("metrics", list(METRICS))
    if not isinstance(metrics, list) or not metrics:
        raise SweepError(f"{source}: field 'metrics' must be a non-empty list of: {', '.join(METRICS)}")
    for metric in metrics:
        if metric not in METRICS:
            raise SweepError(f"{source}: metric '{metric}' is unknown; metrics: {', '.join(METRICS)}")
    metrics = tuple(dict.fromkeys(metrics))
    programs = data.get("programs", "gemm")
    if programs not in PROGRAM_SOURCES:
        raise SweepError(f"{source}: field 'programs' must be one of {', '.join(PROGRAM_SOURCES)}, not {programs!r}")
    space = SweepSpace(name, base, parameters, constraints, _workloads(data.get("workloads"), source),
                       metrics, _search(data.get("search"), metrics, source), source, programs)
    for constraint in constraints:
        constraint.check_bounds(space.base)  # `9 ** 9 ** 9 > block_in` fails now, not in a worker
    if space.search.method != "nsga2":
        space.first_point()  # rejects a space with no valid point now, not after starting workers
    return space


def load_space(path: str | Path) -> SweepSpace:
    """Load and validate a sweep space YAML file."""
    path = Path(path)
    try:
        data = read_yaml(path, SweepError, "sweep space file")
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:  # binary, too deeply nested, NUL bytes
        raise SweepError(f"{path}: not a readable YAML text file ({type(exc).__name__}: {exc})") from None
    return parse_space(data, source=str(path))
