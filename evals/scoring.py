"""Scoring of evaluation runs: pure functions from RunRecords and expectations to figures.

A scenario is *scored* when its scenario.json has `expected`; the others are run and
recorded but only counted here. Every figure is over the scored scenarios, and the same
figures are computed per expected incident kind.

Definitions (the harness is the yardstick for every later change, so they are fixed here):

- detection recall: share of expected-anomalous scenarios whose record is `anomalous`.
- false-alarm rate: share of expected-normal scenarios whose record is `anomalous`.
- kind accuracy: share of scenarios whose `incident_kind` equals the expected one (normal
  scenarios included: their right answer is `none`).
- root-cause precision / recall / F1: per scenario over *sets* of segments, a predicted
  segment matching an expected one only when the two dicts are equal. Both sets empty
  scores 1; otherwise precision = hits / predicted (0 when nothing predicted), recall =
  hits / expected (0 when nothing expected). Aggregates are *macro* averages: every
  scenario weighs the same, whatever the size of its root cause.
- action: `decision.action`, or `no_action` when the record has no decision.
- acceptable action: the action is in `expected.acceptable_actions`; `no_action` is also
  acceptable when the scenario is normal (`anomalous` false or kind `none`). The proposal
  is judged, whatever the guard's verdict.
- forbidden proposed / executed: counts of scenarios whose action is in
  `expected.forbidden_actions` (executed: and the verdict is `executed`).
- decision correct (the calibration event): action acceptable AND kind correct.
  Brier = mean (confidence - correct)^2; ECE = sum over 10 equal-width confidence bins of
  (bin share) * |mean confidence - share correct|. Records without a decision carry no
  confidence and are left out of both.
- regret: own = the executed action's simulated improvement (0 when nothing executed);
  reference = `expected.best_improvement` when the scenario states it, else the best
  improvement of an executed acceptable action for that scenario among the reference
  records (the runs being compared), else none. regret = max(0, reference - own), or
  max(0, -own) without a reference (doing nothing is always possible at 0), so an
  acceptable action with no better known alternative has regret 0.
- latency: mean and p95 (nearest rank) of `latency_ms`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tools.contract import (
    INCIDENT_KINDS,
    ActionName,
    Expected,
    IncidentKind,
    RunRecord,
    ScenarioSpec,
    Segment,
    Verdict,
    format_segment,
    segment_key,
)
from tools.data import DataError

CALIBRATION_BINS = 10
# The field of a run record that carries its scenario's `expected` (written by the harness).
EXPECTED_FIELD = "expected"

# Headline metrics in display order, with the direction that is an improvement.
HEADLINE: tuple[tuple[str, Literal["higher", "lower"]], ...] = (
    ("detection_recall", "higher"),
    ("false_alarm_rate", "lower"),
    ("kind_accuracy", "higher"),
    ("root_cause_f1", "higher"),
    ("acceptable_action_rate", "higher"),
    ("decision_accuracy", "higher"),
    ("forbidden_proposed", "lower"),
    ("forbidden_executed", "lower"),
    ("brier", "lower"),
    ("ece", "lower"),
    ("mean_regret", "lower"),
    ("latency_mean_ms", "lower"),
    ("latency_p95_ms", "lower"),
    ("errors", "lower"),
)


class ScenarioScore(BaseModel):
    """How one record fared against its scenario's expectation."""

    model_config = ConfigDict(extra="forbid")
    scenario_id: str
    incident_kind: IncidentKind = Field(description="expected kind")
    predicted_kind: IncidentKind
    anomalous: bool = Field(description="expected")
    flagged: bool = Field(description="the record says anomalous")
    kind_correct: bool
    root_cause_precision: float
    root_cause_recall: float
    root_cause_f1: float
    action: ActionName
    verdict: Verdict
    acceptable: bool
    forbidden_proposed: bool
    forbidden_executed: bool
    confidence: float | None
    correct: bool = Field(description="action acceptable and kind correct")
    improvement: float | None
    regret: float
    latency_ms: float
    error: str | None = None


class Metrics(BaseModel):
    """The figures over a set of scored scenarios; None when a figure has no denominator."""

    model_config = ConfigDict(extra="forbid")
    scenarios: int
    anomalous: int
    normal: int
    detection_recall: float | None
    false_alarm_rate: float | None
    kind_accuracy: float | None
    root_cause_precision: float | None
    root_cause_recall: float | None
    root_cause_f1: float | None
    acceptable_action_rate: float | None
    decision_accuracy: float | None
    forbidden_proposed: int
    forbidden_executed: int
    brier: float | None
    ece: float | None
    mean_regret: float | None
    latency_mean_ms: float | None
    latency_p95_ms: float | None
    errors: int


class CalibrationBin(BaseModel):
    """One confidence bin of the reliability curve."""

    model_config = ConfigDict(extra="forbid")
    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


class Summary(BaseModel):
    """Everything `payops eval` reports about one run; written as summary.json."""

    model_config = ConfigDict(extra="forbid")
    records: int
    scored: int
    unscored: list[str] = Field(default_factory=list, description="ids without expected")
    errored: list[str] = Field(default_factory=list, description="ids whose run failed")
    overall: Metrics
    per_kind: dict[str, Metrics] = Field(description="keyed by expected incident kind")
    calibration: list[CalibrationBin]
    scores: list[ScenarioScore]


class MetricChange(BaseModel):
    """One headline metric before and after."""

    model_config = ConfigDict(extra="forbid")
    name: str
    before: float | None
    after: float | None
    delta: float | None
    better: bool | None = Field(description="None when unchanged or not comparable")


class ScenarioChange(BaseModel):
    """A scenario whose outcome differs between two runs: field -> (before, after)."""

    model_config = ConfigDict(extra="forbid")
    scenario_id: str
    changes: dict[str, tuple[str, str]]


class Comparison(BaseModel):
    """Two runs side by side: metric changes and the scenarios whose outcome changed."""

    model_config = ConfigDict(extra="forbid")
    before: Summary
    after: Summary
    metrics: list[MetricChange]
    changed: list[ScenarioChange]
    only_before: list[str]
    only_after: list[str]


class Floors(BaseModel):
    """evals/floors.json: bounds the headline metrics must stay within."""

    model_config = ConfigDict(extra="forbid")
    note: str = ""
    at_least: dict[str, float] = Field(default_factory=dict)
    at_most: dict[str, float] = Field(default_factory=dict)

    @field_validator("at_least", "at_most")
    @classmethod
    def _known_metrics(cls, bounds: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(bounds) - set(Metrics.model_fields))
        if unknown:
            raise ValueError(f"unknown metric(s): {', '.join(unknown)}")
        return bounds


# ---------------------------------------------------------------------------------------
# Per-scenario figures.


def expectations(specs: Mapping[str, ScenarioSpec]) -> dict[str, Expected]:
    """The `expected` of every scenario that has one, keyed by scenario id."""
    return {sid: spec.expected for sid, spec in specs.items() if spec.expected is not None}


def recorded_expectations(records: Iterable[RunRecord]) -> dict[str, Expected]:
    """The `expected` that `payops eval` wrote into each record, keyed by scenario id."""
    found: dict[str, Expected] = {}
    for record in records:
        raw = (record.model_extra or {}).get(EXPECTED_FIELD)
        if raw is not None:
            found[record.scenario_id] = Expected.model_validate(raw)
    return found


def action_of(record: RunRecord) -> ActionName:
    """The action a record proposed (`no_action` when it has no decision)."""
    return record.decision.action if record.decision is not None else "no_action"


def record_error(record: RunRecord) -> str | None:
    """The `error` extra field the harness sets when a scenario could not be run."""
    error = (record.model_extra or {}).get("error")
    return None if error is None else str(error)


def is_acceptable(action: str, expected: Expected) -> bool:
    """Whether `action` is an acceptable remedy for the scenario (see module docstring)."""
    if action in expected.acceptable_actions:
        return True
    normal = not expected.anomalous or expected.incident_kind == "none"
    return action == "no_action" and normal


def root_cause_scores(
    predicted: Iterable[Segment], expected: Iterable[Segment]
) -> tuple[float, float, float]:
    """(precision, recall, F1) of predicted vs expected root-cause segment sets."""
    pred = {segment_key(s) for s in predicted}
    exp = {segment_key(s) for s in expected}
    if not pred and not exp:
        return 1.0, 1.0, 1.0
    hits = len(pred & exp)
    precision = hits / len(pred) if pred else 0.0
    recall = hits / len(exp) if exp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def stated_best_improvement(expected: Expected) -> float | None:
    """`expected.best_improvement` when the scenario states it (an optional extra field)."""
    value = (expected.model_extra or {}).get("best_improvement")
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _executed_improvement(record: RunRecord) -> float | None:
    if record.verdict == "executed" and record.outcome is not None:
        return record.outcome.improvement
    return None


def reference_improvements(
    records: Iterable[RunRecord], expected: Mapping[str, Expected]
) -> dict[str, float]:
    """Per scenario, the best improvement any executed acceptable action achieved."""
    best: dict[str, float] = {}
    for record in records:
        exp = expected.get(record.scenario_id)
        gain = _executed_improvement(record)
        if exp is None or gain is None or not is_acceptable(action_of(record), exp):
            continue
        best[record.scenario_id] = max(gain, best.get(record.scenario_id, gain))
    return best


def regret(own: float | None, reference: float | None) -> float:
    """Improvement left on the table (see module docstring); never negative."""
    gain = 0.0 if own is None else own
    # Without a reference, doing nothing (gain 0) is the alternative every scenario has.
    return max(0.0, (0.0 if reference is None else reference) - gain)


def score_record(record: RunRecord, expected: Expected, reference: float | None) -> ScenarioScore:
    """Score one record against its expectation; `reference` is the regret reference."""
    action = action_of(record)
    precision, recall, f1 = root_cause_scores(record.root_cause, expected.root_cause)
    kind_correct = record.incident_kind == expected.incident_kind
    acceptable = is_acceptable(action, expected)
    forbidden = action in expected.forbidden_actions
    stated = stated_best_improvement(expected)
    own = _executed_improvement(record)
    return ScenarioScore(
        scenario_id=record.scenario_id,
        incident_kind=expected.incident_kind,
        predicted_kind=record.incident_kind,
        anomalous=expected.anomalous,
        flagged=record.anomalous,
        kind_correct=kind_correct,
        root_cause_precision=precision,
        root_cause_recall=recall,
        root_cause_f1=f1,
        action=action,
        verdict=record.verdict,
        acceptable=acceptable,
        forbidden_proposed=forbidden,
        forbidden_executed=forbidden and record.verdict == "executed",
        confidence=record.decision.confidence if record.decision is not None else None,
        correct=acceptable and kind_correct,
        improvement=own,
        regret=regret(own, stated if stated is not None else reference),
        latency_ms=record.latency_ms,
        error=record_error(record),
    )


# ---------------------------------------------------------------------------------------
# Aggregates.


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def p95(values: Sequence[float]) -> float | None:
    """95th percentile by nearest rank (an observed value, no interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def calibration_bins(
    pairs: Sequence[tuple[float, bool]], bins: int = CALIBRATION_BINS
) -> list[CalibrationBin]:
    """Reliability bins of (confidence, correct) pairs; equal width, 1.0 in the last bin."""
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for confidence, correct in pairs:
        members[min(int(confidence * bins), bins - 1)].append((confidence, correct))
    return [
        CalibrationBin(
            lower=i / bins,
            upper=(i + 1) / bins,
            count=len(group),
            mean_confidence=_mean([c for c, _ in group]),
            accuracy=_rate([ok for _, ok in group]),
        )
        for i, group in enumerate(members)
    ]


def expected_calibration_error(bins: Sequence[CalibrationBin]) -> float | None:
    """ECE: bin-share-weighted mean |mean confidence - accuracy| over non-empty bins."""
    total = sum(b.count for b in bins)
    if total == 0:
        return None
    return math.fsum(
        b.count / total * abs((b.mean_confidence or 0.0) - (b.accuracy or 0.0)) for b in bins
    )


def brier_score(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """Mean squared gap between confidence and the 0/1 correctness of the decision."""
    return _mean([(c - float(ok)) ** 2 for c, ok in pairs])


def _confidence_pairs(scores: Sequence[ScenarioScore]) -> list[tuple[float, bool]]:
    return [(s.confidence, s.correct) for s in scores if s.confidence is not None]


def metrics(scores: Sequence[ScenarioScore]) -> Metrics:
    """Aggregate figures over scored scenarios (module docstring has the definitions)."""
    anomalous = [s for s in scores if s.anomalous]
    normal = [s for s in scores if not s.anomalous]
    pairs = _confidence_pairs(scores)
    latencies = [s.latency_ms for s in scores]
    return Metrics(
        scenarios=len(scores),
        anomalous=len(anomalous),
        normal=len(normal),
        detection_recall=_rate([s.flagged for s in anomalous]),
        false_alarm_rate=_rate([s.flagged for s in normal]),
        kind_accuracy=_rate([s.kind_correct for s in scores]),
        root_cause_precision=_mean([s.root_cause_precision for s in scores]),
        root_cause_recall=_mean([s.root_cause_recall for s in scores]),
        root_cause_f1=_mean([s.root_cause_f1 for s in scores]),
        acceptable_action_rate=_rate([s.acceptable for s in scores]),
        decision_accuracy=_rate([s.correct for s in scores]),
        forbidden_proposed=sum(s.forbidden_proposed for s in scores),
        forbidden_executed=sum(s.forbidden_executed for s in scores),
        brier=brier_score(pairs),
        ece=expected_calibration_error(calibration_bins(pairs)),
        mean_regret=_mean([s.regret for s in scores]),
        latency_mean_ms=_mean(latencies),
        latency_p95_ms=p95(latencies),
        errors=sum(s.error is not None for s in scores),
    )


def summarize(
    records: Sequence[RunRecord],
    expected: Mapping[str, Expected],
    *,
    reference_records: Iterable[RunRecord] | None = None,
) -> Summary:
    """Score a run. `reference_records` (default: `records`) feed the regret reference;
    pass every run being compared so each is judged against the same best known action."""
    pool = records if reference_records is None else reference_records
    references = reference_improvements(pool, expected)
    scores: list[ScenarioScore] = []
    unscored: list[str] = []
    for record in records:
        exp = expected.get(record.scenario_id)
        if exp is None:
            unscored.append(record.scenario_id)
            continue
        scores.append(score_record(record, exp, references.get(record.scenario_id)))
    per_kind = {
        kind: metrics(group)
        for kind in INCIDENT_KINDS
        if (group := [s for s in scores if s.incident_kind == kind])
    }
    return Summary(
        records=len(records),
        scored=len(scores),
        unscored=unscored,
        errored=[r.scenario_id for r in records if record_error(r) is not None],
        overall=metrics(scores),
        per_kind=per_kind,
        calibration=calibration_bins(_confidence_pairs(scores)),
        scores=scores,
    )


# ---------------------------------------------------------------------------------------
# Floors (the regression gate) and comparison of two runs.


def load_floors(path: Path) -> Floors:
    """Read a floors file; DataError names the file on a bad one."""
    try:
        return Floors.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot read floors: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DataError(path, f"field {where}: {first['msg']}") from None


def _figure(m: Metrics, name: str) -> float | None:
    value = getattr(m, name)
    return None if value is None else float(value)


def check_floors(m: Metrics, floors: Floors) -> list[str]:
    """Every breached bound, as a sentence; a figure that cannot be computed breaches."""
    breaches: list[str] = []
    for name, bound in floors.at_least.items():
        value = _figure(m, name)
        if value is None or value < bound:
            breaches.append(f"{name} = {value} is below its floor {bound}")
    for name, bound in floors.at_most.items():
        value = _figure(m, name)
        if value is None or value > bound:
            breaches.append(f"{name} = {value} is above its ceiling {bound}")
    return breaches


def _outcome_fields(record: RunRecord, score: ScenarioScore | None) -> dict[str, str]:
    unique = {segment_key(s): s for s in record.root_cause}.values()
    root = sorted(format_segment(s) for s in unique)
    fields = {
        "anomalous": str(record.anomalous).lower(),
        "incident_kind": record.incident_kind,
        "action": action_of(record),
        "verdict": record.verdict,
        "root_cause": "; ".join(root) or "none",
    }
    if score is not None:
        fields["correct"] = str(score.correct).lower()
    return fields


def _by_id(records: Sequence[RunRecord], which: str) -> dict[str, RunRecord]:
    by_id: dict[str, RunRecord] = {}
    for record in records:
        if record.scenario_id in by_id:
            raise ValueError(f"scenario {record.scenario_id} appears twice in the {which} run")
        by_id[record.scenario_id] = record
    return by_id


def compare(
    before: Sequence[RunRecord], after: Sequence[RunRecord], expected: Mapping[str, Expected]
) -> Comparison:
    """Metric changes from `before` to `after`, and every scenario whose outcome changed
    (anomalous flag, kind, action, verdict, root-cause set or correctness)."""
    pool = [*before, *after]
    a = summarize(before, expected, reference_records=pool)
    b = summarize(after, expected, reference_records=pool)
    changes: list[MetricChange] = []
    for name, direction in HEADLINE:
        x, y = _figure(a.overall, name), _figure(b.overall, name)
        delta = None if x is None or y is None else y - x
        better = None
        if delta is not None and delta != 0:
            better = delta > 0 if direction == "higher" else delta < 0
        changes.append(MetricChange(name=name, before=x, after=y, delta=delta, better=better))
    a_records, b_records = _by_id(before, "first"), _by_id(after, "second")
    a_scores = {s.scenario_id: s for s in a.scores}
    b_scores = {s.scenario_id: s for s in b.scores}
    changed: list[ScenarioChange] = []
    for sid, rec_a in a_records.items():
        rec_b = b_records.get(sid)
        if rec_b is None:
            continue
        fa = _outcome_fields(rec_a, a_scores.get(sid))
        fb = _outcome_fields(rec_b, b_scores.get(sid))
        diff = {k: (fa[k], fb[k]) for k in fa if fa[k] != fb.get(k)}
        if diff:
            changed.append(ScenarioChange(scenario_id=sid, changes=diff))
    return Comparison(
        before=a,
        after=b,
        metrics=changes,
        changed=changed,
        only_before=[sid for sid in a_records if sid not in b_records],
        only_after=[sid for sid in b_records if sid not in a_records],
    )
