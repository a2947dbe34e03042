"""What `payops observe`, `run`, `approve`, `reject` and `learn` print.

Every screen is sized to the terminal (tools/terminal.py) and says what happened in the
words a payment team uses: the dimensions a run segments by and the columns it skipped,
the kill switch when it is on, the remedies guard refused and the rule that refused each,
why a human must approve, "rejected" for a rejection and "already executed" for an action
the ledger had already run. Everything from outside passes through `printable`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from agent.formats import change_pp, count, level, pct
from agent.state import AgentState, Approval, IncidentHypothesis
from tools import actions
from tools.config import Setting, format_value
from tools.contract import (
    AnomalyRecord,
    CodeShift,
    Decision,
    Outcome,
    RefusedRemedy,
    Segment,
    TimeWindow,
    Violation,
    format_segment,
)
from tools.dimensions import DimensionChoice
from tools.guardrails import GuardVerdict
from tools.learning import ActionStats
from tools.observe import Observation, SegmentEvidence
from tools.terminal import Column, fitted_table, segment_cell
from tools.text import printable

# Anomalous segments listed unless `--all` is given.
TOP_ANOMALIES = 8
_SEVERITY_COLOUR = {"critical": "red", "warning": "yellow", "info": "cyan"}


def span(window: TimeWindow) -> str:
    """`2026-03-02 06:00–09:00 UTC`, with the end's date when it is another day."""
    start, end = window.start, window.end
    tail = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M}–{tail} UTC"


def _width(console: Console) -> int:
    return console.size.width


# ---------------------------------------------------------------------------------------
# observe


def same_traffic(
    anomalies: Sequence[AnomalyRecord], dimensions: Sequence[str] = ()
) -> list[tuple[AnomalyRecord, list[Segment]]]:
    """Anomaly rows grouped when they are provably the same traffic under different names.

    Two segments with equal attempts in both windows are the same traffic when one
    contains the other (it fixes more dimensions), or when their intersection is also
    listed with the same counts. Then, if X and Y are the same traffic, so are "X and Z"
    and "Y and Z" (`issuer_country=BR` is `currency=BRL`, so `issuer_country=BR, mcc=7995`
    is `currency=BRL, mcc=7995`). Each group is shown once, under its simplest name, with
    the other names beside it; the order is kept. Nothing is merged on a guess.
    """

    def signature(a: AnomalyRecord) -> tuple[object, ...]:
        return (a.metric, a.baseline_attempts, a.current_attempts, a.baseline, a.current)

    items = [frozenset(a.segment.items()) for a in anomalies]
    parent = list(range(len(anomalies)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    def same_counts(i: int, j: int) -> bool:
        return signature(anomalies[i]) == signature(anomalies[j])

    def direct(i: int, j: int) -> bool:
        if items[i] <= items[j] or items[j] <= items[i]:
            return True
        both = items[i] | items[j]
        consistent = len({k for k, _ in both}) == len(both)
        return consistent and any(items[k] == both and same_counts(k, i) for k in range(len(items)))

    def derived(i: int, j: int) -> bool:
        # X ≡ Y (already proven) and i = X ∪ Z, j = Y ∪ Z.
        for x in range(len(items)):
            for y in range(len(items)):
                if (
                    x != y
                    and root(x) == root(y)
                    and items[x] <= items[i]
                    and items[y] <= items[j]
                    and items[i] - items[x] == items[j] - items[y]
                ):
                    return True
        return False

    for rule in (direct, derived):
        changed = True
        while changed:
            changed = False
            for i in range(len(anomalies)):
                for j in range(i):
                    if root(i) != root(j) and same_counts(i, j) and rule(i, j):
                        parent[root(i)] = root(j)
                        changed = True
    groups: dict[int, list[int]] = {}
    for i in range(len(anomalies)):
        groups.setdefault(root(i), []).append(i)
    order = {d: n for n, d in enumerate(dimensions)}

    def simplest(i: int) -> tuple[int, list[int], int]:
        seg = anomalies[i].segment
        return len(seg), sorted(order.get(d, len(order)) for d in seg), i

    out = []
    for members in sorted(groups.values(), key=min):
        first = min(members, key=simplest)
        others = [anomalies[i].segment for i in members if i != first]
        out.append((anomalies[first], others))
    return out


def _values(a: AnomalyRecord) -> tuple[str, str]:
    from tools.signals.registry import unit_of

    unit = unit_of(a.metric)
    return level(unit, a.baseline), level(unit, a.current)


def _signal_name(a: AnomalyRecord) -> str:
    """`success rate`, `decline code 05`: the signal as a person reads it."""
    name = a.metric.replace("_", " ")
    return name if a.detail is None else f"{name} {a.detail}"


def codes_moved(shifts: Sequence[CodeShift], limit: int = 3) -> str:
    """`05 +26.1 pp, 62 +14.4 pp`: how the top codes' shares of attempts moved."""
    return ", ".join(
        f"{c.code} {change_pp(c.current_share - c.baseline_share)}" for c in shifts[:limit]
    )


_ANOMALY_COLUMNS = (
    Column("segment", wraps=True),
    Column("metric", wraps=True),
    Column("before", justify="right"),
    Column("now", justify="right"),
    Column("attempts now", drop=3, justify="right"),
    Column("p-value", drop=2, justify="right"),
    Column("severity", drop=1),
    Column("codes moved", drop=4),
)


def render_dimensions(console: Console, choice: DimensionChoice) -> None:
    """The dimensions in use, the extra columns among them, and the skipped with why."""
    added = set(choice.added)
    names = ", ".join(f"{d} (extra column)" if d in added else d for d in choice.used)
    origin = {"defaults": "", "scenario": " (from scenario.json)", "option": " (--dimensions)"}
    console.print(f"dimensions{origin[choice.origin]}: {printable(names)}")
    for skipped in choice.skipped:
        console.print(f"  skipped {printable(skipped.name)}: {printable(skipped.reason)}")
    if choice.origin != "option":
        console.print(
            "  [dim]--dimensions +NAME adds a column, -NAME removes one, a,b,c replaces them[/dim]"
        )


def _evidence_line(ev: SegmentEvidence | None, metric: str) -> str:
    if ev is None:
        return ""
    from tools.signals.registry import unit_of

    b, c = ev.baseline, ev.current
    unit = unit_of(metric)
    if unit == "ms":
        return f"p95 latency {count(b.latency_p95)} → {count(c.latency_p95)} ms"
    if unit == "attempts":
        return f"{b.attempts:,} attempts in the baseline, {c.attempts:,} now"
    rates = f"{pct(b.success_rate)} → {pct(c.success_rate)}"
    return f"success rate {rates} on {c.attempts:,} attempts now"


def render_root_causes(console: Console, obs: Observation) -> None:
    """Each root cause: where, how much it moved, what share it explains, codes that moved."""
    evidence = dict(enumerate(obs.evidence))
    for i, rc in enumerate(obs.root_causes):
        ev = evidence.get(i)
        parts = [
            _evidence_line(ev, rc.metric),
            f"explains {rc.explained_share:.0%} of the change",
        ]
        if ev is not None and ev.code_shifts:
            parts.append(f"codes that moved: {codes_moved(ev.code_shifts)}")
        console.print(
            f"[bold]root cause[/bold]: {printable(format_segment(rc.segment))} — "
            + printable("; ".join(p for p in parts if p))
        )


def render_observation(
    console: Console,
    obs: Observation,
    source: str,
    *,
    choice: DimensionChoice | None = None,
    show_all: bool = False,
) -> None:
    """What observe found, as a person reads it, at the console's width."""
    console.rule(f"[bold]observe[/bold] {printable(source)}")
    attempts = f"{obs.overall.current.attempts:,} attempts now; " if obs.overall else ""
    console.print(f"baseline {span(obs.baseline)}, current {span(obs.current)}")
    console.print(f"{attempts}{obs.tests:,} segment tests")
    if choice is not None:
        render_dimensions(console, choice)
    if not obs.anomalous:
        console.print("[green]No anomaly[/green]: no segment changed significantly.")
        return
    groups = same_traffic(obs.anomalies, obs.dimensions)
    shown = groups if show_all else groups[:TOP_ANOMALIES]
    rows = []
    for a, aliases in shown:
        before, now = _values(a)
        colour = _SEVERITY_COLOUR[a.severity]
        cell = segment_cell(a.segment)
        if aliases:
            same = "; ".join(format_segment(s) for s in aliases)
            cell += f"\n[dim](same traffic as {printable(same)})[/dim]"
        rows.append(
            [
                cell,
                printable(_signal_name(a)),
                before,
                now,
                f"{a.current_attempts:,}",
                f"{a.p_value:.1e}",
                f"[{colour}]{a.severity}[/{colour}]",
                printable(codes_moved(a.decline_codes)),
            ]
        )
    console.print(fitted_table(_width(console), _ANOMALY_COLUMNS, rows))
    if len(groups) > len(shown):
        more = len(groups) - len(shown)
        console.print(f"… and {more} more anomalous segments (--all lists them)")
    render_root_causes(console, obs)


# ---------------------------------------------------------------------------------------
# A run, step by step.


def _refused_line(r: RefusedRemedy) -> str:
    params = printable(json.dumps(r.params, ensure_ascii=False))
    rules = "; ".join(f"{v.rule}: {v.detail}" for v in r.violations)
    return f"  [red]✗[/red] {r.action} {params}: {printable(rules)}"


@dataclass
class RunView:
    """Prints each step of a run as its update arrives (the graph's `on_update`).

    It keeps what earlier steps said (the observation, the decision), so later steps can
    name the incident's segment and tell a page from a traffic change.
    """

    console: Console
    source: str
    choice: DimensionChoice | None = None
    kill_switch: str | None = None
    show_all: bool = False
    observation: Observation | None = None
    decision: Decision | None = None
    already_executed: bool = False
    _printed: set[str] = field(default_factory=set)

    def prime(self, state: AgentState | None) -> None:
        """Remember what a paused run already showed (its observation and decision)."""
        if state is not None:
            self.observation, self.decision = state.observation, state.decision

    def __call__(self, node: str, update: dict[str, Any]) -> None:
        """Render one node's update."""
        handler = getattr(self, f"_{node}", None)
        if handler is not None:
            handler(update)

    def _observe(self, update: dict[str, Any]) -> None:
        self.observation = Observation.model_validate(update["observation"])
        render_observation(
            self.console, self.observation, self.source, choice=self.choice, show_all=self.show_all
        )

    def _reason(self, update: dict[str, Any]) -> None:
        c = self.console
        c.rule("[bold]reason[/bold]")
        for h in update.get("hypotheses", [])[:3]:
            hyp = IncidentHypothesis.model_validate(h)
            c.print(f"hypothesis: [bold]{hyp.incident_kind}[/bold] ({hyp.confidence:.2f})")
        decision = Decision.model_validate(update["decision"])
        self.decision = decision
        c.print(
            f"decision: [bold]{decision.action}[/bold] "
            f"{printable(json.dumps(decision.params, ensure_ascii=False))} "
            f"confidence {decision.confidence:.2f}, risk {decision.risk}, "
            f"by {printable(decision.reasoner)}"
        )
        c.print(f"rationale: {printable(decision.rationale)}")
        refused = [RefusedRemedy.model_validate(r) for r in update.get("refused", [])]
        if refused:
            c.print("refused by guard (not offered as candidates):")
            for r in refused:
                c.print(_refused_line(r))

    def _guard(self, update: dict[str, Any]) -> None:
        c = self.console
        c.rule("[bold]guard[/bold]")
        if self.kill_switch:
            c.print(
                f"[red]kill switch on[/red] ({printable(self.kill_switch)}): guard refuses "
                "every action but a page"
            )
        verdict = GuardVerdict.model_validate(update["guard"])
        colour = {"approved": "green", "needs_approval": "yellow", "blocked": "red"}
        word = verdict.status.replace("_", " ")
        c.print(
            f"verdict: [{colour[verdict.status]}]{word}[/{colour[verdict.status]}] "
            f"(risk {verdict.risk})"
        )
        for v in verdict.violations:
            c.print(f"  [red]✗[/red] {v.rule}: {printable(v.detail)}")
        for e in verdict.escalations:
            c.print(f"  [yellow]![/yellow] {e.rule}: {printable(e.detail)}")

    def _approve(self, update: dict[str, Any]) -> None:

        approval = Approval.model_validate(update["approval"])
        self.console.rule("[bold]approval[/bold]")
        word = "approved" if approval.approved else "rejected"
        self.console.print(
            f"{word} by {printable(approval.by)}: {printable(approval.reason or 'no reason given')}"
        )

    def _incident_rate(self) -> str:
        obs = self.observation
        if obs is None or not obs.evidence:
            return ""
        ev = obs.evidence[0]
        return (
            f"{printable(format_segment(ev.segment))} is at {pct(ev.current.success_rate)} "
            f"({pct(ev.baseline.success_rate)} in the baseline)"
        )

    def _act(self, update: dict[str, Any]) -> None:
        c = self.console
        c.rule("[bold]act[/bold] (simulated)")
        if update.get("verdict") == "blocked":
            # Guard runs again when the action is claimed (e.g. after a human's approval).
            c.print("[red]blocked[/red]: guard refused it at the moment of acting")
            for v in update.get("violations", []):
                violation = Violation.model_validate(v)
                c.print(f"  [red]✗[/red] {violation.rule}: {printable(violation.detail)}")
            return
        outcome = Outcome.model_validate(update["outcome"]) if update.get("outcome") else None
        decision = self.decision
        if update.get("already_executed"):
            self.already_executed = True
            key = printable(str(update.get("idempotency_key", ""))[:16])
            c.print(
                f"[yellow]already executed[/yellow] earlier under idempotency key {key}…: "
                "not executed again; the outcome below is the stored one"
            )
        if decision is not None and actions.is_passive(decision.action):
            what = "paged on-call" if decision.action == "notify_oncall" else "did nothing"
            rate = self._incident_rate()
            c.print(f"{what}: nothing in the payment flow changed" + (f"; {rate}" if rate else ""))
            return
        if outcome is not None:
            lo, hi = outcome.interval or (outcome.after, outcome.after)
            where = (
                f" of {printable(format_segment(decision.target_segment()))}"
                if decision is not None
                else ""
            )
            c.print(
                f"success rate{where}: {pct(outcome.before)} -> {pct(outcome.after)} "
                f"({change_pp(outcome.improvement)}; 90% interval {pct(lo)}–{pct(hi)})"
            )

    def _learn(self, update: dict[str, Any]) -> None:
        self.console.rule("[bold]learn[/bold]")
        verdict = str(update.get("verdict"))
        violations = [Violation.model_validate(v) for v in update.get("violations", [])]
        rejected = next((v for v in violations if v.rule == "human_rejected"), None)
        recorded = "recorded in the learning store"
        if rejected is not None:
            said = printable(rejected.detail)  # "rejected by NAME: reason"
        elif verdict == "executed" and self.already_executed:
            # The ledger's key is also the learning store's: it was recorded the first time.
            said, recorded = "already executed earlier (not executed again)", "recorded then"
        elif verdict == "blocked":
            said = "blocked by guard (nothing executed)"
        elif verdict == "no_action":
            said = "nothing to do"
        else:
            said = verdict.replace("_", " ")
        self.console.print(f"outcome: [bold]{said}[/bold], {recorded}")


# ---------------------------------------------------------------------------------------
# The learning store.

_STATS_COLUMNS = (
    Column("kind"),
    Column("action"),
    Column("count", justify="right"),
    Column("executed", justify="right"),
    Column("success rate", justify="right"),
    Column("mean impr.", drop=1, justify="right"),
    Column("best", drop=2, justify="right"),
    Column("worst", drop=2, justify="right"),
)


def render_stats(console: Console, stats: Sequence[ActionStats], title: str) -> None:
    """Learning statistics; a page or no action changes no traffic, so it has no rate."""

    def f(x: float | None, as_pp: bool = True) -> str:
        if x is None or as_pp:
            return change_pp(x)
        return f"{x:.0%}"

    rows = []
    for s in stats:
        passive = s.action is not None and actions.is_passive(s.action)
        rows.append(
            [
                printable(s.incident_kind or "*"),
                printable(s.action or "*"),
                str(s.count),
                str(s.executed),
                "n/a" if passive else f(s.success_rate, as_pp=False),
                "n/a" if passive else f(s.mean_improvement),
                "n/a" if passive else f(s.best),
                "n/a" if passive else f(s.worst),
            ]
        )
    console.print(fitted_table(_width(console), _STATS_COLUMNS, rows, title=title))
    if any(s.action is not None and actions.is_passive(s.action) for s in stats):
        console.print("[dim]n/a: a page or no action changes no traffic, so it has no rate[/dim]")


# ---------------------------------------------------------------------------------------
# payops config

_SETTING_COLUMNS = (
    Column("key"),
    Column("value"),
    Column("source"),
    Column("note", drop=1),
)


def render_settings(
    console: Console, config_file: str, state_dir: str, settings: Sequence[Setting]
) -> None:
    """Every setting in force with where it came from, then where the state is kept."""
    console.print(f"config file: {printable(config_file)}")
    console.print(f"state directory: {printable(state_dir)}")
    rows = [
        [s.key, printable(format_value(s.value)), s.source, printable(s.note)] for s in settings
    ]
    console.print(fitted_table(_width(console), _SETTING_COLUMNS, rows))
