"""A throwaway PostgreSQL cluster: for the city's demo, and for tests wherever they run.

The city keeps its data in PostgreSQL only. ``poradovnik demo --branches N`` without
``[city] database_url`` runs on one of these, and the tests fall back on one where no
PostgreSQL server answers. :func:`throwaway_cluster` makes a cluster with Debian's
``initdb`` (package ``postgresql``, which ``scripts/test`` installs) in a temporary
directory, starts it on a free port of 127.0.0.1 with trust authentication, and
removes it on leaving. PostgreSQL refuses to run as root, so under root the server
runs as the ``postgres`` user (``nobody`` if there is none), owning the directory.
Durability is off: nothing in it outlives the run.

:func:`primary_and_standby` makes two such servers, the second a streaming standby of
the first (``pg_basebackup -R``), for tests of a failover (:meth:`Server.promote`).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub.broker import free_port

__all__ = ["ClusterError", "Server", "find_bindir", "primary_and_standby", "throwaway_cluster"]

START_TIMEOUT_S = 60
"""How long the server may take to start (pg_ctl's ``-t``)."""


class ClusterError(Exception):
    """The throwaway cluster could not be made or started; says why."""


def find_bindir() -> Path | None:
    """The directory of the newest ``initdb`` and ``pg_ctl``, or ``None``."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)],
    )
    if installed:
        return installed[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found is not None else None


def _server_user() -> pwd.struct_passwd | None:
    """Whom the server runs as: ourselves (``None``), or a user of its own under root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterError("running as root, and there is no 'postgres' or 'nobody' user")


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        server = log.read_text(errors="replace") if log is not None and log.exists() else ""
        raise ClusterError(
            f"{what} failed ({' '.join(command)}; exit status {done.returncode}):\n"
            f"{done.stdout}{done.stderr}{server}"
        )


class Server:
    """One PostgreSQL server of a throwaway cluster: its data directory, port and log.

    It listens on ``port`` of 127.0.0.1 (and a socket in ``directory``), with trust
    authentication, replication allowed from 127.0.0.1.
    """

    def __init__(self, bindir: Path, directory: Path, name: str, as_user: list[str]) -> None:
        self.bindir = bindir
        self.directory = directory
        self.data = directory / name
        self.log = directory / f"{name}.log"
        self.port = free_port()
        self._as_user = as_user

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``postgres`` database, as the superuser ``postgres``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self) -> list[str]:
        return [*self._as_user, str(self.bindir / "pg_ctl"), "--pgdata", str(self.data)]

    def _pg_ctl(self, *args: str) -> None:
        _run([*self._ctl(), *args], f"pg_ctl {args[-1]}", self.log)

    def initdb(self) -> None:
        """Make the server's data directory, a new cluster."""
        _run(
            [
                *self._as_user,
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
        )

    def base_backup(self, primary: Server) -> None:
        """Make the data directory a streaming standby of ``primary`` (pg_basebackup -R)."""
        _run(
            [
                *self._as_user,
                str(self.bindir / "pg_basebackup"),
                "--pgdata",
                str(self.data),
                "--host",
                "127.0.0.1",
                "--port",
                str(primary.port),
                "--username",
                "postgres",
                "--wal-method",
                "stream",
                "--write-recovery-conf",
                "--no-sync",
            ],
            "pg_basebackup",
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg_ctl(
            "--log", str(self.log), "--wait", f"--timeout={START_TIMEOUT_S}",
            "--options", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` is a crash (no checkpoint, nothing flushed)."""
        self._pg_ctl("--mode", mode, "--wait", "stop")

    def promote(self) -> None:
        """Make a standby the primary, and wait until it is."""
        self._pg_ctl("--wait", f"--timeout={START_TIMEOUT_S}", "promote")

    def running(self) -> bool:
        """Whether the server runs."""
        command = [*self._as_user, str(self.bindir / "pg_ctl"), "--pgdata", str(self.data)]
        return (
            subprocess.run([*command, "status"], capture_output=True, check=False).returncode == 0
        )


@contextmanager
def _cluster_directory() -> Iterator[tuple[Path, Path, list[str]]]:
    """A directory for servers (owned by their user under root); the bindir and user prefix."""
    bindir = find_bindir()
    if bindir is None:
        raise ClusterError("PostgreSQL is not installed (Debian package 'postgresql')")
    user = _server_user()
    as_user = [] if user is None else ["runuser", "-u", user.pw_name, "--"]
    # In /tmp, not under pytest's private directory: the server's user must reach it.
    directory = Path(tempfile.mkdtemp(prefix="poradovnik-postgres-"))
    try:
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
        yield bindir, directory, as_user
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Run a new PostgreSQL cluster until the block ends; its SQLAlchemy URL.

    The URL names the superuser ``postgres`` and its database ``postgres``. Raises
    :class:`ClusterError` when PostgreSQL is not installed or does not start.
    """
    with _cluster_directory() as (bindir, directory, as_user):
        server = Server(bindir, directory, "data", as_user)
        server.initdb()
        server.start()
        try:
            yield server.url
        finally:
            server.stop("immediate")


@contextmanager
def primary_and_standby() -> Iterator[tuple[Server, Server]]:
    """Run a new primary and its streaming standby (asynchronous) until the block ends.

    Either may be stopped, started and promoted meanwhile; whatever runs at the end is
    stopped. Raises :class:`ClusterError` when PostgreSQL is not installed or does not
    start.
    """
    with _cluster_directory() as (bindir, directory, as_user):
        primary = Server(bindir, directory, "primary", as_user)
        standby = Server(bindir, directory, "standby", as_user)
        primary.initdb()
        primary.start()
        try:
            standby.base_backup(primary)
            standby.start()
            yield primary, standby
        finally:
            for server in (standby, primary):
                if server.running():
                    server.stop("immediate")
