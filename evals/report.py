"""Presenting evaluation figures: rich tables for the terminal, and a report folder
(summary.md, summary.json, calibration.svg, per_kind.svg).

The charts are hand-built SVG: two simple charts do not justify a plotting dependency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from rich.console import Group, RenderableType
from rich.table import Table

from evals.scoring import (
    HEADLINE,
    CalibrationBin,
    Comparison,
    Metrics,
    ScenarioScore,
    Summary,
)
from tools.contract import RunRecord, ScenarioSpec, format_segment
from tools.output import check_output_dir, write_text_atomic
from tools.text import printable

WORST_SCENARIOS = 10

_LABELS: dict[str, str] = {
    "detection_recall": "detection recall",
    "false_alarm_rate": "false-alarm rate",
    "kind_accuracy": "incident-kind accuracy",
    "root_cause_f1": "root-cause F1 (macro)",
    "acceptable_action_rate": "acceptable-action rate",
    "decision_accuracy": "decision correct (action ok and kind ok)",
    "forbidden_proposed": "forbidden actions proposed",
    "forbidden_executed": "forbidden actions executed",
    "brier": "Brier score",
    "ece": "ECE (10 bins)",
    "mean_regret": "mean regret",
    "latency_mean_ms": "latency mean (ms)",
    "latency_p95_ms": "latency p95 (ms)",
    "errors": "scenarios that failed to run",
}
_RATES = {
    "detection_recall",
    "false_alarm_rate",
    "kind_accuracy",
    "root_cause_f1",
    "acceptable_action_rate",
    "decision_accuracy",
}
_COUNTS = {"forbidden_proposed", "forbidden_executed", "errors"}


def format_figure(name: str, value: float | None) -> str:
    """One metric value as shown in tables: rates in %, counts whole, ms to 0.1."""
    if value is None:
        return "n/a"
    if name in _RATES:
        return f"{value * 100:.1f}%"
    if name in _COUNTS:
        return str(int(value))
    if name.endswith("_ms"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def _headline_rows(m: Metrics) -> list[tuple[str, str]]:
    return [(_LABELS[name], format_figure(name, getattr(m, name))) for name, _ in HEADLINE]


_KIND_COLUMNS: tuple[tuple[str, str], ...] = (
    ("detection_recall", "recall"),
    ("false_alarm_rate", "false alarms"),
    ("kind_accuracy", "kind acc."),
    ("root_cause_f1", "RC F1"),
    ("acceptable_action_rate", "acceptable"),
    ("forbidden_executed", "forbidden exec."),
    ("ece", "ECE"),
    ("mean_regret", "regret"),
    ("latency_p95_ms", "p95 ms"),
)


def render_summary(summary: Summary) -> RenderableType:
    """The headline metrics and the per-kind breakdown as rich tables."""
    head = Table(title=f"payops eval: {summary.scored} scored of {summary.records} scenarios")
    head.add_column("metric")
    head.add_column("value", justify="right")
    for label, value in _headline_rows(summary.overall):
        head.add_row(label, value)
    kinds = Table(title="per incident kind")
    kinds.add_column("kind")
    kinds.add_column("n", justify="right")
    for _, title in _KIND_COLUMNS:
        kinds.add_column(title, justify="right")
    for kind, m in summary.per_kind.items():
        kinds.add_row(
            kind, str(m.scenarios), *(format_figure(n, getattr(m, n)) for n, _ in _KIND_COLUMNS)
        )
    parts: list[RenderableType] = [head, kinds]
    if summary.errored:
        parts.append(f"[red]failed to run:[/red] {printable(', '.join(summary.errored))}")
    if summary.unscored:
        parts.append(f"not scored (no expected): {printable(', '.join(summary.unscored))}")
    return Group(*parts)


def render_comparison(comparison: Comparison) -> RenderableType:
    """Each headline metric before -> after, then every scenario whose outcome changed."""
    metrics = Table(title="metrics: before -> after")
    metrics.add_column("metric")
    metrics.add_column("before", justify="right")
    metrics.add_column("after", justify="right")
    metrics.add_column("change", justify="right")
    for change in comparison.metrics:
        mark = ""
        if change.better is not None:
            mark = "[green]better[/green]" if change.better else "[red]worse[/red]"
        metrics.add_row(
            _LABELS[change.name],
            format_figure(change.name, change.before),
            format_figure(change.name, change.after),
            mark,
        )
    scenarios = Table(title=f"{len(comparison.changed)} scenario(s) changed")
    scenarios.add_column("scenario")
    scenarios.add_column("field")
    scenarios.add_column("before")
    scenarios.add_column("after")
    for changed in comparison.changed:
        for i, (field, (before, after)) in enumerate(changed.changes.items()):
            scenario = printable(changed.scenario_id) if i == 0 else ""
            scenarios.add_row(scenario, field, printable(before), printable(after))
    parts: list[RenderableType] = [metrics, scenarios]
    if comparison.only_before:
        parts.append(f"only in the first run: {printable(', '.join(comparison.only_before))}")
    if comparison.only_after:
        parts.append(f"only in the second run: {printable(', '.join(comparison.only_after))}")
    return Group(*parts)


# ---------------------------------------------------------------------------------------
# Report folder.


def _badness(s: ScenarioScore) -> tuple[int, int, int, int, int, float, float]:
    # Ordered by how much a payment team would care: harm first, then wrong calls.
    return (
        int(s.forbidden_executed),
        int(s.error is not None),
        int(s.forbidden_proposed),
        int(not s.correct),
        int(s.flagged != s.anomalous),
        1.0 - s.root_cause_f1,
        s.regret,
    )


def worst_scenarios(summary: Summary, limit: int = WORST_SCENARIOS) -> list[ScenarioScore]:
    """The scored scenarios that went wrong, worst first (perfect ones are never listed)."""
    bad = [s for s in summary.scores if any(_badness(s))]
    return sorted(bad, key=lambda s: (tuple(-x for x in _badness(s)), s.scenario_id))[:limit]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(
    summary: Summary, records: Sequence[RunRecord], scenarios: Mapping[str, ScenarioSpec]
) -> str:
    """summary.md: headline metrics, per-kind table, worst scenarios with rationale."""
    by_id = {r.scenario_id: r for r in records}
    lines = [
        "# payops evaluation",
        "",
        f"{summary.scored} scored of {summary.records} scenarios"
        f" ({len(summary.unscored)} without `expected`, {len(summary.errored)} failed to run).",
        "",
        "## Headline metrics",
        "",
        "| metric | value |",
        "|---|---:|",
        *(f"| {label} | {value} |" for label, value in _headline_rows(summary.overall)),
        "",
        "## Per incident kind",
        "",
        "| kind | n | " + " | ".join(title for _, title in _KIND_COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(_KIND_COLUMNS),
    ]
    for kind, m in summary.per_kind.items():
        cells = " | ".join(format_figure(n, getattr(m, n)) for n, _ in _KIND_COLUMNS)
        lines.append(f"| {kind} | {m.scenarios} | {cells} |")
    lines += ["", "## Worst scenarios", ""]
    worst = worst_scenarios(summary)
    if not worst:
        lines.append("Every scored scenario was handled correctly.")
    for s in worst:
        record = by_id.get(s.scenario_id)
        spec = scenarios.get(s.scenario_id)
        lines += [f"### {s.scenario_id}", ""]
        if spec is not None and spec.description:
            lines += [_md_cell(spec.description), ""]
        root = "; ".join(format_segment(seg) for seg in record.root_cause) if record else ""
        lines += [
            f"- expected kind `{s.incident_kind}`, predicted `{s.predicted_kind}`"
            f" (anomalous expected {str(s.anomalous).lower()}, flagged {str(s.flagged).lower()})",
            f"- action `{s.action}`, verdict `{s.verdict}`, acceptable"
            f" {str(s.acceptable).lower()}, forbidden {str(s.forbidden_proposed).lower()}",
            f"- root cause predicted: {_md_cell(root) or 'none'} (F1 {s.root_cause_f1:.2f})",
            f"- confidence {'n/a' if s.confidence is None else f'{s.confidence:.2f}'},"
            f" regret {s.regret:.3f}",
        ]
        if s.error is not None:
            lines.append(f"- error: {_md_cell(s.error)}")
        if record is not None and record.decision is not None and record.decision.rationale:
            lines += ["", "> " + record.decision.rationale.replace("\n", "\n> ")]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


_W, _H = 400, 400  # calibration chart size in px
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 60, 20, 40, 50


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
            f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{width}" height="{height}" fill="white"/>',
            f'<text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="15">'
            f"{escape(title)}</text>",
            *body,
            "</svg>",
            "",
        ]
    )


def calibration_svg(bins: Sequence[CalibrationBin], ece: float | None) -> str:
    """Reliability curve: mean confidence vs share correct per bin, with the diagonal."""
    x0, y0 = _PAD_L, _H - _PAD_B
    side = min(_W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B)

    def pt(cx: float, cy: float) -> tuple[float, float]:
        return x0 + cx * side, y0 - cy * side

    body = [
        f'<rect x="{x0}" y="{y0 - side}" width="{side}" height="{side}" fill="none"'
        ' stroke="#999"/>',
    ]
    for i in range(11):
        t = i / 10
        gx, gy = pt(t, t)
        body += [
            f'<text x="{gx:.1f}" y="{y0 + 16}" text-anchor="middle">{t:.1f}</text>',
            f'<text x="{x0 - 6}" y="{gy + 4:.1f}" text-anchor="end">{t:.1f}</text>',
        ]
    (ax, ay), (bx, by) = pt(0, 0), pt(1, 1)
    body.append(
        f'<line class="diagonal" x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}"'
        ' stroke="#999" stroke-dasharray="4 4"/>'
    )
    points = [
        (b, *pt(b.mean_confidence, b.accuracy))
        for b in bins
        if b.count and b.mean_confidence is not None and b.accuracy is not None
    ]
    if len(points) > 1:
        coords = " ".join(f"{x:.1f},{y:.1f}" for _, x, y in points)
        body.append(f'<polyline points="{coords}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for b, x, y in points:
        label = (
            f"confidence {b.lower:.1f}-{b.upper:.1f}: n={b.count},"
            f" mean confidence {b.mean_confidence:.3f}, accuracy {b.accuracy:.3f}"
        )
        body.append(
            f'<circle class="bin" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1f77b4"'
            f" data-count={quoteattr(str(b.count))}"
            f" data-confidence={quoteattr(f'{b.mean_confidence:.3f}')}"
            f" data-accuracy={quoteattr(f'{b.accuracy:.3f}')}>"
            f"<title>{escape(label)}</title></circle>"
        )
    body += [
        f'<text x="{x0 + side / 2:.1f}" y="{_H - 12}" text-anchor="middle">'
        "predicted confidence</text>",
        f'<text x="16" y="{y0 - side / 2:.1f}" text-anchor="middle"'
        f' transform="rotate(-90 16 {y0 - side / 2:.1f})">share of decisions right</text>',
        f'<text x="{x0 + 8}" y="{y0 - side + 16:.1f}">ECE {format_figure("ece", ece)}</text>',
    ]
    return _svg(_W, _H, "Calibration (reliability curve)", body)


_BARS: tuple[tuple[str, str, str], ...] = (
    ("kind_accuracy", "kind accuracy", "#1f77b4"),
    ("acceptable_action_rate", "acceptable action", "#2ca02c"),
)


def per_kind_svg(per_kind: Mapping[str, Metrics]) -> str:
    """Grouped bars: incident-kind accuracy and acceptable-action rate per expected kind."""
    group_w, bar_w, plot_h = 90, 32, 220
    x0, y0 = _PAD_L, _PAD_T + 30 + plot_h
    width = _PAD_L + _PAD_R + group_w * max(1, len(per_kind))
    height = y0 + 150  # room for the rotated kind labels
    body: list[str] = []
    for i in range(6):
        t = i / 5
        y = y0 - t * plot_h
        body += [
            f'<line x1="{x0}" y1="{y:.1f}" x2="{width - _PAD_R}" y2="{y:.1f}" stroke="#ddd"/>',
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{t * 100:.0f}%</text>',
        ]
    for j, (_, label, color) in enumerate(_BARS):
        lx = x0 + j * 150
        body += [
            f'<rect x="{lx}" y="{_PAD_T - 8}" width="12" height="12" fill="{color}"/>',
            f'<text x="{lx + 16}" y="{_PAD_T + 2}">{escape(label)}</text>',
        ]
    for g, (kind, m) in enumerate(per_kind.items()):
        gx = x0 + g * group_w + (group_w - bar_w * len(_BARS)) / 2
        for j, (name, label, color) in enumerate(_BARS):
            value = getattr(m, name)
            bx = gx + j * bar_w
            if value is None:
                continue
            h = value * plot_h
            text = f"{kind}: {label} {value * 100:.1f}% (n={m.scenarios})"
            body += [
                f'<rect class="bar" x="{bx:.1f}" y="{y0 - h:.1f}" width="{bar_w - 4}"'
                f' height="{h:.1f}" fill="{color}" data-kind={quoteattr(kind)}'
                f" data-metric={quoteattr(name)} data-value={quoteattr(f'{value:.3f}')}>"
                f"<title>{escape(text)}</title></rect>",
                f'<text x="{bx + (bar_w - 4) / 2:.1f}" y="{y0 - h - 4:.1f}"'
                f' text-anchor="middle" font-size="10">{value * 100:.0f}</text>',
            ]
        cx = x0 + g * group_w + group_w / 2
        body.append(
            f'<text x="{cx:.1f}" y="{y0 + 14}" text-anchor="end"'
            f' transform="rotate(-35 {cx:.1f} {y0 + 14})">{escape(kind)} ({m.scenarios})</text>'
        )
    body.append(f'<line x1="{x0}" y1="{y0}" x2="{width - _PAD_R}" y2="{y0}" stroke="#333"/>')
    return _svg(width, height, "Per incident kind", body)


def write_report(
    summary: Summary,
    records: Sequence[RunRecord],
    scenarios: Mapping[str, ScenarioSpec],
    out_dir: Path,
) -> list[Path]:
    """Write summary.md, summary.json, calibration.svg and per_kind.svg into `out_dir`.

    `scenarios` maps scenario id to its spec (for descriptions); returns the paths written.
    """
    files = {
        "summary.md": summary_markdown(summary, records, scenarios),
        "summary.json": summary.model_dump_json(indent=2) + "\n",
        "calibration.svg": calibration_svg(summary.calibration, summary.overall.ece),
        "per_kind.svg": per_kind_svg(summary.per_kind),
    }
    check_output_dir(out_dir, "--report")
    written: list[Path] = []
    for name, text in files.items():
        write_text_atomic(out_dir / name, text, "--report")
        written.append(out_dir / name)
    return written
