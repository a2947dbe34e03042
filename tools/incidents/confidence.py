"""The reasoner's confidences, in one table.

A confidence is the probability that the incident kind it is given to is right. Each
value below is a grade of evidence, not a kind: a kind module picks the grade its
evidence earns, so a new kind needs no new row. The values were calibrated together on
the scenario library at commit bda9995 ("Calibrate the reasoner's confidences on the
library: ECE 0.116 -> 0.047"; `payops eval` reports the ECE); each comment names the
value before that commit. Recalibrate them together, against the library's ECE and the
independent generator (tests/independent_scenarios.py), never one scenario at a time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Confidences:
    """Confidence per grade of evidence, and how mixed evidence lowers the leader's."""

    # Nothing changed significantly anywhere: right about 19 times in 20 (was 0.9).
    quiet: float = 0.95
    # Anomalies were flagged but none localized: a coin toss (unchanged).
    unlocalized: float = 0.5
    # A signature where the kind usually sits, with a second fact agreeing: its usual
    # width (an outage spans its processor, a degradation one slice of it), or a change
    # that went live on the segment just before (a fraud rule, a checkout release).
    # Was 0.9 (0.85 for a degradation on a slice).
    corroborated: float = 0.95
    # One clean signature: a code family (authentication, insufficient funds), a 3DS
    # failure rise, a latency shift on a processor, an issuer or network location for a
    # technical drop. Was 0.85.
    clean: float = 0.93
    # The signature without its corroboration: an outage on one slice of a processor,
    # fraud codes or a volume drop with no change to blame. Was 0.8 (outage) and 0.85.
    uncorroborated: float = 0.9
    # A pattern with a common look-alike: a slow p99 tail on a processor, a degradation
    # across a whole processor. Was 0.75.
    look_alike: float = 0.85
    # A signature away from where the kind usually sits: a latency shift on no
    # processor. Was 0.7.
    elsewhere: float = 0.75
    # A signature where the kind cannot sit: fraud codes outside a merchant (a fraud rule
    # is a merchant's). Unchanged.
    out_of_place: float = 0.7
    # The ceiling of a location claim when no code family explains a non-technical drop:
    # where it sits is then all there is. Unchanged.
    location_only: float = 0.6
    # A technical drop on no processor, issuer or network. Unchanged.
    unplaced: float = 0.55
    # Mixed evidence: a runner-up lowers the leader to
    # max(mixed_floor, leader - runner_up_weight * runner_up + mixed_offset): a runner-up
    # at 0.93 costs the leader 0.165, one at 0.7 (the least a counted claim gets) 0.05.
    # Set with the first reasoner and kept at bda9995.
    runner_up_weight: float = 0.5
    mixed_offset: float = 0.3
    mixed_floor: float = 0.5


CONFIDENCE = Confidences()
