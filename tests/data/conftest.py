"""Every data test gets its own MMALIGN_HOME and MMALIGN_DATA under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMALIGN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MMALIGN_DATA", str(tmp_path / "datasets"))
    return tmp_path
