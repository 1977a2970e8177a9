"""The ``poradovnik`` command: one program for every device, the subcommand picks the role.

Expected failures end in one clean message on stderr, ``poradovnik: ...``, and an exit
status, never a traceback: 2 for bad settings or usage (as click uses for usage), 3 for a
part that is not available on this device. :class:`PoradovnikGroup` is the one place that
turns them into exits.

The hub's modules are imported only inside the commands that need them, so the command
works on a kiosk that has no hub dependencies installed.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Final, TypeVar

import click

from common.errors import PoradovnikError
from common.files import write_private_file
from common.lifecycle import stop_on_signals
from common.logging import setup_logging
from common.sdnotify import Notifier
from common.settings import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_PATH,
    Role,
    Settings,
    SettingsError,
    load_settings,
    resolve_config_path,
    settings_warnings,
)
from poradovnik import __version__
from sync_agent import provisioning

__all__ = [
    "EXIT_BAD_SETTINGS",
    "EXIT_NOT_AVAILABLE",
    "BadSettings",
    "CliFailure",
    "NotAvailable",
    "PoradovnikGroup",
    "main",
]

EXIT_BAD_SETTINGS = 2
"""Exit status for settings that cannot be used (click uses 2 for usage errors too)."""

EXIT_NOT_AVAILABLE = 3
"""Exit status for a role or part that this version or this device does not have."""

_HUB_MISSING = "the hub is not installed on this device (pip install 'poradovnik[hub]')"


class CliFailure(click.ClickException):
    """An expected failure: its message goes to stderr as ``poradovnik: ...``, then exit."""

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the message on stderr, each line prefixed with ``poradovnik:``."""
        for line in self.format_message().splitlines():
            click.echo(f"poradovnik: {line}", file=file, err=file is None)


class BadSettings(CliFailure):
    """The settings cannot be used: exit status 2."""

    exit_code = EXIT_BAD_SETTINGS


class NotAvailable(CliFailure):
    """The command needs what this version or this device lacks: exit status 3."""

    exit_code = EXIT_NOT_AVAILABLE


class PoradovnikGroup(click.Group):
    """A command group that turns expected errors from any subcommand into clean exits."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; a :class:`SettingsError` becomes exit status 2."""
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise BadSettings(str(exc)) from None
        except PoradovnikError as exc:
            raise CliFailure(str(exc)) from None


@dataclasses.dataclass
class _State:
    config: Path | None = None
    """The settings file named on the command line or in ``PORADOVNIK_CONFIG``."""


def _remember_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(_State).config = value


_CONFIG_TYPE = click.Path(dir_okay=False, path_type=Path)


_F = TypeVar("_F", bound=Callable[..., Any] | click.Command)


def _config_option(command: _F) -> _F:
    """Accept ``--config FILE`` after the subcommand too, as unit files often put it."""
    option = click.option(
        "--config",
        type=_CONFIG_TYPE,
        metavar="FILE",
        expose_value=False,
        callback=_remember_config,
        help="Settings file (same as the --config before the subcommand).",
    )
    return option(command)


def _config(ctx: click.Context) -> Path | None:
    return ctx.ensure_object(_State).config


def _load(ctx: click.Context, *, role: Role | None = None) -> Settings:
    """Load the settings for a command, and check they are for *role* if one is given."""
    settings = load_settings(_config(ctx))
    if role is not None and settings.role != role:
        file = resolve_config_path(_config(ctx))
        msg = (
            f'{file}: role is "{settings.role}", but this command is for the {role}; '
            f'on this device run `poradovnik {settings.role}`, or set role = "{role}"'
        )
        raise BadSettings(msg)
    setup_logging(settings.logging.level)
    return settings


def _hub(module: str) -> ModuleType:
    """Import ``hub.<module>``, or say that the hub is not installed here."""
    try:
        return importlib.import_module(f"hub.{module}")
    except ImportError as exc:
        raise NotAvailable(f"{_HUB_MISSING}: {exc}") from None


def _role(role: str, package: str) -> ModuleType:
    """Import ``<package>.app``, or say that the role is not installed here."""
    try:
        return importlib.import_module(f"{package}.app")
    except ImportError as exc:
        msg = f"the {role} is not installed here (pip install 'poradovnik[{role}]'): {exc}"
        raise NotAvailable(msg) from None


def _run_role(ctx: click.Context, role: Role, package: str) -> None:
    """Run a device role; a device without a broker account is paired with the hub first."""
    settings = _load(ctx, role=role)
    app = _role(role, package)
    if _pair_with_hub(ctx, settings, app):
        app.run(_load(ctx, role=role))


def _pair_with_hub(ctx: click.Context, settings: Settings, app: ModuleType) -> bool:
    """Pair an unpaired device (its settings have no [mqtt] account); ``False`` if stopped.

    The role's app module may define ``show_pairing(settings, pairing, stop)`` to show
    the code on its screen while the pairing runs in another thread (docs/appliance.md);
    otherwise the code is logged, and shown by ``systemctl status``.
    """
    if not provisioning.needs_pairing(settings):
        return True
    pairing = provisioning.DevicePairing(settings, resolve_config_path(_config(ctx)))
    code = provisioning.format_code(pairing.code)
    with Notifier() as notifier, stop_on_signals() as stop:
        pairing.on_change(lambda state: notifier.status(f"not paired: code {code} ({state})"))
        notifier.ready(f"not paired: code {code} (waiting)")
        show = getattr(app, "show_pairing", None)
        if show is None:
            return pairing.run(stop, tick=notifier.watchdog)
        worker = threading.Thread(
            target=pairing.run, args=(stop,), kwargs={"tick": notifier.watchdog}, daemon=True
        )
        worker.start()
        show(settings, pairing, stop)
        stop.set()
        worker.join()
        return pairing.done.is_set()


@click.group(
    cls=PoradovnikGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    type=_CONFIG_TYPE,
    metavar="FILE",
    envvar=CONFIG_ENV_VAR,
    show_envvar=True,
    help=f"Settings file of this device  [default: {DEFAULT_CONFIG_PATH}]",
)
@click.version_option(
    __version__, "--version", prog_name="poradovnik", message="%(prog)s %(version)s"
)
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """Poradovník: the queue-management appliance for city offices.

    One program runs every device: the hub keeps the queue; kiosks print tickets;
    counter panels call citizens; lobby displays show and announce the calls.
    The subcommand says which one to run.

    \b
    Every device reads one TOML settings file (examples: docs/config/*.toml).
    Any key can be overridden in the environment, which wins over the file:
      PORADOVNIK_<SECTION>__<KEY>   e.g. PORADOVNIK_WEB__PORT=8081
      PORADOVNIK_<KEY>              e.g. PORADOVNIK_ROLE=display

    \b
    Exit status: 0 done; 2 bad settings or usage;
    3 not available in this version or on this device.
    """  # noqa: D301 (click's \b keeps a paragraph's line breaks)
    ctx.ensure_object(_State).config = config


@main.command()
@_config_option
@click.pass_context
def hub(ctx: click.Context) -> None:
    """Run the hub: the queue, its web pages and its MQTT bridge.

    Needs role = "hub" in the settings, and the hub installed
    (pip install 'poradovnik[hub]'). Runs until stopped; under systemd it reports
    readiness and watchdog pings (Type=notify, WatchdogSec=).
    """
    settings = _load(ctx, role="hub")
    _hub("app").run_hub(settings)


DEVICE_ROLES: tuple[tuple[Role, str, str], ...] = (
    ("kiosk", "kiosk", "a ticket kiosk: touch screen and thermal printer"),
    (
        "display",
        "display",
        "a lobby display: shows, chimes and speaks the calls, drives the LED boards",
    ),
    ("counter", "counter_terminal", "a counter panel: the clerks' buttons and status lights"),
)
"""The device roles: command (and role) name, package, and what it runs."""


def _device_command(role: Role, package: str, what: str) -> click.Command:
    """The ``poradovnik <role>`` command, which runs ``<package>.app``."""

    @click.pass_context
    def command(ctx: click.Context) -> None:
        _run_role(ctx, role, package)

    command.__doc__ = f"""Run {what}.

    Needs role = "{role}" in the settings and the {role} installed
    (pip install 'poradovnik[{role}]'). Runs until stopped. Without a broker
    account in the settings, it is paired with the hub first (it shows or logs a code).
    """
    return main.command(role)(_config_option(command))


for _role_name, _package, _what in DEVICE_ROLES:
    _device_command(_role_name, _package, _what)


@main.command()
@_config_option
@click.option(
    "--branches",
    type=click.IntRange(1, 5),
    default=None,
    metavar="N",
    help="Run a small city instead: the city's server and N branch offices (1-5); "
    "needs PostgreSQL ([city] database_url, or initdb for a throwaway one).",
)
@click.pass_context
def demo(ctx: click.Context, branches: int | None) -> None:
    """Run a whole demo office on this computer: the hub with simulated devices.

    Needs no settings file. Unless the settings say otherwise, the role is hub and the
    demo keeps its data in ./var/demo under the current directory. With --branches N,
    a city of N such offices, each bridged to the city's broker, with the city's portal
    and admin pages.
    """
    settings = load_settings(
        _config(ctx),
        require_file=False,
        # Plain HTTP on this computer: the sign-in cookie must not require HTTPS.
        defaults={"role": "hub", "data": {"dir": "var/demo"}, "web": {"secure_cookies": False}},
    )
    setup_logging(settings.logging.level)
    if branches is None:
        _hub("demo").run_demo(settings)
        return
    _city("demo").run_city_demo(settings, branches)


@main.command("check-config")
@click.argument("file", required=False, type=_CONFIG_TYPE)
@_config_option
@click.pass_context
def check_config(ctx: click.Context, file: Path | None) -> None:
    """Check a settings file and the PORADOVNIK_* environment, then say what they set up.

    FILE defaults to --config, then PORADOVNIK_CONFIG, then the default path. Prints
    "ok: FILE (role ROLE, site ID)" and exits 0, or lists every problem and exits 2.
    What is allowed but probably wrong is printed as a warning before "ok"; it does
    not change the exit status.
    """
    path = resolve_config_path(file or _config(ctx))
    settings = load_settings(path)
    for warning in settings_warnings(settings):
        click.echo(f"warning: {path}: {warning}", err=True)
    click.echo(f"ok: {path} (role {settings.role}, site {settings.site.id})")


@main.command()
@click.option(
    "--from",
    "boot_file",
    type=_CONFIG_TYPE,
    default=Path("/boot/firmware/poradovnik.toml"),
    show_default=True,
    help="The per-device file on the boot partition.",
)
@click.option(
    "--to",
    "settings_file",
    type=_CONFIG_TYPE,
    default=DEFAULT_CONFIG_PATH,
    show_default=True,
    help="The settings file to write.",
)
def setup(boot_file: Path, settings_file: Path) -> None:
    """Write this device's settings file from the boot partition's poradovnik.toml.

    Run at first boot by poradovnik-firstboot.service. Prints role=ROLE,
    hostname=NAME (empty: keep it) and read_only=true|false for that service. A bad
    boot file changes nothing and exits 2 naming its problems.
    """
    from common.bootfile import write_settings  # noqa: PLC0415 (appliance only)

    boot, settings = write_settings(boot_file, settings_file)
    click.echo(f"role={settings.role}")
    click.echo(f"hostname={boot.hostname or boot.device_id or ''}")
    click.echo(f"read_only={str(boot.read_only).lower()}")


@main.group(cls=PoradovnikGroup)
def db() -> None:
    """Manage the hub's database (on the hub only)."""


@db.command()
@_config_option
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Create the hub's database, or bring its schema up to date.

    Safe to run again: it does nothing when the schema is current. The database is
    [database] url, by default hub.sqlite3 in [data] dir.
    """
    settings = _load(ctx, role="hub")
    click.echo(_hub("app").db_upgrade(settings))


@db.command()
@click.option(
    "--demo",
    "demo_office",
    is_flag=True,
    help="Load the demo office: its services, counters and opening hours.",
)
@_config_option
@click.pass_context
def seed(ctx: click.Context, demo_office: bool) -> None:
    """Fill the hub's database with starting data; for now the demo office (--demo)."""
    if not demo_office:
        msg = "say what to seed: --demo (the demo office) is the only seed data so far"
        raise click.UsageError(msg, ctx)
    settings = _load(ctx, role="hub")
    click.echo(_hub("app").db_seed_demo(settings))


@db.command("backup")
@click.option(
    "--to",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Folder for the backup  [default: [backup] dir, else backups in [data] dir]",
)
@click.option(
    "--label",
    default="",
    metavar="TEXT",
    help="Added to the file's name, e.g. before-update-1.2 (a-z, 0-9, '.', '-').",
)
@_config_option
@click.pass_context
def db_backup(ctx: click.Context, directory: Path | None, label: str) -> None:
    """Copy the hub's database into a new backup file, while the hub runs.

    SQLite: its online backup; PostgreSQL: pg_dump (custom format). The file is
    readable by its owner only; its path is printed.
    """
    settings = _load(ctx, role="hub")
    try:
        made = _hub("maintenance").db_backup(settings, directory, label=label)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="--label") from None
    click.echo(made)


@db.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--ids-after",
    type=click.IntRange(min=0, max=2**62),
    default=0,
    metavar="SEQ",
    help="A branch in a city restored without its old database: the city's progress "
    "for it (poradovnik city branch list); new audit rows get ids above it.",
)
@_config_option
@click.pass_context
def db_restore(ctx: click.Context, file: Path, ids_after: int) -> None:
    """Replace the hub's database with the backup FILE.

    Refused while a hub runs on the database (stop it first). The database it
    replaces is saved as a backup first. Start the hub afterwards: it brings the
    schema up to date.
    """
    settings = _load(ctx, role="hub")
    click.echo(_hub("maintenance").db_restore(settings, file, ids_after=ids_after))


@db.command("downgrade")
@click.argument("revision")
@_config_option
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Take the database's schema back to REVISION, for an older version to run on it.

    Run it with the newer version (it knows the migrations to undo), while no hub
    runs. What only the newer schema holds is lost; poradovnik-update does this
    when it goes back to the previous version.
    """
    settings = _load(ctx, role="hub")
    click.echo(_hub("maintenance").db_downgrade(settings, revision))


@db.command("prune")
@_config_option
@click.pass_context
def db_prune(ctx: click.Context) -> None:
    """Delete now what [retention] no longer keeps (the hub also does it daily)."""
    settings = _load(ctx, role="hub")
    click.echo(_hub("maintenance").db_prune(settings))


@main.group(cls=PoradovnikGroup)
def device() -> None:
    """Manage the office's devices: their broker accounts (on the hub only).

    After adding or removing one, run `poradovnik broker config` and reload
    Mosquitto (systemctl reload mosquitto).
    """


@device.command("add")
@click.argument("device_id")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["kiosk", "display", "counter", "backoffice"]),
    help="What the device is; backoffice: a city system that sends e-service updates.",
)
@click.option(
    "--counter",
    "counters",
    multiple=True,
    metavar="ID",
    help="A counter this panel acts for (repeat for several; counter panels only).",
)
@_config_option
@click.pass_context
def device_add(ctx: click.Context, device_id: str, role: str, counters: tuple[str, ...]) -> None:
    """Create the broker account of DEVICE_ID and print its new password (shown once).

    Adding an existing device replaces its account and password.
    """
    settings = _load(ctx, role="hub")
    account, password = _hub("accounts").add_device(settings, device_id, role, counters)
    click.echo(f"# [mqtt] settings of device {device_id} ({role}); the password is shown once")
    click.echo(f'username = "{account.username}"')
    click.echo(f'password = "{password}"')


@device.command("pair")
@click.argument("code")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["kiosk", "display", "counter"]),
    help="What the device is (it must be what its boot file says).",
)
@click.option(
    "--counter",
    "counters",
    multiple=True,
    metavar="ID",
    help="A counter this panel acts for (repeat for several; counter panels only).",
)
@click.option(
    "--device-id",
    metavar="ID",
    help="The device's id; the id of a broken device replaces it. Default: what it proposes.",
)
@_config_option
@click.pass_context
def device_pair(
    ctx: click.Context,
    code: str,
    role: str,
    counters: tuple[str, ...],
    device_id: str | None,
) -> None:
    """Pair the new device that shows CODE: give it its broker account and role.

    The device keeps asking while it shows the code; this creates its account,
    rewrites the broker's files (Mosquitto reloads them by itself on the appliance)
    and waits until the device is online. Pairing a device with the id of an existing
    one replaces it: the old one's account stops working.
    """
    settings = _load(ctx, role="hub")
    paired = _hub("provisioning").pair_device(
        settings, code, role=role, counters=counters, device_id=device_id
    )
    account = paired.account
    if paired.online:
        click.echo(f"paired {account.device_id} ({role}): it is online")
    else:
        click.echo(
            f"paired {account.device_id} ({role}), but it has not come online yet; "
            "see its screen or log, and `systemctl status poradovnik-broker-reload` here"
        )


@device.command("list")
@_config_option
@click.pass_context
def device_list(ctx: click.Context) -> None:
    """List the devices that have broker accounts."""
    settings = _load(ctx, role="hub")
    for account in _hub("accounts").list_devices(settings):
        counters = f" counters {','.join(account.counters)}" if account.counters else ""
        click.echo(f"{account.username}\t{account.role}{counters}")


@device.command("remove")
@click.argument("device_id")
@_config_option
@click.pass_context
def device_remove(ctx: click.Context, device_id: str) -> None:
    """Delete DEVICE_ID's broker account."""
    settings = _load(ctx, role="hub")
    if not _hub("accounts").remove_device(settings, device_id):
        raise CliFailure(f"no device {device_id!r} has a broker account")
    click.echo(f"removed {device_id}")


_password_option: Final = click.password_option(
    "--password",
    prompt="Password",
    help="The password (asked for, twice, when not given; at least 10 characters).",
)
"""A new user's ``--password``, asked for twice when not given (hub and city users)."""


@main.group(cls=PoradovnikGroup)
def user() -> None:
    """Manage the people who sign in to the hub's admin pages (on the hub only)."""


def _store(settings: Settings) -> closing[Any]:
    """The hub's store, upgraded, closed afterwards."""
    return closing(_hub("database").open_store(settings))


@user.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["admin", "clerk"]),
    default="admin",
    show_default=True,
    help="admin: everything; clerk: the counter panel, the dashboard and statistics.",
)
@_password_option
@_config_option
@click.pass_context
def user_add(ctx: click.Context, username: str, role: str, password: str) -> None:
    """Create USERNAME, or reset their password and role; the first admin starts here."""
    settings = _load(ctx, role="hub")
    with _store(settings) as store:
        _hub("users").Users(store).add(username, password, role)
    click.echo(f"user {username} ({role}) can sign in at /admin")


@user.command("list")
@_config_option
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List the users, their roles and whether they may sign in."""
    settings = _load(ctx, role="hub")
    with _store(settings) as store:
        for found in _hub("users").Users(store).all():
            state = "" if found.active else "\tdisabled"
            click.echo(f"{found.username}\t{found.role}{state}")


@user.command("remove")
@click.argument("username")
@_config_option
@click.pass_context
def user_remove(ctx: click.Context, username: str) -> None:
    """Delete USERNAME (the last active admin cannot be removed)."""
    settings = _load(ctx, role="hub")
    with _store(settings) as store:
        if not _hub("users").Users(store).remove(username):
            raise CliFailure(f"no user {username!r}")
    click.echo(f"removed {username}")


@main.command("api-token")
@click.argument("system")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["eservice", "counters", "statistics"]),
    help="What the token may do (repeat for several).",
)
@_config_option
@click.pass_context
def api_token(ctx: click.Context, system: str, scopes: tuple[str, ...]) -> None:
    """Create (or replace) the REST API token of SYSTEM and print it (shown once)."""
    settings = _load(ctx, role="hub")
    with _store(settings) as store:
        token = _hub("users").ApiTokens(store).issue(system, scopes)
    click.echo(f"# REST API token of {system} ({', '.join(scopes)}); it is shown once")
    click.echo(token)


@main.group(cls=PoradovnikGroup)
def broker() -> None:
    """The office's Mosquitto broker (on the hub only)."""


@broker.command("config")
@_config_option
@click.pass_context
def broker_config(ctx: click.Context) -> None:
    """Write Mosquitto's configuration, password file and ACL into [broker] dir.

    One account per device (poradovnik device add) plus the hub's own ([mqtt]
    username and password). Then point Mosquitto at mosquitto.conf and reload it.
    With [uplink] host set, the configuration also bridges the broker to the city's
    (restart Mosquitto after changing [uplink]: a reload keeps the old bridge).
    """
    settings = _load(ctx, role="hub")
    files = _hub("accounts").write_broker_config(settings)
    click.echo(f"wrote {files.config}, {files.password_file} and {files.acl_file}")
    if settings.uplink.host is not None:
        click.echo(
            f"bridged to the city's broker {settings.uplink.host}:{settings.uplink.port}; "
            "restart Mosquitto for a changed bridge to take effect"
        )


@main.group(cls=PoradovnikGroup)
def nginx() -> None:
    """The portal's nginx front: TLS, static files, limits (on the hub image)."""


@nginx.command("config")
@_config_option
@click.option(
    "--to",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/poradovnik/nginx.conf"),
    show_default=True,
    help="The file to write; - for standard output.",
)
@click.option(
    "--certificate",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/poradovnik/tls/portal.crt"),
    show_default=True,
    help="The portal's certificate (PEM, intermediates after it).",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/poradovnik/tls/portal.key"),
    show_default=True,
    help="The certificate's private key (PEM).",
)
@click.pass_context
def nginx_config(ctx: click.Context, target: Path, certificate: Path, key: Path) -> None:
    """Write nginx's configuration for the front of this hub's web server.

    TLS on 443 with the given certificate, plain HTTP on 80 for the lobby display and a
    redirect, the static files, limits per client address, and the hub at [web] host
    and port behind it (which should be 127.0.0.1, with [web] proxy_hops = 1). The
    appliance's nginx.service reads it; reload nginx after writing it.
    """
    settings = _load(ctx, role="hub")
    module = _hub("nginx")
    text = module.render_config(settings.web, module.Front(certificate=certificate, key=key))
    if str(target) == "-":
        click.echo(text, nl=False)
        return
    write_private_file(target, text)
    click.echo(f"wrote {target}")


# -- the city -----------------------------------------------------------------------


def _city(module: str) -> ModuleType:
    """Import ``city.<module>``, or say that the city is not installed here."""
    try:
        return importlib.import_module(f"city.{module}")
    except ImportError as exc:
        msg = f"the city is not installed here (pip install 'poradovnik[city]'): {exc}"
        raise NotAvailable(msg) from None


def _city_store(settings: Settings) -> closing[Any]:
    """The city's store, upgraded, closed afterwards."""
    return closing(_city("app").open_city_store(settings))


def _city_web_factory() -> Callable[..., Any] | None:
    """``city.web.create_city_app``, or ``None`` where the city's pages are not installed."""
    try:
        web = importlib.import_module("city.web")
    except ImportError:
        return None
    factory: Callable[..., Any] = web.create_city_app
    return factory


@main.group(cls=PoradovnikGroup, invoke_without_command=True)
@_config_option
@click.pass_context
def city(ctx: click.Context) -> None:
    """Run the city's server, or manage it (a subcommand).

    Without a subcommand: run the city's consumer of every branch's history and its web
    pages. Needs role = "city" in the settings, [city] database_url (PostgreSQL) and
    the city installed (pip install 'poradovnik[city]'). Runs until stopped; under
    systemd it reports readiness and watchdog pings (Type=notify, WatchdogSec=).
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = _load(ctx, role="city")
    _city("app").run_city(settings, _city_web_factory())


@city.group("db", cls=PoradovnikGroup)
def city_db() -> None:
    """Manage the city's database."""


@city_db.command("upgrade")
@_config_option
@click.pass_context
def city_db_upgrade(ctx: click.Context) -> None:
    """Create the city's tables, or migrate them to this version (safe to repeat)."""
    settings = _load(ctx, role="city")
    click.echo(_city("app").db_upgrade(settings))


@city.group("branch", cls=PoradovnikGroup)
def city_branch() -> None:
    """Manage the city's branches (offices) and their accounts on its broker."""


def _rewrite_city_broker(settings: Settings, store: Any) -> None:
    """Rewrite the city broker's files after a branch changed; a failure is a warning."""
    try:
        files = _city("broker").write_city_broker_config(settings, store)
    except PoradovnikError as exc:
        click.echo(
            f"poradovnik: warning: {exc}; run `poradovnik city broker-config` once it is fixed",
            err=True,
        )
        return
    click.echo(f"rewrote {files.password_file} and {files.acl_file}", err=True)


@city_branch.command("add")
@click.argument("site")
@click.option("--name", required=True, help="The branch's name as citizens know it.")
@click.option("--address", required=True, help="Its street address, for the city's portal.")
@click.option("--url", default=None, help="Its public portal, https://… (tickets, bookings).")
@click.option("--catalogue", is_flag=True, help="It takes the city's service catalogue.")
@_config_option
@click.pass_context
def city_branch_add(
    ctx: click.Context, site: str, name: str, address: str, url: str | None, catalogue: bool
) -> None:
    """Add branch SITE (its [site] id) and print the [uplink] section for its hub.

    The section holds the branch's new broker password: it is shown once. The city
    broker's files are rewritten (the broker reloads them).
    """
    settings = _load(ctx, role="city")
    app = _city("app")
    with _city_store(settings) as store:
        branch, password = store.add_branch(
            site, name=name, address=address, url=url, catalogue=catalogue
        )
        _rewrite_city_broker(settings, store)
    click.echo(app.uplink_section(settings, branch, password), nl=False)


@city_branch.command("list")
@_config_option
@click.pass_context
def city_branch_list(ctx: click.Context) -> None:
    """List the branches: site, broker account, catalogue, name, address, progress.

    The progress is the highest sequence of the branch's history the city holds.
    """
    settings = _load(ctx, role="city")
    with _city_store(settings) as store:
        progress = store.progress()
        for branch in store.branches():
            catalogue = "catalogue" if branch.catalogue else "-"
            held = progress[branch.site].seq if branch.site in progress else 0
            click.echo(
                f"{branch.site}\t{branch.username}\t{catalogue}\t{branch.name}"
                f"\t{branch.address}\t{held}"
            )


@city_branch.command("remove")
@click.argument("site")
@_config_option
@click.pass_context
def city_branch_remove(ctx: click.Context, site: str) -> None:
    """Remove branch SITE, its account and its history from the city."""
    settings = _load(ctx, role="city")
    with _city_store(settings) as store:
        if not store.remove_branch(site):
            raise CliFailure(f"no branch {site!r}")
        _rewrite_city_broker(settings, store)
    click.echo(f"removed {site}")


def _branch_roles(values: tuple[str, ...]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for value in values:
        site, sep, role = value.partition("=")
        if not sep or role not in ("viewer", "manager") or not site:
            raise click.BadParameter(f"{value!r}: write SITE=viewer or SITE=manager")
        roles[site] = role
    return roles


@city.group("user", cls=PoradovnikGroup)
def city_user() -> None:
    """Manage the people who sign in to the city's admin pages."""


@city_user.command("add")
@click.argument("username")
@click.option("--admin", is_flag=True, help="A city admin: every branch, catalogue, users.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="SITE=viewer|manager",
    help="What the user may do at a branch (repeat for several).",
)
@_password_option
@_config_option
@click.pass_context
def city_user_add(
    ctx: click.Context, username: str, admin: bool, roles: tuple[str, ...], password: str
) -> None:
    """Create USERNAME, or reset their password and roles."""
    if admin == bool(roles):
        raise click.UsageError("give either --admin or at least one --role SITE=viewer|manager")
    by_site = _branch_roles(roles)
    settings = _load(ctx, role="city")
    with _city_store(settings) as store:
        store.add_user(username, password, city_admin=admin, roles=by_site)
    what = "city admin" if admin else ", ".join(f"{s} {r}" for s, r in by_site.items())
    click.echo(f"user {username} ({what}) can sign in at /admin")


@city.command("broker-config")
@_config_option
@click.pass_context
def city_broker_config(ctx: click.Context) -> None:
    """Write the city's Mosquitto configuration, password file and ACL into [broker] dir.

    One account per branch (poradovnik city branch add) plus the consumer's own ([city]
    mqtt_username and mqtt_password). Then point Mosquitto at mosquitto.conf and reload it.
    """
    settings = _load(ctx, role="city")
    with _city_store(settings) as store:
        files = _city("broker").write_city_broker_config(settings, store)
    click.echo(f"wrote {files.config}, {files.password_file} and {files.acl_file}")


if __name__ == "__main__":
    main(prog_name="poradovnik")
