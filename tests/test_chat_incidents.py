"""`what is wrong?` and `which processors are affected?`, for every incident kind, offline.

On scenarios of the project's generator and of the independently written one, the stub's
first answer must name the root-cause segment's values (ground truth), the incident kind
(ground truth) and the segment's success rate before and after as find_anomalies computed
it; the follow-up in the same thread must name every processor drill_down marks affected
with its rate. Every figure in both answers must come from a tool result of the turn.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.chat.session import TurnResult
from tests.chat_helpers import session, shown
from tests.independent_scenarios import build
from tools.contract import INCIDENT_KINDS, Expected
from tools.data import read_scenario
from tools.generate import GenerateOptions, generate_scenario

# Kinds whose incident lowers a success rate: processors carry failing traffic.
RATE_KINDS = (
    "processor_outage",
    "processor_degradation",
    "issuer_outage",
    "network_incident",
    "three_ds_failure",
    "fraud_rule_misfire",
    "benign_shift",
)


def _folder(generator: str, kind: str, out: Path) -> Path:
    if generator == "ours":
        options = GenerateOptions(file_format="csv")
        return generate_scenario(out / generator, kind, 7, 10_000, options=options)
    return build(out / generator, kind, seed=4, rows=12_000)


@pytest.fixture(scope="module")
def conversations(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, str], tuple[Expected, TurnResult, TurnResult]]:
    out = tmp_path_factory.mktemp("scenarios")
    found = {}
    for generator in ("ours", "independent"):
        for kind in INCIDENT_KINDS:
            folder = _folder(generator, kind, out)
            expected = read_scenario(folder / "scenario.json").expected
            assert expected is not None
            chat = session(folder, tmp_path_factory.mktemp("home"))
            first = chat.ask("what is wrong?")
            second = chat.ask("which processors are affected?")
            chat.ctx.close()
            found[(generator, kind)] = (expected, first, second)
    return found


CASES = [(g, k) for g in ("ours", "independent") for k in INCIDENT_KINDS]


@pytest.mark.parametrize(("generator", "kind"), CASES)
def test_what_is_wrong_names_the_root_cause_kind_and_rates(
    conversations: dict[tuple[str, str], tuple[Expected, TurnResult, TurnResult]],
    generator: str,
    kind: str,
) -> None:
    expected, first, _ = conversations[(generator, kind)]
    answer = first.answer or ""
    assert first.tools_used == ["find_anomalies"]
    assert expected.incident_kind == kind or kind == "none"
    assert expected.incident_kind in answer
    for segment in expected.root_cause:
        for value in segment.values():
            assert value in answer, (value, answer)
    incidents = first.tool_calls[0].data["incidents"]
    if expected.root_cause:
        found = next(i for i in incidents if i["segment"] in expected.root_cause)
        assert shown(found["success_rate"]["baseline"]) in answer
        assert shown(found["success_rate"]["current"]) in answer
    else:
        assert incidents == [] and "No anomaly" in answer
    assert first.figures and not first.unverified


@pytest.mark.parametrize(("generator", "kind"), [(g, k) for g, k in CASES if k in RATE_KINDS])
def test_which_processors_names_each_affected_processor_with_its_rate(
    conversations: dict[tuple[str, str], tuple[Expected, TurnResult, TurnResult]],
    generator: str,
    kind: str,
) -> None:
    expected, _, second = conversations[(generator, kind)]
    answer = second.answer or ""
    # The follow-up reads the root cause from the thread: no second find_anomalies.
    assert second.tools_used == ["drill_down"]
    drill = second.tool_calls[0]
    root = expected.root_cause[0]
    assert drill.args["dimension"] == "processor"
    assert drill.args["segment"] == root
    affected = [c for c in drill.data["children"] if c["affected"]]
    assert affected, "the failing traffic runs on some processor"
    for child in affected:
        line = next(ln for ln in answer.splitlines() if ln.startswith(f"- {child['value']}:"))
        assert shown(child["success_rate"]["current"]) in line
        assert line.endswith(", affected")
    if "processor" in root:
        assert [c["value"] for c in affected] == [root["processor"]]
    assert not second.unverified
