"""poradovnik-update: a new version in a venv beside the old one, switched atomically,
and switched back when the device is not healthy. The restart and the health check are
commands given in the environment, so no systemd is needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from process_helpers import Process
from sqlalchemy import inspect

from common.settings import load_settings
from hub.app import open_queue, seed_demo
from hub.backup import backups
from hub.broker import free_port
from hub.store import HEAD_REVISION, Store

ROOT = Path(__file__).resolve().parents[2]
UPDATE = ROOT / "image-build/modules/poradovnik/filesystem/root/usr/local/sbin/poradovnik-update"

pytestmark = pytest.mark.slow


def make_wheel(directory: Path, version: str) -> Path:
    """A minimal poradovnik wheel of ``version`` whose command prints it."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"poradovnik-{version}-py3-none-any.whl"
    info = f"poradovnik-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("poradovnik_stub.py", f"def main():\n    print('poradovnik {version}')\n")
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: poradovnik\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(
            f"{info}/entry_points.txt", "[console_scripts]\nporadovnik = poradovnik_stub:main\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def update(
    prefix: Path, wheel: Path, *, healthy: bool, log: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # What the restart saw: the version the venv symlink pointed at.
        "PORADOVNIK_UPDATE_RESTART": f"'{prefix}/venv/bin/poradovnik' >> '{log}'",
        "PORADOVNIK_UPDATE_HEALTH": "true" if healthy else "false",
    }
    return subprocess.run(
        [UPDATE, "--prefix", prefix, "--unit", "poradovnik-kiosk.service", wheel],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """/opt/poradovnik with version 1.0 installed (as the image build does it)."""
    prefix = tmp_path / "opt/poradovnik"
    wheel = make_wheel(tmp_path / "wheels", "1.0")
    result = subprocess.run(
        [UPDATE, "--prefix", prefix, "--install-only", wheel],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert os.readlink(prefix / "venv") == "venv-1.0"
    return prefix


def test_a_healthy_update_switches_and_keeps_the_previous_version(
    installed: Path, tmp_path: Path
) -> None:
    log = tmp_path / "restarts.log"
    result = update(installed, make_wheel(tmp_path / "wheels", "1.1"), healthy=True, log=log)
    assert result.returncode == 0, result.stderr
    assert os.readlink(installed / "venv") == "venv-1.1"
    assert log.read_text() == "poradovnik 1.1\n"
    assert sorted(p.name for p in installed.glob("venv-*")) == ["venv-1.0", "venv-1.1"]
    # Another one: the oldest goes, the previous stays for a rollback.
    result = update(installed, make_wheel(tmp_path / "wheels", "1.2"), healthy=True, log=log)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in installed.glob("venv-*")) == ["venv-1.1", "venv-1.2"]


def test_an_unhealthy_update_rolls_back(installed: Path, tmp_path: Path) -> None:
    log = tmp_path / "restarts.log"
    result = update(installed, make_wheel(tmp_path / "wheels", "2.0"), healthy=False, log=log)
    assert result.returncode == 1
    assert "going back to venv-1.0" in result.stderr
    assert os.readlink(installed / "venv") == "venv-1.0"
    # Restarted on the new version, then on the old one again.
    assert log.read_text() == "poradovnik 2.0\nporadovnik 1.0\n"
    assert sorted(p.name for p in installed.glob("venv-*")) == ["venv-1.0"]
    assert not (installed / "venv.new").exists()


def test_a_wheel_that_does_not_install_changes_nothing(installed: Path, tmp_path: Path) -> None:
    broken = tmp_path / "wheels" / "poradovnik-3.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    log = tmp_path / "restarts.log"
    result = update(installed, broken, healthy=True, log=log)
    assert result.returncode == 1
    assert "nothing changed" in result.stderr
    assert os.readlink(installed / "venv") == "venv-1.0"
    assert not log.exists()


OFFICE = UPDATE.with_name("poradovnik-update-office")


@pytest.fixture
def device_ssh(tmp_path: Path, processes: Callable[..., Process]) -> Iterator[str]:
    """A real sshd on a free port of 127.0.0.1, letting root in with a key of its own, as
    a device lets its hub in; returns the ssh command (PORADOVNIK_SSH) that reaches it."""
    if shutil.which("sshd", path="/usr/sbin:/usr/bin") is None:
        pytest.skip("Debian package 'openssh-server'")
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host", "hub"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / name], check=True
        )
    shutil.copy(keys / "hub.pub", keys / "authorized_keys")
    port = free_port()
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"StrictModes no\nPidFile {keys / 'sshd.pid'}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
    sshd = processes(["/usr/sbin/sshd", "-D", "-e", "-f", keys / "sshd_config"], name="sshd")
    # "Server listening on 127.0.0.1 port …"
    sshd.wait_for_line(lambda line: "listening" in line, 30, what="that it listens")
    yield (
        f"ssh -p {port} -i {keys / 'hub'} -o BatchMode=yes -o StrictHostKeyChecking=no"
        " -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 -l root"
    )
    sshd.stop()


def update_office(
    ssh: str, prefix: Path, wheelhouse: Path, *hosts: str, healthy: bool
) -> subprocess.CompletedProcess[str]:
    """poradovnik-update-office on ``hosts``, each updating ``prefix`` on this machine."""
    remote = (
        f"env PORADOVNIK_UPDATE_RESTART=true PORADOVNIK_UPDATE_HEALTH={str(healthy).lower()} "
        f"{UPDATE} --prefix {prefix} --unit poradovnik-kiosk.service"
    )
    env = {
        **os.environ,
        "PORADOVNIK_SSH": ssh,
        "PORADOVNIK_UPDATE_REMOTE": remote,
        "PORADOVNIK_CONFIG": str(prefix / "no-settings-here.toml"),  # not a hub
    }
    return subprocess.run(
        [OFFICE, wheelhouse, *hosts],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_the_office_update_updates_each_device_it_reaches_and_names_the_others(
    installed: Path, tmp_path: Path, device_ssh: str
) -> None:
    wheelhouse = make_wheel(tmp_path / "wheelhouse", "2.0").parent
    # 127.0.0.2 answers nothing: a device that is switched off.
    result = update_office(
        device_ssh, installed, wheelhouse, "127.0.0.2", "127.0.0.1", healthy=True
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "127.0.0.2: NOT updated (it runs its previous version, or it was not reached)",
        "127.0.0.1: updated",
    ]
    assert os.readlink(installed / "venv") == "venv-2.0"
    assert "Traceback" not in result.stderr


def test_the_office_update_reports_a_device_that_rolled_back(
    installed: Path, tmp_path: Path, device_ssh: str
) -> None:
    wheelhouse = make_wheel(tmp_path / "wheelhouse", "2.0").parent
    result = update_office(device_ssh, installed, wheelhouse, "127.0.0.1", healthy=False)
    assert result.returncode == 1
    assert result.stdout.startswith("127.0.0.1: NOT updated")
    assert "127.0.0.1: poradovnik-update: 2.0 is not healthy: going back to venv-1.0" in (
        result.stderr
    )
    assert os.readlink(installed / "venv") == "venv-1.0"


def test_the_office_update_refuses_a_directory_without_the_wheel(tmp_path: Path) -> None:
    result = subprocess.run(
        [OFFICE, tmp_path, "127.0.0.1"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "holds no poradovnik-*.whl" in result.stderr


# -- the hub: its database is backed up before the new version migrates it, and put
# back for the previous version when the new one is rolled back ---------------------

PACKAGES = tuple(
    pattern.rstrip("*")
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
)
"""The distribution's packages, as pyproject.toml lists them for the real wheel."""
NEW_REVISION = "0099_update_test"


def product_wheel(directory: Path, version: str, migration: str | None = None) -> Path:
    """This checkout's code as poradovnik ``version``, plus ``migration`` (a revision
    after this code's head). Its dependencies come from this test's environment (a .pth
    file), so it installs without an index."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"poradovnik-{version}-py3-none-any.whl"
    info = f"poradovnik-{version}.dist-info"
    files = {
        path.relative_to(ROOT).as_posix(): path.read_bytes()
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    if migration is not None:
        files[f"hub/migrations/versions/{NEW_REVISION}.py"] = migration.encode()
        head = f'HEAD_REVISION: Final = "{HEAD_REVISION}"'.encode()
        assert head in files["hub/store/core.py"]
        files["hub/store/core.py"] = files["hub/store/core.py"].replace(
            head, f'HEAD_REVISION: Final = "{NEW_REVISION}"'.encode()
        )
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("poradovnik_test_dependencies.pth", sysconfig.get_paths()["purelib"])
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: poradovnik\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(
            f"{info}/entry_points.txt", "[console_scripts]\nporadovnik = poradovnik.cli:main\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def migration(downgrade: str) -> str:
    """A revision after this code's head that adds a table; ``downgrade`` is its body."""
    return (
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "{NEW_REVISION}"\ndown_revision = "{HEAD_REVISION}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        '    op.create_table("update_test", sa.Column("id", sa.Integer, primary_key=True))\n\n\n'
        f"def downgrade() -> None:\n    {downgrade}\n"
    )


@dataclass
class HubInstall:
    """A hub installed in a temporary /opt/poradovnik, with its settings and database."""

    prefix: Path
    config: Path
    url: str
    backups: Path


@pytest.fixture
def hub_installed(tmp_path: Path) -> HubInstall:
    """Version 1.0 (this code) installed, its database created with a day's tickets."""
    prefix = tmp_path / "opt/poradovnik"
    wheel = product_wheel(tmp_path / "wheels", "1.0")
    result = subprocess.run(
        [UPDATE, "--prefix", prefix, "--install-only", wheel],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=path_env(),
    )
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    config = tmp_path / "poradovnik.toml"
    config.write_text(f'role = "hub"\n[data]\ndir = "{data}"\n')
    settings = load_settings(config, env={})
    queue = open_queue(settings)
    try:
        seed_demo(queue)
        for _ in range(5):
            queue.issue("taxes")
    finally:
        queue.store.close()
    return HubInstall(prefix, config, settings.database_url, settings.backup_dir)


def path_env() -> dict[str, str]:
    """The environment with this test's Python first: the venvs are made from it."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def update_hub(
    hub: HubInstall, wheel: Path, log: Path, *, healthy: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """poradovnik-update on the hub: each "restart" starts the version the symlink
    points at as far as the hub does before serving (its database upgrade), and logs
    what it said; the health check says ``healthy``."""
    start = f"'{hub.prefix}/venv/bin/poradovnik' db upgrade"
    env = {
        **path_env(),
        "PORADOVNIK_CONFIG": str(hub.config),
        "PORADOVNIK_UPDATE_RESTART": f"{start} >> '{log}' 2>&1",
        "PORADOVNIK_UPDATE_STOP": "true",
        "PORADOVNIK_UPDATE_HEALTH": str(healthy).lower(),
        **env,
    }
    return subprocess.run(
        [UPDATE, "--prefix", hub.prefix, "--unit", "poradovnik-hub.service", wheel],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_a_rolled_back_hub_runs_its_previous_version_on_a_downgraded_database(
    hub_installed: HubInstall, tmp_path: Path
) -> None:
    hub = hub_installed
    log = tmp_path / "restarts.log"
    down = 'op.drop_table("update_test")'
    result = update_hub(hub, product_wheel(tmp_path / "new", "2.0", migration(down)), log)
    assert result.returncode == 1, result.stderr
    assert "backed up the database to" in result.stderr
    assert "going back to venv-1.0" in result.stderr
    assert "failed" not in result.stderr
    assert os.readlink(hub.prefix / "venv") == "venv-1.0"
    # 2.0 migrated the database when it started; 1.0 started on it again afterwards
    # (without the downgrade: "Can't locate revision identified by '0099_update_test'").
    assert log.read_text().count("is up to date") == 2, log.read_text()
    with Store(hub.url) as store:
        assert store.revision() == HEAD_REVISION
        assert "update_test" not in inspect(store.db).get_table_names()
        assert store.count_tickets() == 5
    assert [b.path.name.split("-", 2)[2] for b in backups(hub.backups)] == [
        "before-update-2.0.sqlite3"
    ]


def test_a_schema_that_cannot_go_back_is_restored_from_the_backup(
    hub_installed: HubInstall, tmp_path: Path
) -> None:
    hub = hub_installed
    log = tmp_path / "restarts.log"
    down = 'raise NotImplementedError("this migration cannot be undone")'
    result = update_hub(hub, product_wheel(tmp_path / "new", "2.0", migration(down)), log)
    assert result.returncode == 1, result.stderr
    assert "restoring" in result.stderr
    assert os.readlink(hub.prefix / "venv") == "venv-1.0"
    assert log.read_text().count("is up to date") == 2, log.read_text()
    with Store(hub.url) as store:
        assert store.revision() == HEAD_REVISION
        assert "update_test" not in inspect(store.db).get_table_names()
        assert store.count_tickets() == 5
    # The database the restore replaced (2.0's) was kept too.
    names = [b.path.name for b in backups(hub.backups)]
    assert any(name.endswith("-before-restore.sqlite3") for name in names), names


def test_a_hub_whose_database_cannot_be_backed_up_stays_on_its_version(
    hub_installed: HubInstall, tmp_path: Path
) -> None:
    hub = hub_installed
    log = tmp_path / "restarts.log"
    nowhere = tmp_path / "usb"
    nowhere.write_text("not a folder: the stick is not mounted")
    wheel = product_wheel(tmp_path / "new", "2.0", migration('op.drop_table("update_test")'))
    result = update_hub(hub, wheel, log, healthy=True, PORADOVNIK_BACKUP__DIR=str(nowhere))
    assert result.returncode == 1, result.stderr
    assert "could not back up the database: staying on venv-1.0" in result.stderr
    assert os.readlink(hub.prefix / "venv") == "venv-1.0"
    assert sorted(p.name for p in hub.prefix.glob("venv-*")) == ["venv-1.0"]
    assert log.read_text().count("is up to date") == 1, log.read_text()  # 1.0 again
    with Store(hub.url) as store:
        assert store.revision() == HEAD_REVISION
