"""Presenting evaluation figures: rich tables for the terminal, and a report folder
(summary.md, summary.json, calibration.svg, per_kind.svg).

The charts are drawn with matplotlib (the `report` extra, in `dev`): a reliability chart
with the count and a 95% interval per confidence level beside the diagonal, and per-kind
accuracy with 95% intervals. Error bars, a count histogram and readable axes are what a
person needs to judge a small evaluation, and a plotting library draws them in a few
lines; the terminal tables need nothing but rich.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

from evals.scoring import (
    CALIBRATION_BINS,
    HEADLINE,
    Comparison,
    Metrics,
    ScenarioScore,
    Summary,
)
from tools.contract import RunRecord, ScenarioSpec, format_segment
from tools.output import check_output_dir, write_text_atomic
from tools.stats import wilson_interval
from tools.terminal import PIPE_WIDTH, Column, fitted_table
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
# Which per-kind columns go first when the terminal is narrow (0: always shown).
_KIND_DROP = {
    "latency_p95_ms": 5,
    "mean_regret": 4,
    "ece": 3,
    "false_alarm_rate": 2,
    "detection_recall": 1,
}


def render_summary(summary: Summary, width: int = PIPE_WIDTH) -> RenderableType:
    """The headline metrics and the per-kind breakdown, sized to `width` columns."""
    head = Table(title=f"payops eval: {summary.scored} scored of {summary.records} scenarios")
    head.add_column("metric")
    head.add_column("value", justify="right")
    for label, value in _headline_rows(summary.overall):
        head.add_row(label, value)
    columns = [Column("kind"), Column("n", justify="right")] + [
        Column(title, drop=_KIND_DROP.get(name, 0), justify="right")
        for name, title in _KIND_COLUMNS
    ]
    rows = [
        [kind, str(m.scenarios), *(format_figure(n, getattr(m, n)) for n, _ in _KIND_COLUMNS)]
        for kind, m in summary.per_kind.items()
    ]
    kinds = fitted_table(width, columns, rows, title="per incident kind")
    parts: list[RenderableType] = [head, kinds]
    if summary.errored:
        parts.append(f"[red]failed to run:[/red] {printable(', '.join(summary.errored))}")
    if summary.unscored:
        parts.append(f"not scored (no expected): {printable(', '.join(summary.unscored))}")
    return Group(*parts)


def format_change(name: str, delta: float | None) -> str:
    """A metric's change as a number: pp for rates, whole counts, ms, or 3 decimals."""
    if delta is None:
        return "n/a"
    if delta == 0:
        return "="
    if name in _RATES:
        return f"{delta * 100:+.1f} pp"
    if name in _COUNTS:
        return f"{int(delta):+d}"
    if name.endswith("_ms"):
        return f"{delta:+.1f} ms"
    return f"{delta:+.3f}"


def render_comparison(comparison: Comparison, width: int = PIPE_WIDTH) -> RenderableType:
    """Each headline metric before -> after with its change, then every scenario whose
    outcome changed (or that none did)."""
    rows = []
    for change in comparison.metrics:
        word = ""
        if change.better is not None:
            word = " [green]better[/green]" if change.better else " [red]worse[/red]"
        rows.append(
            [
                _LABELS[change.name],
                format_figure(change.name, change.before),
                format_figure(change.name, change.after),
                format_change(change.name, change.delta) + word,
            ]
        )
    columns = [
        Column("metric"),
        Column("before", justify="right"),
        Column("after", justify="right"),
        Column("change", justify="right"),
    ]
    parts: list[RenderableType] = [
        fitted_table(width, columns, rows, title="metrics: before -> after")
    ]
    if comparison.changed:
        changed_rows = []
        for changed in comparison.changed:
            for i, (field, (before, after)) in enumerate(changed.changes.items()):
                scenario = printable(changed.scenario_id) if i == 0 else ""
                changed_rows.append([scenario, field, printable(before), printable(after)])
        changed_columns = [
            Column("scenario", wraps=True),
            Column("field"),
            Column("before", wraps=True),
            Column("after", wraps=True),
        ]
        title = f"{len(comparison.changed)} scenario(s) changed"
        parts.append(fitted_table(width, changed_columns, changed_rows, title=title))
    else:
        parts.append("no scenario changed its outcome")
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


class PlottingMissing(ValueError):
    """`--report` without matplotlib installed."""


def require_plotting() -> None:
    """Raise PlottingMissing (one line, before any work) when matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlottingMissing(
            "--report draws its charts with matplotlib: pip install 'payops[report]'"
        ) from None


def _figure(width: float, height: float, rows: int = 1, ratios: Sequence[int] = (1,)) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, gridspec_kw={"height_ratios": list(ratios)})
    return figure, axes


def _svg_text(figure: Any) -> str:
    import io

    from matplotlib import rc_context

    out = io.StringIO()
    # Text stays text (searchable, testable); fixed ids and no date keep the bytes stable.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "payops"}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def confidence_levels(
    pairs: Sequence[tuple[float, bool]], bins: int = CALIBRATION_BINS
) -> list[tuple[float, int, float, tuple[float, float]]]:
    """The reliability chart's points: (mean confidence, count, share right, 95% interval).

    One point per distinct confidence when there are at most `bins` of them (a reasoner
    that grades its confidence gives a few levels, often in one 0.1-wide bin), else one
    per equal-width bin.
    """
    keyed: dict[float, list[tuple[float, bool]]] = {}
    distinct = {c for c, _ in pairs}
    for confidence, correct in pairs:
        key = confidence if len(distinct) <= bins else min(int(confidence * bins), bins - 1)
        keyed.setdefault(key, []).append((confidence, correct))
    points = []
    for _, group in sorted(keyed.items()):
        right = sum(ok for _, ok in group)
        mean = sum(c for c, _ in group) / len(group)
        points.append((mean, len(group), right / len(group), wilson_interval(right, len(group))))
    return points


def calibration_svg(summary: Summary) -> str:
    """Reliability chart: share of decisions right per confidence level, with a 95%
    interval, beside the diagonal of perfect calibration; the count per level below."""
    pairs = [(s.confidence, s.correct) for s in summary.scores if s.confidence is not None]
    points = confidence_levels(pairs)
    figure, (top, bottom) = _figure(6.0, 6.0, rows=2, ratios=(3, 1))
    # Zoomed to where the confidences are: a reasoner that is sure of itself puts them all
    # above 0.9, and a 0-1 axis would show one dot in a corner.
    x_low = max(0.0, int(min([0.9, *(m for m, *_ in points)]) * 10 - 1) / 10)
    y_low = max(0.0, int(min([x_low, *(lo for *_, (lo, _) in points)]) * 10) / 10)
    top.plot([x_low, 1], [x_low, 1], linestyle="--", color="#888", gid="diagonal", label="perfect")
    for mean, n, right, (lo, hi) in points:
        # One id per drawn thing (`level-0.930`, `interval-0.930`, `count-0.930`).
        point = top.errorbar(
            [mean], [right], yerr=[[right - lo], [hi - right]], fmt="o", color="#1f77b4",
            capsize=4,
        )  # fmt: skip
        point.lines[0].set_gid(f"level-{mean:.3f}")
        point.lines[2][0].set_gid(f"interval-{mean:.3f}")
        bars = bottom.bar([mean], [n], width=(1 - x_low) / 30, color="#1f77b4")
        bars.patches[0].set_gid(f"count-{mean:.3f}")
        bottom.bar_label(bars, labels=[f"n={n}"], fontsize=8)
    top.set_xlim(x_low, 1.0)
    top.set_ylim(y_low, 1.02)
    top.set_ylabel("share of decisions right")
    top.set_title(
        f"Calibration: ECE {format_figure('ece', summary.overall.ece)}, "
        f"Brier {format_figure('brier', summary.overall.brier)} "
        f"({len(pairs)} decisions, 95% intervals)"
    )
    top.legend(loc="upper left")
    bottom.set_ylim(0, max([1, *(n for _, n, _, _ in points)]) * 1.3)
    bottom.set_ylabel("decisions")
    bottom.set_xlabel("confidence")
    return _svg_text(figure)


_BARS: tuple[tuple[str, str, str, str], ...] = (
    ("kind_accuracy", "kind_correct", "incident-kind accuracy", "#1f77b4"),
    ("acceptable_action_rate", "acceptable", "acceptable action", "#2ca02c"),
)


def per_kind_svg(summary: Summary) -> str:
    """Per expected kind: incident-kind accuracy and acceptable-action rate, each with a
    95% (Wilson) interval and the number of scenarios."""
    kinds = list(summary.per_kind)
    figure, axes = _figure(max(6.0, 0.9 * len(kinds) + 2), 4.5)
    x = list(range(len(kinds)))
    width = 0.38
    for j, (name, flag, label, colour) in enumerate(_BARS):
        values: list[float] = []
        errors: list[list[float]] = [[], []]
        for kind in kinds:
            group = [s for s in summary.scores if s.incident_kind == kind]
            right = sum(bool(getattr(s, flag)) for s in group)
            value = getattr(summary.per_kind[kind], name) or 0.0
            lo, hi = wilson_interval(right, len(group))
            values.append(value)
            errors[0].append(value - lo)
            errors[1].append(hi - value)
        bars = axes.bar(
            [i + (j - 0.5) * width for i in x], values, width, yerr=errors, capsize=3,
            color=colour, label=label,
        )  # fmt: skip
        for kind, patch in zip(kinds, bars.patches, strict=True):
            patch.set_gid(f"{name}-{kind}")
        if bars.errorbar is not None:
            bars.errorbar.lines[2][0].set_gid(f"interval-{name}")
    axes.set_xticks(x, [f"{k}\n(n={summary.per_kind[k].scenarios})" for k in kinds])
    axes.tick_params(axis="x", labelrotation=35, labelsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("share of scenarios (95% interval)")
    axes.set_title("Per incident kind")
    figure.legend(loc="outside upper center", ncol=len(_BARS))
    return _svg_text(figure)


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
        "calibration.svg": calibration_svg(summary),
        "per_kind.svg": per_kind_svg(summary),
    }
    check_output_dir(out_dir, "--report")
    written: list[Path] = []
    for name, text in files.items():
        write_text_atomic(out_dir / name, text, "--report")
        written.append(out_dir / name)
    return written
