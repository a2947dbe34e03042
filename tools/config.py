"""The one configuration system of payops: defaults in code, optionally tightened by a TOML file.

Looked up in this order: an explicit `--config` path, `$PAYOPS_CONFIG`, `./payops.toml`.
The state directory (learning store, action ledger, checkpoints, scan cache) is
`$PAYOPS_HOME`, else `./.payops`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.guardrails.limits import GuardConfig


class ObserveConfig(BaseModel):
    """Thresholds of detection and root-cause localization."""

    model_config = ConfigDict(extra="forbid")
    depth: int = Field(default=2, ge=1, le=3, description="max dimensions in one segment")
    min_effect_pp: float = Field(default=3.0, gt=0, description="min success-rate drop, pp")
    min_sample: int = Field(default=30, ge=1, description="min attempts in each window")
    fdr: float = Field(default=0.01, gt=0, lt=1, description="Benjamini-Hochberg level")
    volume_min_drop: float = Field(default=0.4, gt=0, lt=1, description="min relative drop")
    latency_min_ratio: float = Field(default=1.5, gt=1, description="min p95 ratio")
    latency_min_shift_ms: float = Field(default=100.0, ge=0, description="min p95 shift")
    max_anomalies: int = Field(default=25, ge=1, description="anomalies kept in a record")
    max_root_causes: int = Field(default=3, ge=1, le=5)


class LearningConfig(BaseModel):
    """Retention of the learning store."""

    model_config = ConfigDict(extra="forbid")
    retention_days: int = Field(default=365, ge=1)


class PayopsConfig(BaseModel):
    """All settings of a run."""

    model_config = ConfigDict(extra="forbid")
    observe: ObserveConfig = Field(default_factory=ObserveConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and field."""


def state_home() -> Path:
    """Where payops keeps its state: `$PAYOPS_HOME`, else `./.payops` (not created here)."""
    return Path(os.environ.get("PAYOPS_HOME", ".payops"))


def state_dir() -> Path:
    """Where payops keeps its databases; created on first use."""
    home = state_home()
    home.mkdir(parents=True, exist_ok=True)
    return home


def load_config(path: Path | None = None) -> PayopsConfig:
    """Load the configuration, or the defaults when no file is found."""
    if path is None:
        env = os.environ.get("PAYOPS_CONFIG")
        if env:
            path = Path(env)
        elif Path("payops.toml").is_file():
            path = Path("payops.toml")
    if path is None:
        return PayopsConfig()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return PayopsConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: field {field}: {first['msg']}") from None
