"""The names of the signals observe watches: a vocabulary that imports nothing.

A signal's name is what an anomaly record's `metric` says, what a root cause explains,
and what the incident catalogue (tools/incidents/) names when it says which signal a kind
moves. The catalogue sits below the contract and the signal modules above it, so both
read their names from here. The registry (`registry.SIGNAL_MODULES`) is the live list: a
signal added there gets its name from its own module.
"""

from __future__ import annotations

from typing import Literal

SUCCESS_RATE = "success_rate"
ERROR_RATE = "error_rate"
VOLUME = "volume"
VOLUME_SURGE = "volume_surge"
LATENCY = "latency_p95"
THREE_DS_FAILURE = "three_ds_failure_rate"
DECLINE_CODE = "decline_code"
HARD_DECLINE_SHARE = "hard_decline_share"

# How an anomaly's baseline and current values read: a rate, a count of attempts, or ms.
Unit = Literal["rate", "attempts", "ms"]

# What a signal's bad events are, which is what classification reads: failing attempts,
# slow attempts, attempts that never arrived, or attempts beyond the usual share.
Measure = Literal["failures", "slowness", "missing", "surplus"]
FAILURES: Measure = "failures"
SLOWNESS: Measure = "slowness"
MISSING: Measure = "missing"
SURPLUS: Measure = "surplus"
