"""Settings read through pydantic-settings' sources: what they do beyond the library's own."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from common.settings import Settings, SettingsError, load_settings


def test_env_sets_a_section_key_and_goes_no_deeper(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('role = "kiosk"\n', encoding="utf-8")
    env = {"PORADOVNIK_KIOSK__PRINTER__WIDTH": "80"}
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env=env)
    assert str(caught.value) == (
        "environment PORADOVNIK_KIOSK__PRINTER__WIDTH: [kiosk] printer__width: "
        "unknown key (did you mean printer?)"
    )


def test_settings_file_may_be_a_pipe(tmp_path: Path) -> None:
    """``--config <(...)`` gives a pipe, which is no regular file but must be read."""
    pipe = tmp_path / "settings.toml"
    os.mkfifo(pipe)
    writer = threading.Thread(
        target=pipe.write_text, args=('role = "display"\n[data]\ndir = "state"\n',), daemon=True
    )
    writer.start()
    settings = load_settings(pipe, env={})
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert settings.role == "display"
    assert settings.data.dir == tmp_path / "state"


def test_settings_made_directly_ignore_the_environment_after_a_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORADOVNIK_WEB__HOST", "0.0.0.0")
    good = tmp_path / "good.toml"
    good.write_text('role = "hub"\n', encoding="utf-8")
    assert load_settings(good, env={"PORADOVNIK_WEB__HOST": "0.0.0.0"}).web.host == "0.0.0.0"
    bad = tmp_path / "bad.toml"
    bad.write_text('role = "hub"\n[web]\nport = 0\n', encoding="utf-8")
    with pytest.raises(SettingsError):
        load_settings(bad, env={"PORADOVNIK_WEB__HOST": "0.0.0.0"})
    settings = Settings(role="kiosk")
    assert (settings.role, settings.web.host, settings.web.port) == ("kiosk", "127.0.0.1", 8080)
