"""A throwaway PostgreSQL cluster: for the city's demo, and for tests wherever they run.

The city keeps its data in PostgreSQL only. ``poradovnik demo --branches N`` without
``[city] database_url`` runs on one of these, and the tests fall back on one where no
PostgreSQL server answers. :func:`throwaway_cluster` makes a cluster with Debian's
``initdb`` (package ``postgresql``, which ``scripts/test`` installs) in a temporary
directory, starts it on a free port of 127.0.0.1 with trust authentication, and
removes it on leaving. PostgreSQL refuses to run as root, so under root the server
runs as the ``postgres`` user (``nobody`` if there is none), owning the directory.
Durability is off: nothing in it outlives the run.
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

__all__ = ["ClusterError", "find_bindir", "throwaway_cluster"]

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


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Run a new PostgreSQL cluster until the block ends; its SQLAlchemy URL.

    The URL names the superuser ``postgres`` and its database ``postgres``. Raises
    :class:`ClusterError` when PostgreSQL is not installed or does not start.
    """
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
        data, log = directory / "data", directory / "server.log"
        _run(
            [
                *as_user,
                str(bindir / "initdb"),
                "--pgdata",
                str(data),
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
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        pg_ctl = [*as_user, str(bindir / "pg_ctl"), "--pgdata", str(data)]
        _run(
            [
                *pg_ctl,
                "--log",
                str(log),
                "--wait",
                f"--timeout={START_TIMEOUT_S}",
                "--options",
                options,
                "start",
            ],
            "starting PostgreSQL",
            log,
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run([*pg_ctl, "--mode", "immediate", "--wait", "stop"], "stopping PostgreSQL", log)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
