"""Sweep outputs: the Pareto front of latency against area, plots (PNG and SVG), and a
self-contained HTML report (the table, the plots inline, each point's config)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .space import METRICS

Row = dict[str, Any]
AREA_AXES = ("lut", "ff", "dsp", "bram")


def pareto_front(rows: Sequence[Row], objectives: Sequence[str]) -> list[Row]:
    """Rows no other row dominates (no worse in every objective, better in one), by the objectives'
    directions (utilization and fmax_mhz up, everything else down); sorted by the first objective."""
    signs = [-1.0 if METRICS[o][1] == "maximize" else 1.0 for o in objectives]
    ok = [r for r in rows if not r.get("error") and all(r.get(o) is not None for o in objectives)]
    values = [tuple(s * float(r[o]) for s, o in zip(signs, objectives)) for r in ok]
    front = []
    for i, v in enumerate(values):
        dominated = any(all(a <= b for a, b in zip(w, v)) and w != v for j, w in enumerate(values) if j != i)
        if not dominated:
            front.append(ok[i])
    # equal points: keep one
    unique = {tuple(float(r[o]) for o in objectives): r for r in front}
    return sorted(unique.values(), key=lambda r: float(r[objectives[0]]))


def plot_pareto(rows: Sequence[Row], latency: str, areas: Sequence[str], title: str):
    """A figure with one panel per area metric: every point, and the latency/area Pareto front."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, ScalarFormatter

    ok = [r for r in rows if not r.get("error")]
    columns = 2 if len(areas) == 4 else len(areas)
    lines = -(-len(areas) // columns)
    fig, grid = plt.subplots(lines, columns, figsize=(5.0 * columns, 3.9 * lines), squeeze=False)
    axes = [ax for line in grid for ax in line]
    for ax, area in zip(axes, areas):
        ax.scatter([r[area] for r in ok], [r[latency] for r in ok], s=14, color="#9aa5b1", label="design points")
        front = sorted(pareto_front(ok, (area, latency)), key=lambda r: float(r[area]))
        ax.plot([r[area] for r in front], [r[latency] for r in front], "o-", color="#d1495b", ms=5,
                label="Pareto front")
        ax.set_xlabel(f"{area.upper()} ({METRICS[area][0]})" if len(METRICS[area][0]) < 30 else area.upper())
        ax.set_ylabel(latency.replace("_ms", " (ms)"))
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(plt.NullFormatter())
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_report(result) -> dict[str, Path]:
    """Write `pareto.png`, `pareto.svg` and `report.html` next to the results table."""
    space, directory, rows = result.space, result.directory, result.rows
    paths: dict[str, Path] = {}
    latency = "latency_ms" if "latency_ms" in space.metrics else "cycles" if "cycles" in space.metrics else None
    areas = [a for a in AREA_AXES if a in space.metrics]
    ok = [r for r in rows if not r["error"]]
    svg_text = ""
    if latency and areas and ok:
        import matplotlib.pyplot as plt

        fig = plot_pareto(rows, latency, areas, f"{space.name}: {latency} vs area, {len(ok)} points")
        for fmt in ("png", "svg"):
            path = directory / f"pareto.{fmt}"
            fig.savefig(path, dpi=130)
            paths[fmt] = path
        plt.close(fig)
        svg_text = paths["svg"].read_text()
        png_uri = "data:image/png;base64," + base64.b64encode(paths["png"].read_bytes()).decode()
    else:
        png_uri = ""
    paths["html"] = directory / "report.html"
    paths["html"].write_text(_html(space, rows, latency, areas, svg_text, png_uri, result))
    return paths


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.4g}"
    return str(value)


def _html(space, rows: Sequence[Row], latency: str | None, areas: Sequence[str], svg: str, png_uri: str,
          result) -> str:
    front_keys = set()
    if latency and areas:
        front_keys = {r["key"] for r in pareto_front(rows, (latency, areas[0]))}
    params, metrics = list(space.parameters), list(space.metrics)
    order = sorted(rows, key=lambda r: (bool(r["error"]), float(r[latency]) if latency and not r["error"] else 0.0,
                                        r["index"]))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["#", "Pareto", *params, *metrics, "error"])
    body = []
    for r in order:
        cells = [str(r["index"]), "★" if r["key"] in front_keys else ""]
        cells += [_fmt(r[p]) for p in params]
        cells += ["" if r.get(m) is None else _fmt(r[m]) for m in metrics]
        cells.append(r["error"])
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    configs = []
    for r in sorted(rows, key=lambda r: r["index"]):
        config = json.loads(r["config"]) if r.get("config") else {}
        layers = json.loads(r["layer_cycles"]) if r.get("layer_cycles") else {}
        configs.append(f"<details><summary>point {r['index']} ({html.escape(r['key'])})</summary><pre>"
                       f"{html.escape(json.dumps(config, indent=1))}\nper-layer cycles: "
                       f"{html.escape(json.dumps(layers))}</pre></details>")
    layers = ", ".join(w.name for w in space.workloads)
    plot = svg[svg.find("<svg"):] if svg else "<p>(no plot: the sweep has no latency and area metrics)</p>"
    download = f'<p><a download="pareto.png" href="{png_uri}">PNG</a></p>' if png_uri else ""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tensorweave sweep {html.escape(space.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}th{{background:#eee}}
pre{{font-size:11px}}</style></head><body>
<h1>Sweep {html.escape(space.name)}</h1>
<p>Base config <code>{html.escape(space.base.name)}</code>; search {html.escape(space.search.method)}
(seed {space.search.seed}); {len(rows)} points, {len(result.failed)} failed. Workload: {html.escape(layers)}
({"the accelerator compiler's programs (<code>compile_conv</code>)" if space.programs == "compiler"
else "implicit-GEMM programs, <code>dse/workloads.py</code>"}), timed by the cycle model (<code>sim/cycle.py</code>);
resources from the analytical model (<code>dse/area.py</code>). Constraints:
{html.escape("; ".join(c.text for c in space.constraints) or "none")}.</p>
<h2>Latency against area</h2>{plot}{download}
<h2>Results</h2><p>★ marks the Pareto front of {html.escape(str(latency))} against
{html.escape(areas[0] if areas else "-")}.</p>
<table><tr>{head}</tr>{"".join(body)}</table>
<h2>Configs</h2>{"".join(configs)}
</body></html>
"""
