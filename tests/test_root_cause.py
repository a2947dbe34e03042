"""Root-cause localization tells apart the structures that decide the remedy."""

from __future__ import annotations

import pytest

from tests.segment_data import BASELINE, CURRENT, IN_CURRENT, traffic
from tools.config import ObserveConfig
from tools.observe import observe

CFG = ObserveConfig()


def _root(incident: str, seed: int, rows: int = 60_000) -> list[dict[str, str]]:
    result = observe(traffic(rows, seed, incident), CFG, baseline=BASELINE, current=CURRENT)
    return result.root_cause


def _fail(where: str, share: float, code: str = "91") -> str:
    return (
        f"UPDATE transactions SET status = 'declined', decline_code = '{code}' "
        f"WHERE {IN_CURRENT} AND ({where}) AND u2 < {share}"
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_processor_in_one_country_is_not_the_whole_country(seed: int) -> None:
    # Rerouting helps here: the other processors serve BR fine.
    root = _root(_fail("processor = 'acq_a' AND issuer_country = 'BR'", 0.4), seed)
    assert root == [{"processor": "acq_a", "issuer_country": "BR"}]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_country_on_every_processor_is_not_one_processor(seed: int) -> None:
    # Rerouting cannot help here: BR fails on every processor.
    root = _root(_fail("issuer_country = 'BR'", 0.4), seed)
    assert root == [{"issuer_country": "BR"}]


@pytest.mark.parametrize("seed", [1, 2])
def test_whole_processor(seed: int) -> None:
    root = _root(_fail("processor = 'acq_c'", 0.5, "timeout"), seed)
    assert root == [{"processor": "acq_c"}]


@pytest.mark.parametrize("seed", [1, 2])
def test_two_simultaneous_incidents_are_both_found(seed: int) -> None:
    both = _root(_fail("issuer_country = 'JP' OR processor = 'acq_c'", 0.45), seed)
    assert sorted(both, key=str) == sorted(
        [{"issuer_country": "JP"}, {"processor": "acq_c"}], key=str
    )


def test_volume_drop_of_one_payment_method() -> None:
    incident = (
        f"DELETE FROM transactions WHERE {IN_CURRENT} AND payment_method = 'wallet' AND u2 < 0.8"
    )
    result = observe(traffic(60_000, 4, incident), CFG, baseline=BASELINE, current=CURRENT)
    assert result.root_cause == [{"payment_method": "wallet"}]
    assert {a.metric for a in result.anomalies if a.segment == {"payment_method": "wallet"}} == {
        "volume"
    }


def test_latency_spike_on_one_processor() -> None:
    incident = (
        "UPDATE transactions SET latency_ms = latency_ms * 6 "
        f"WHERE {IN_CURRENT} AND processor = 'acq_b'"
    )
    result = observe(traffic(60_000, 5, incident), CFG, baseline=BASELINE, current=CURRENT)
    assert result.root_cause == [{"processor": "acq_b"}]
    top = result.anomalies[0]
    assert top.metric == "latency_p95" and top.current > 3 * top.baseline


def test_three_dimension_root_cause_when_depth_is_raised() -> None:
    where = "processor = 'acq_a' AND issuer_country = 'BR' AND card_network = 'visa'"
    incident = _fail(where, 0.7)
    deep = ObserveConfig(depth=3)
    result = observe(traffic(120_000, 6, incident), deep, baseline=BASELINE, current=CURRENT)
    assert result.root_cause == [
        {"processor": "acq_a", "card_network": "visa", "issuer_country": "BR"}
    ]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_quiet_traffic_raises_nothing(seed: int) -> None:
    result = observe(traffic(60_000, seed), CFG, baseline=BASELINE, current=CURRENT)
    assert not result.anomalous
    assert result.root_cause == []


def test_small_drop_below_the_minimum_effect_is_not_an_anomaly() -> None:
    # 2 pp on one processor: statistically visible at this volume, but below 3 pp.
    result = observe(
        traffic(200_000, 7, _fail("processor = 'acq_d'", 0.02)),
        CFG,
        baseline=BASELINE,
        current=CURRENT,
    )
    assert not any(a.metric == "success_rate" for a in result.anomalies)
