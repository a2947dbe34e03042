"""Shared test set-up: no test reads or writes the state of the person running them."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own state directory: `$PAYOPS_HOME`, and a per-user directory
    (`$XDG_STATE_HOME`) for tests that unset it. A test that sets either wins."""
    base = tmp_path_factory.mktemp("payops-state")
    monkeypatch.setenv("PAYOPS_HOME", str(base / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "xdg"))
