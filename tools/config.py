"""The one configuration system of payops: defaults in code, optionally tightened by a TOML file.

The file is, in this order: an explicit `--config` path, `$PAYOPS_CONFIG`, `./payops.toml`.
`effective_settings` lists every key with its value and where it came from (`payops
config`); `reference_markdown` is the README's table of keys, generated from the models.

The state directory (learning store, action ledger, checkpoints, scan cache) is
`$PAYOPS_HOME`, else the nearest `.payops` folder in the current directory or above it,
else a per-user state directory (`find_state_dir`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from tools import actions
from tools.fields import first_error
from tools.guardrails.limits import (
    HARD_CEILINGS,
    HARD_FLOORS,
    KILL_SWITCH_ENV,
    GuardConfig,
    GuardLimits,
    effective_limits,
    kill_switch_from_env,
)

CONFIG_ENV = "PAYOPS_CONFIG"
CONFIG_FILE = "payops.toml"
HOME_ENV = "PAYOPS_HOME"
STATE_DIR_NAME = ".payops"


class ObserveConfig(BaseModel):
    """Thresholds of detection and root-cause localization."""

    model_config = ConfigDict(extra="forbid")
    depth: int = Field(default=3, ge=1, le=3, description="most dimensions of a root cause")
    min_effect_pp: float = Field(
        default=3.0, gt=0, description="least success-rate drop that is an anomaly, pp"
    )
    min_sample: int = Field(
        default=30, ge=1, description="least attempts of a segment in each window"
    )
    fdr: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="false discovery rate (Benjamini-Hochberg, per signal)",
    )
    volume_min_drop: float = Field(
        default=0.4, gt=0, lt=1, description="least relative fall in attempts that is an anomaly"
    )
    surge_min_rise: float = Field(
        default=0.5, gt=0, description="least relative rise in attempts that is an anomaly"
    )
    latency_min_ratio: float = Field(
        default=1.5, gt=1, description="least p95 latency ratio (current / baseline)"
    )
    latency_min_shift_ms: float = Field(
        default=100.0, ge=0, description="least p95 latency rise, ms"
    )
    error_min_effect_pp: float = Field(
        default=1.0, gt=0, description="least error/timeout-rate rise that is an anomaly, pp"
    )
    error_min_ratio: float = Field(
        default=1.5, ge=1, description="least error/timeout-rate ratio (current / baseline)"
    )
    three_ds_min_rise: float = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="least rise of the 3DS challenge failure rate (over 3DS attempts)",
    )
    code_new_min_pp: float = Field(
        default=1.0, gt=0, description="least share of attempts of a new decline code, pp"
    )
    hard_share_min_rise: float = Field(
        default=0.15, gt=0, lt=1, description="least rise of the hard share of declines"
    )
    max_anomalies: int = Field(
        default=25, ge=1, description="most anomalies kept in an observation and a record"
    )
    max_root_causes: int = Field(default=3, ge=1, le=5, description="most root causes reported")


# Deadline of one model decision (all its retries), seconds.
DEFAULT_MODEL_TIMEOUT_S = 30.0


class ModelConfig(BaseModel):
    """How long the chat model may take before the deterministic fallback is used."""

    model_config = ConfigDict(extra="forbid")
    timeout_s: float = Field(
        default=DEFAULT_MODEL_TIMEOUT_S,
        gt=0,
        le=600,
        description="deadline of one model decision, retries included; then fallback:timeout",
    )


class LearningConfig(BaseModel):
    """Retention of the learning store."""

    model_config = ConfigDict(extra="forbid")
    retention_days: int = Field(
        default=365, ge=1, description="days an outcome is kept in the learning store"
    )


class PayopsConfig(BaseModel):
    """All settings of a run."""

    model_config = ConfigDict(extra="forbid")
    observe: ObserveConfig = Field(default_factory=ObserveConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and field."""


# ---------------------------------------------------------------------------------------
# Where things are.

StateOrigin = Literal["environment", "found", "user"]


@dataclass(frozen=True)
class StateDir:
    """The state directory and how it was chosen."""

    path: Path
    origin: StateOrigin

    def describe(self) -> str:
        """`PATH (why this one)`, as the CLI prints it."""
        why = {
            "environment": f"${HOME_ENV}",
            "found": f"the nearest {STATE_DIR_NAME} folder",
            "user": f"per-user; ${HOME_ENV} or a {STATE_DIR_NAME} folder here would be used first",
        }[self.origin]
        return f"{self.path} ({why})"


def _user_state_dir() -> Path:
    from platformdirs import user_state_dir

    return Path(user_state_dir("payops", appauthor=False))


def find_state_dir(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> StateDir:
    """`$PAYOPS_HOME`, else the nearest `.payops` folder in `cwd` or above, else per-user.

    Nothing is created here: a command that runs from another folder finds the same state
    and leaves no stray `.payops` behind.
    """
    env = os.environ if environ is None else environ
    home = env.get(HOME_ENV, "").strip()
    if home:
        return StateDir(Path(home).expanduser().absolute(), "environment")
    here = (cwd or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / STATE_DIR_NAME
        if candidate.is_dir():
            return StateDir(candidate, "found")
    return StateDir(_user_state_dir(), "user")


ConfigOrigin = Literal["option", "environment", "file", "none"]


@dataclass(frozen=True)
class ConfigFile:
    """The configuration file in use (None: defaults only) and how it was chosen."""

    path: Path | None
    origin: ConfigOrigin

    def describe(self) -> str:
        """`PATH (why this one)`, or what was looked for."""
        if self.path is None:
            return f"none (defaults; looked for --config, ${CONFIG_ENV}, ./{CONFIG_FILE})"
        why = {"option": "--config", "environment": f"${CONFIG_ENV}", "file": f"./{CONFIG_FILE}"}
        return f"{self.path} ({why.get(self.origin, self.origin)})"


def find_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> ConfigFile:
    """The file `load_config` reads: `path`, else `$PAYOPS_CONFIG`, else `./payops.toml`."""
    env = os.environ if environ is None else environ
    if path is not None:
        return ConfigFile(path, "option")
    if env.get(CONFIG_ENV):
        return ConfigFile(Path(env[CONFIG_ENV]), "environment")
    if Path(CONFIG_FILE).is_file():
        return ConfigFile(Path(CONFIG_FILE), "file")
    return ConfigFile(None, "none")


# ---------------------------------------------------------------------------------------
# Reading.

_SECTIONS: dict[str, type[BaseModel]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in PayopsConfig.model_fields.items()
}


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _unknown_key(path: Path, loc: tuple[int | str, ...]) -> ConfigError:
    """The error for a key no model has, naming the keys that exist where it was."""
    if len(loc) == 1:
        name = str(loc[0])
        home = [s for s, model in _SECTIONS.items() if name in model.model_fields]
        hint = f"; did you mean [{home[0]}] {name}?" if home else ""
        return ConfigError(
            f"{path}: unknown section or key {name!r} (sections: "
            f"{', '.join(f'[{s}]' for s in _SECTIONS)}){hint}"
        )
    section, key = str(loc[0]), ".".join(str(p) for p in loc[1:])
    model = _SECTIONS.get(section)
    names = [*model.model_fields] if model is not None else []
    if section == "guard":
        names += list(actions.limits())  # the actions' own limits are keys of [guard] too
    valid = ", ".join(names)
    return ConfigError(f"{path}: unknown key {key!r} in [{section}] (valid keys: {valid})")


def _validate(path: Path, raw: dict[str, Any]) -> PayopsConfig:
    try:
        return PayopsConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "extra_forbidden":
            raise _unknown_key(path, tuple(first["loc"])) from None
        raise ConfigError(f"{path}: field {first_error(exc)}") from None


def load_config(path: Path | None = None) -> PayopsConfig:
    """Load the configuration, or the defaults when no file is found."""
    found = find_config(path)
    if found.path is None:
        return PayopsConfig()
    return _validate(found.path, _read(found.path))


# ---------------------------------------------------------------------------------------
# What is in force, and the reference of every key.

Source = Literal["default", "file", "environment"]


@dataclass(frozen=True)
class Setting:
    """One key in force: its value, where the value came from, and a note (a clamp)."""

    key: str
    value: object
    source: Source
    note: str = ""


@dataclass(frozen=True)
class _Key:
    """One payops.toml key: where it lives, what it means, and how it may be set."""

    section: str
    key: str
    meaning: str
    bounds: str = ""  # the values the model accepts, e.g. "> 0, ≤ 100"
    limit: str = ""  # "tighten only: ..." for a hard limit


def _tighten_only(bound: Literal["ceiling", "floor"], hard: float) -> str:
    word = "above" if bound == "ceiling" else "below"
    return f"tighten only: a value {word} {hard:g} is clamped"


def _keys() -> Iterator[_Key]:
    """Every setting: the config models' fields (`min_evidence` one key per action), then
    each registered action's own limits, which are keys of `[guard]` too."""
    for section, model in _SECTIONS.items():
        for key, info in model.model_fields.items():
            meaning = info.description or ""
            if section == "guard" and key == "min_evidence":
                for spec in actions.actions():
                    tighten = "tighten only: a lower value is clamped"
                    yield _Key(section, f"min_evidence.{spec.name}", meaning, limit=tighten)
            elif key in HARD_CEILINGS:
                yield _Key(
                    section,
                    key,
                    meaning,
                    _bounds(info),
                    _tighten_only("ceiling", HARD_CEILINGS[key]),
                )
            elif key in HARD_FLOORS:
                yield _Key(
                    section, key, meaning, _bounds(info), _tighten_only("floor", HARD_FLOORS[key])
                )
            else:
                yield _Key(section, key, meaning, _bounds(info))
        if section == "guard":
            for lim in actions.limits().values():
                yield _Key(section, lim.name, lim.doc, "≥ 0", _tighten_only(lim.bound, lim.hard))


def _lookup(raw: Mapping[str, Any], section: str, key: str) -> tuple[bool, object]:
    node: object = raw.get(section, {})
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _in_force(cfg: PayopsConfig, limits: GuardLimits, section: str, key: str) -> object:
    if section == "guard":
        if key.startswith("min_evidence."):
            return limits.evidence_required(key.split(".", 1)[1])
        action_limit = actions.limits().get(key)
        if action_limit is not None:
            return limits.of(action_limit)
        return getattr(limits, key)
    return getattr(getattr(cfg, section), key)


def effective_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[ConfigFile, list[Setting]]:
    """Every setting in force, with its source: default, the file, or the environment."""
    env = os.environ if environ is None else environ
    found = find_config(path, env)
    raw = _read(found.path) if found.path is not None else {}
    cfg = _validate(found.path, raw) if found.path is not None else PayopsConfig()
    limits = effective_limits(cfg.guard, env)
    settings: list[Setting] = []
    for entry in _keys():
        section, key = entry.section, entry.key
        name = f"{section}.{key}"
        value = _in_force(cfg, limits, section, key)
        in_file, asked = _lookup(raw, section, key)
        if name == "guard.kill_switch" and kill_switch_from_env(env):
            note = f"{KILL_SWITCH_ENV}={env[KILL_SWITCH_ENV]}"
            settings.append(Setting(name, value, "environment", note))
        elif in_file:
            note = "" if asked == value else f"the file asks {asked}; clamped to the hard limit"
            settings.append(Setting(name, value, "file", note))
        else:
            settings.append(Setting(name, value, "default"))
    return found, settings


def _bounds(info: FieldInfo) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for meta in info.metadata:
        for attr, sign in words.items():
            bound = getattr(meta, attr, None)
            if bound is not None:
                parts.append(f"{sign} {bound:g}")
    return ", ".join(parts)


def format_value(value: object) -> str:
    """A setting's value as payops.toml spells it (`true`, `0.6`, `240`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def reference_markdown() -> str:
    """The README's table of every `payops.toml` key: default, allowed values, meaning."""
    limits = GuardLimits()
    cfg = PayopsConfig()
    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    evidence_shown = False
    for entry in _keys():
        section, key = entry.section, entry.key
        if key.startswith("min_evidence."):
            if not evidence_shown:  # one row for all actions
                evidence_shown = True
                by_floor: dict[int, list[str]] = {}
                for spec in actions.actions():
                    by_floor.setdefault(spec.min_evidence, []).append(spec.name)
                shown = "; ".join(f"{n}: {', '.join(a)}" for n, a in sorted(by_floor.items()))
                lines.append(
                    f"| `guard.min_evidence.ACTION` | {shown} | {entry.limit} | {entry.meaning} |"
                )
            continue
        default = _in_force(cfg, limits, section, key)
        allowed = "; ".join(p for p in (entry.bounds, entry.limit) if p)
        if isinstance(default, bool):
            allowed = allowed or "true, false"
        lines.append(
            f"| `{section}.{key}` | {format_value(default)} | {allowed} | {entry.meaning} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # `python -m tools.config` prints the README's table
    print(reference_markdown(), end="")
