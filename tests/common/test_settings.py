"""Settings: the file, the environment over it, and messages that say what is wrong where."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pydantic
import pytest

from common.settings import (
    DEFAULT_CONFIG_PATH,
    Settings,
    SettingsError,
    load_settings,
    redact_url,
    resolve_config_path,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "config"


def write(tmp_path: Path, text: str, name: str = "poradovnik.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(
    path: Path | None, env: dict[str, str] | None = None, *, require_file: bool = True
) -> str:
    """The message load_settings fails with."""
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={} if env is None else env, require_file=require_file)
    message = str(caught.value)
    assert message == "\n".join(caught.value.problems)
    assert "Traceback" not in message
    return message


# --- the examples ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["hub", "kiosk", "display", "counter"])
def test_example_validates_with_its_role(role: str) -> None:
    settings = load_settings(EXAMPLES / f"{role}.toml", env={})
    assert settings.role == role
    assert settings.site.id == "kosice-centrum"


def test_the_city_example_validates() -> None:
    settings = load_settings(EXAMPLES / "city.toml", env={})
    assert settings.role == "city"
    assert settings.city.database_url is not None
    assert settings.city.database_url.startswith("postgresql+psycopg://")
    assert settings.city.mqtt.username == "city"


@pytest.mark.parametrize(
    "url", ["sqlite:////var/lib/poradovnik/city.sqlite3", "sqlite+pysqlite:///city.db"]
)
def test_the_city_refuses_sqlite_and_says_why(tmp_path: Path, url: str) -> None:
    file = write(tmp_path, f'role = "city"\n[city]\ndatabase_url = "{url}"\n')
    with pytest.raises(SettingsError) as raised:
        load_settings(file, env={})
    message = str(raised.value)
    assert "[city] database_url: SQLite cannot be the city's database" in message
    assert "PostgreSQL" in message
    assert url not in message  # a URL may hold a password: never repeated


def test_every_example_is_there_and_has_a_comment_for_every_key() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.toml")) == [
        "city",
        "counter",
        "display",
        "hub",
        "kiosk",
    ]
    for path in EXAMPLES.glob("*.toml"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if "=" in line and not line.startswith(("#", "[")):
                assert lines[number - 1].startswith("#"), f"{path.name}:{number + 1} {line}"


def test_hub_example_sets_every_hub_section() -> None:
    text = (EXAMPLES / "hub.toml").read_text(encoding="utf-8")
    sections = (
        "site",
        "mqtt",
        "database",
        "web",
        "data",
        "queue",
        "logging",
        "retention",
        "backup",
        "mail",
        "alerts",
        "notify",
    )
    for section in sections:
        assert f"[{section}]" in text


# --- defaults and shape ------------------------------------------------------------------


def test_only_role_gives_the_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, 'role = "hub"\n'), env={})
    assert settings.site.id == "office"
    assert settings.site.name == "Mestský úrad"
    assert settings.site.timezone == "Europe/Bratislava"
    assert settings.site.languages == ("sk", "cs", "uk", "en")
    assert settings.site.default_language == "sk"
    assert settings.site.tzinfo.key == "Europe/Bratislava"
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("127.0.0.1", 1883, False)
    assert settings.mqtt.username is None
    assert settings.mqtt.password is None
    assert settings.mqtt.ca_file is None
    assert (settings.web.host, settings.web.port) == ("127.0.0.1", 8080)
    assert settings.data.dir == Path("/var/lib/poradovnik")
    assert settings.database.url is None
    assert settings.database_url == "sqlite:////var/lib/poradovnik/hub.sqlite3"
    assert settings.queue.max_calls == 3
    assert settings.queue.transfer_keeps_arrival is True
    assert settings.queue.service_time_window == 20
    assert settings.logging.level == "INFO"


def test_database_url_given_wins_and_is_not_in_repr(tmp_path: Path) -> None:
    url = "postgresql+psycopg://hub:s3cret@db.example/poradovnik"
    path = write(tmp_path, f'role = "hub"\n[database]\nurl = "{url}"\n')
    settings = load_settings(path, env={})
    assert settings.database_url == url
    assert "s3cret" not in repr(settings)
    assert redact_url(url) == "postgresql+psycopg://hub:***@db.example/poradovnik"
    assert redact_url("sqlite:////var/x.sqlite3") == "sqlite:////var/x.sqlite3"


def test_password_is_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'role = "kiosk"\n[mqtt]\nusername = "k1"\npassword = "hunter2-hunter2"\n'
    )
    settings = load_settings(path, env={})
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "hunter2-hunter2"
    assert "hunter2-hunter2" not in repr(settings)
    assert "hunter2-hunter2" not in str(settings)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, 'role = "hub"\n'), env={})
    with pytest.raises(pydantic.ValidationError):
        settings.role = "kiosk"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        settings.web.port = 1


def test_every_field_has_a_description() -> None:
    models: list[type[pydantic.BaseModel]] = [Settings]
    for info in Settings.model_fields.values():
        if isinstance(info.annotation, type) and issubclass(info.annotation, pydantic.BaseModel):
            models.append(info.annotation)
    assert len(models) == 20  # Settings and its nineteen sections
    for model in models:
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no docstring"


def test_device_id_defaults_to_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "Kiosk_Vstup.local")
    settings = load_settings(write(tmp_path, 'role = "kiosk"\n'), env={})
    assert settings.device.id == "kiosk-vstup"
    monkeypatch.setattr("socket.gethostname", lambda: "___")
    assert load_settings(write(tmp_path, 'role = "kiosk"\n'), env={}).device.id == "device"


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "kiosk"\n[data]\ndir = "state"\n[mqtt]\nca_file = "ca.pem"\n')
    settings = load_settings(path, env={})
    assert settings.data.dir == tmp_path / "state"
    assert settings.mqtt.ca_file == tmp_path / "ca.pem"
    assert settings.database_url == f"sqlite:///{tmp_path.as_posix()}/state/hub.sqlite3"


def test_role_and_log_level_forgive_case(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = " Display "\n[logging]\nlevel = "debug"\n')
    settings = load_settings(path, env={})
    assert (settings.role, settings.logging.level) == ("display", "DEBUG")


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes('\ufeffrole = "hub"\n[site]\nname = "Mesto Košice"\n'.encode())
    assert load_settings(path, env={}).site.name == "Mesto Košice"


def test_settings_class_alone_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORADOVNIK_WEB__PORT", "9999")
    assert Settings(role="hub").web.port == 8080


# --- the environment ---------------------------------------------------------------------


def test_env_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[web]\nport = 18080\nhost = "0.0.0.0"\n')
    env = {
        "PORADOVNIK_WEB__PORT": "18081",
        "PORADOVNIK_ROLE": "display",
        "PORADOVNIK_MQTT__TLS": "true",
        "PORADOVNIK_MQTT__PASSWORD": "from-the-environment",
        "PORADOVNIK_SITE__LANGUAGES": "uk, en",
        "PORADOVNIK_QUEUE__MAX_CALLS": "5",
    }
    settings = load_settings(path, env=env)
    assert settings.web.port == 18081
    assert settings.web.host == "0.0.0.0"  # the file's, untouched by the environment
    assert settings.role == "display"
    assert settings.mqtt.tls is True
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "from-the-environment"
    assert settings.site.languages == ("uk", "en")
    assert settings.queue.max_calls == 5


def test_env_list_as_json_and_lower_case_names(tmp_path: Path) -> None:
    env = {"poradovnik_site__languages": '["cs", "sk"]', "Poradovnik_Role": "counter"}
    settings = load_settings(write(tmp_path, 'role = "hub"\n'), env=env)
    assert settings.role == "counter"
    assert settings.site.languages == ("cs", "sk")


def test_env_relative_data_dir_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"PORADOVNIK_ROLE": "hub", "PORADOVNIK_DATA__DIR": "var/x"}
    settings = load_settings(None, env=env, require_file=False)
    assert settings.data.dir == tmp_path / "var" / "x"


def test_unrelated_and_empty_variables_are_ignored(tmp_path: Path) -> None:
    env = {
        "PORADOVNIK_CONFIG": str(write(tmp_path, 'role = "hub"\n')),
        "PORADOVNIK_TEST_POSTGRES_URL": "postgresql://x",
        "PORADOVNIK_WEB__PORT": "",
        "HOME": "/root",
    }
    settings = load_settings(None, env=env)
    assert settings.web.port == 8080


def test_bad_env_value_names_the_variable_the_key_and_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n')
    message = problems(path, {"PORADOVNIK_WEB__PORT": "abc"})
    assert message.startswith("environment PORADOVNIK_WEB__PORT: [web] port: ")
    assert "valid integer" in message
    assert "(got 'abc')" in message
    assert str(path) not in message  # the file did not set it


def test_bad_env_role(tmp_path: Path) -> None:
    message = problems(write(tmp_path, 'role = "hub"\n'), {"PORADOVNIK_ROLE": "printer"})
    assert message.startswith("environment PORADOVNIK_ROLE: role: ")
    assert "'hub', 'kiosk', 'display', 'counter' or 'city'" in message


def test_env_unknown_key_and_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n')
    message = problems(path, {"PORADOVNIK_WEB__PROT": "1", "PORADOVNIK_WBE__PORT": "1"})
    assert "environment PORADOVNIK_WEB__PROT: [web] prot: unknown key (did you mean port?)" in (
        message
    )
    assert "environment PORADOVNIK_WBE__PORT: [wbe]: unknown section (did you mean web?)" in (
        message
    )


def test_env_with_one_underscore_is_flagged(tmp_path: Path) -> None:
    message = problems(write(tmp_path, 'role = "hub"\n'), {"PORADOVNIK_WEB_PORT": "8081"})
    assert message == (
        "environment PORADOVNIK_WEB_PORT: not a settings variable; "
        "did you mean PORADOVNIK_WEB__PORT (two underscores)?"
    )


def test_env_whole_section_and_bad_json_list(tmp_path: Path) -> None:
    env = {"PORADOVNIK_MQTT": '{"port": 1}', "PORADOVNIK_SITE__LANGUAGES": "[sk"}
    message = problems(write(tmp_path, 'role = "hub"\n'), env)
    assert "environment PORADOVNIK_MQTT: [mqtt]: a whole section cannot be set" in message
    assert "PORADOVNIK_MQTT__<KEY>" in message
    assert "environment PORADOVNIK_SITE__LANGUAGES: [site] languages: not a list" in message


# --- problems in the file ----------------------------------------------------------------


def test_missing_file_says_so_and_mentions_config(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    message = problems(path)
    assert message.startswith(f"{path}: settings file not found")
    assert "--config" in message
    assert "PORADOVNIK_CONFIG" in message


def test_named_file_must_exist_even_when_not_required(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    assert "settings file not found" in problems(path, require_file=False)
    env = {"PORADOVNIK_CONFIG": str(path)}
    assert "settings file not found" in problems(None, env, require_file=False)


def test_default_file_may_be_absent_when_not_required() -> None:
    if DEFAULT_CONFIG_PATH.exists():  # pragma: no cover - only on a configured device
        pytest.skip(f"{DEFAULT_CONFIG_PATH} exists here")
    settings = load_settings(None, env={"PORADOVNIK_ROLE": "hub"}, require_file=False)
    assert settings.role == "hub"
    message = problems(None, {}, require_file=False)
    assert message.startswith(f"{DEFAULT_CONFIG_PATH} (not found): role: missing")


def test_defaults_lie_below_file_and_env(tmp_path: Path) -> None:
    defaults = {"role": "hub", "data": {"dir": "/srv/demo"}, "web": {"port": 9000}}
    path = write(tmp_path, "[web]\nport = 9001\n")
    settings = load_settings(path, env={"PORADOVNIK_ROLE": "kiosk"}, defaults=defaults)
    assert (settings.role, settings.data.dir, settings.web.port) == (
        "kiosk",
        Path("/srv/demo"),
        9001,
    )


def test_resolve_config_path() -> None:
    assert resolve_config_path(Path("a.toml"), env={"PORADOVNIK_CONFIG": "b.toml"}) == Path(
        "a.toml"
    )
    assert resolve_config_path(None, env={"PORADOVNIK_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, env={"PORADOVNIK_CONFIG": ""}) == DEFAULT_CONFIG_PATH
    assert resolve_config_path(None, env={}) == DEFAULT_CONFIG_PATH


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, 'role = "hub"\n')

    def refuse(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert problems(path) == f"{path}: cannot read the settings file: Permission denied"


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_for_real(tmp_path: Path) -> None:  # pragma: no cover - not as root
    path = write(tmp_path, 'role = "hub"\n')
    path.chmod(0)
    assert "cannot read the settings file: Permission denied" in problems(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert problems(tmp_path) == f"{tmp_path}: is a directory, not a settings file"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin2.toml"
    path.write_bytes('role = "hub"\n[site]\nname = "Košice"\n'.encode("iso-8859-2"))
    message = problems(path)
    assert message.startswith(f"{path}: not UTF-8 text")


def test_broken_toml_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[web\nport = 1\n')
    message = problems(path)
    assert message.startswith(f"{path}: TOML syntax error: ")
    assert "line 2, column 5" in message


def test_unknown_key_in_a_section(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[mqtt]\npasword = "x"\n')
    message = problems(path)
    assert message == f"{path}: [mqtt] pasword: unknown key (did you mean password?)"
    assert "'x'" not in message


def test_unknown_section_and_top_level_keys(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\nport = 8081\ncolour = "red"\n[printer]\nwidth = 80\n')
    lines = problems(path).splitlines()
    assert lines == [
        f"{path}: port: unknown top-level key; did you mean it under [mqtt] or [web] or [broker] "
        "or [uplink] or [mail]? (keys above the first [section] header are top-level)",
        f"{path}: colour: unknown key",
        f"{path}: [printer]: unknown section",
    ]


def test_section_given_as_a_value(tmp_path: Path) -> None:
    message = problems(write(tmp_path, 'role = "hub"\nweb = 8080\n'))
    assert message.endswith(": [web]: must be a section (a [web] table), not a single value")


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[mqtt]\ntls = "maybe"\n[queue]\nmax_calls = 2.5\n')
    lines = problems(path).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: [mqtt] tls: Input should be a valid boolean")
    assert lines[0].endswith("(got 'maybe')")
    assert lines[1].startswith(f"{path}: [queue] max_calls: Input should be a valid integer")
    assert lines[1].endswith("(got 2.5)")


def test_port_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[mqtt]\nport = 70000\n[web]\nport = 0\n')
    assert problems(path).splitlines() == [
        f"{path}: [mqtt] port: Input should be less than or equal to 65535 (got 70000)",
        f"{path}: [web] port: Input should be greater than or equal to 1 (got 0)",
    ]


def test_bad_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[site]\ntimezone = "Europe/Bratislavaa"\n')
    message = problems(path)
    assert message.startswith(f"{path}: [site] timezone: unknown time zone")
    assert message.endswith("(got 'Europe/Bratislavaa')")


@pytest.mark.parametrize("value", ['"Kosice Centrum"', '"-office"', '"a--b"', '"úrad"', '""'])
def test_bad_slug(tmp_path: Path, value: str) -> None:
    message = problems(write(tmp_path, f'role = "hub"\n[site]\nid = {value}\n'))
    assert "[site] id: must be a short name of lowercase letters" in message


def test_bad_languages(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[site]\nlanguages = ["sk", "de"]\n')
    assert problems(path) == (
        f"{path}: [site] languages, item 2: Input should be 'sk', 'cs', 'uk' or 'en' (got 'de')"
    )
    path = write(tmp_path, 'role = "hub"\n[site]\nlanguages = ["sk", "sk"]\n')
    assert "[site] languages: lists a language twice" in problems(path)
    path = write(tmp_path, 'role = "hub"\n[site]\nlanguages = []\n')
    assert "[site] languages: " in problems(path)


def test_queue_limits(tmp_path: Path) -> None:
    text = 'role = "hub"\n[queue]\nmax_calls = 0\nservice_time_window = 0\n'
    lines = problems(write(tmp_path, text)).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "[queue] max_calls",
        "[queue] service_time_window",
    ]


def test_missing_role(tmp_path: Path) -> None:
    path = write(tmp_path, '[site]\nid = "x"\n')
    message = problems(path)
    assert message.startswith(f"{path}: role: missing;")
    assert '"hub", "kiosk", "display", "counter" or "city"' in message


def test_secrets_are_not_repeated_in_messages(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[mqtt]\npassword = 987654\n[database]\nurl = "pw987"\n')
    message = problems(path)
    assert "[mqtt] password: " in message
    assert "[database] url: must be a database URL" in message
    assert "987654" not in message
    assert "pw987" not in message


def test_several_problems_from_file_and_env_each_on_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[mqtt]\nport = 70000\n[site]\ntimezone = "Mars/Base"\n')
    lines = problems(path, {"PORADOVNIK_WEB__PORT": "x"}).splitlines()
    assert len(lines) == 3
    assert sum(line.startswith(f"{path}: ") for line in lines) == 2
    assert sum(line.startswith("environment PORADOVNIK_WEB__PORT: ") for line in lines) == 1


def test_the_country_decides_the_holidays_and_forgives_case(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[site]\ncountry = "cz"\n')
    assert load_settings(path, env={}).site.country == "CZ"
    message = problems(write(tmp_path, 'role = "hub"\n[site]\ncountry = "PL"\n'))
    assert message.startswith(f"{path}: [site] country: Input should be 'SK', 'CZ' or 'UA'")
