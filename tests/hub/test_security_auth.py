"""Attacks on secrets and sessions: guessing PINs and passwords, open redirects, old cookies.

Each test replays an attack as it was made against a running hub: guesses spread
over many source addresses (so that no per-address limit applies), a sign-in link
that leads elsewhere, a session cookie kept after sign-out or a password change.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from web_helpers import ADMIN_PASSWORD, cookie_copy, csrf_token, older_hasher

from common.settings import Settings
from hub.app import web_app
from hub.eservice import EServiceError, EServices
from hub.lockout import Locked, Lockout
from hub.service import QueueService
from hub.users import ApiTokens, Users
from hub.web.server import WebServer
from sync_agent.protocol import EServiceUpdate

REFERENCE = "MS-2026-0042"
PIN = "731904"
LOOKUP = "/api/v1/eservice/lookup"


def addresses(count: int, start: int = 2) -> Iterator[str]:
    """Loopback source addresses, one per guess: 127.0.0.2, 127.0.0.3, ..."""
    for n in range(start, start + count):
        yield f"127.0.{n // 250}.{n % 250 + 1}"


def from_address(address: str) -> dict[str, str]:
    return {"REMOTE_ADDR": address}


@pytest.fixture
def application(web_queue: QueueService) -> str:
    """An application with reference REFERENCE and PIN PIN."""
    EServices(web_queue.store).apply(
        EServiceUpdate(
            msg_id="m1",
            system="imesto",
            reference=REFERENCE,
            status="received",
            at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
            pin=PIN,
        )
    )
    return REFERENCE


def api_guess(client: FlaskClient, reference: str, pin: str, address: str) -> tuple[int, object]:
    answer = client.post(
        LOOKUP, json={"reference": reference, "pin": pin}, environ_base=from_address(address)
    )
    return answer.status_code, answer.get_json()


def portal_guess(client: FlaskClient, reference: str, pin: str, address: str) -> int:
    token = csrf_token(client, "/eservice")
    answer = client.post(
        "/eservice",
        data={"reference": reference, "pin": pin, "csrf_token": token},
        environ_base=from_address(address),
    )
    return answer.status_code


# -- PIN guessing ---------------------------------------------------------------------


def test_wrong_pins_from_many_addresses_lock_the_reference(
    client: FlaskClient, application: str
) -> None:
    source = addresses(20)
    guesses = [api_guess(client, application, f"{n:06d}", next(source))[0] for n in range(5)]
    assert guesses == [404] * 5
    # The right PIN, from yet another address, is refused now: the reference is locked.
    status, body = api_guess(client, application, PIN, next(source))
    assert status == 429
    assert body == {
        "error": {
            "code": "too_many_attempts",
            "message": "too many wrong PINs for this reference; try again later",
        }
    }
    # The portal's form shares the count.
    assert portal_guess(client, application, PIN, next(source)) == 429
    # Another reference is not affected.
    assert api_guess(client, "MS-2026-0043", PIN, next(source))[0] == 404


def test_an_unknown_reference_is_locked_alike(client: FlaskClient, application: str) -> None:
    def attack(reference: str, start: int) -> list[tuple[int, object]]:
        source = addresses(10, start)
        return [api_guess(client, reference, f"{n:06d}", next(source)) for n in range(7)]

    known = attack(application, 100)
    unknown = attack("MS-2026-9999", 200)
    assert [status for status, _ in known] == [404] * 5 + [429] * 2
    assert known == unknown  # a 429 tells nothing about whether the reference exists


def test_the_reference_stays_locked_across_a_restart(
    client: FlaskClient, application: str, web_settings: Settings, web_queue: QueueService
) -> None:
    source = addresses(10)
    for n in range(5):
        api_guess(client, application, f"{n:06d}", next(source))
    restarted = web_app(web_settings, web_queue, config={"TESTING": True}).test_client()
    assert api_guess(restarted, application, PIN, next(source))[0] == 429


def test_a_right_pin_clears_the_count(client: FlaskClient, application: str) -> None:
    source = addresses(20)
    for n in range(4):
        api_guess(client, application, f"{n:06d}", next(source))
    assert api_guess(client, application, PIN, next(source))[0] == 200
    guesses = [api_guess(client, application, f"{n:06d}", next(source))[0] for n in range(5)]
    assert guesses == [404] * 5


def test_parallel_guesses_from_many_addresses_get_five_tries(
    web_server: WebServer, application: str
) -> None:
    """27 addresses guess at once through the real server's worker threads."""
    sources = list(addresses(27))
    start = threading.Barrier(len(sources))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def guess(address: str, pin: str) -> None:
        try:
            conn = http.client.HTTPConnection(
                "127.0.0.1", web_server.port, timeout=30, source_address=(address, 0)
            )
            start.wait(30)
            conn.request(
                "POST",
                LOOKUP,
                json.dumps({"reference": application, "pin": pin}),
                {"Content-Type": "application/json"},
            )
            statuses.append(conn.getresponse().status)
            conn.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=guess, args=(address, f"{n:06d}"))
        for n, address in enumerate(sources)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(statuses) == [404] * 5 + [429] * 22


def test_updates_with_a_short_pin_are_refused(client: FlaskClient, web_queue: QueueService) -> None:
    token = ApiTokens(web_queue.store).issue("imesto", ("eservice",))
    update = {
        "v": 1,
        "msg_id": "a",
        "system": "imesto",
        "reference": "MS-7",
        "status": "received",
        "at": "2026-03-02T08:00:00+00:00",
        "pin": "12345",
    }
    answer = client.post(
        "/api/v1/eservice/updates", json=update, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "weak_pin"
    assert "6 characters" in answer.get_json()["error"]["message"]
    # MQTT's eservice/update goes through the same EServices.apply.
    with pytest.raises(EServiceError) as refused:
        EServices(web_queue.store).apply(EServiceUpdate.model_validate(update))
    assert refused.value.code == "weak_pin"
    assert EServices(web_queue.store).lookup("MS-7", "12345") is None
    # Six characters are enough to be stored.
    EServices(web_queue.store).apply(EServiceUpdate.model_validate({**update, "pin": "123456"}))
    assert EServices(web_queue.store).lookup("MS-7", "123456") is not None


# -- admin sign-in ----------------------------------------------------------------------


def sign_in(client: FlaskClient, username: str, password: str, address: str = "127.0.0.1") -> int:
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base=from_address(address),
    )
    return answer.status_code


def test_wrong_passwords_from_many_addresses_lock_the_account(
    client: FlaskClient, web_queue: QueueService
) -> None:
    Users(web_queue.store).add("admin", ADMIN_PASSWORD, "admin")
    Users(web_queue.store).add("jana", ADMIN_PASSWORD, "clerk")
    client.set_cookie("lang", "en")

    def attack(username: str, start: int) -> list[tuple[int, str]]:
        source = addresses(10, start)
        answers = []
        for n in range(5):
            answers.append(sign_in(client, username, f"guess number {n}", next(source)))
        answers.append(sign_in(client, username, ADMIN_PASSWORD, next(source)))
        token = csrf_token(client, "/admin/login")
        last = client.post(
            "/admin/login",
            data={"username": username, "password": ADMIN_PASSWORD, "csrf_token": token},
            environ_base=from_address(next(source)),
        )
        answers.append(last.status_code)
        return [(status, "") for status in answers] + [(0, _message(last.get_data(as_text=True)))]

    known = attack("admin", 100)
    unknown = attack("nobody", 200)
    assert [status for status, _ in known[:-1]] == [401] * 5 + [429] * 2
    assert known == unknown  # the same answers whether the user exists or not
    assert "Too many wrong passwords" in known[-1][1]
    # Other accounts still sign in.
    assert sign_in(client, "jana", ADMIN_PASSWORD, "127.0.9.9") == 302


def _message(page: str) -> str:
    return "\n".join(line for line in page.splitlines() if 'role="alert"' in line)


# -- redirects after sign-in --------------------------------------------------------------


@pytest.mark.parametrize(
    "wanted",
    [
        "/%09/evil.example/phish",
        "/%0A/evil.com",
        "/%0D%0A/evil.com",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/%7F/evil.example",
        "javascript:alert(1)",
    ],
)
def test_sign_in_follows_only_paths_of_this_site(
    client: FlaskClient, web_queue: QueueService, wanted: str
) -> None:
    Users(web_queue.store).add("admin", ADMIN_PASSWORD, "admin")
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        f"/admin/login?next={wanted}",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/"


def test_sign_in_follows_a_path_of_this_site(client: FlaskClient, web_queue: QueueService) -> None:
    Users(web_queue.store).add("admin", ADMIN_PASSWORD, "admin")
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        "/admin/login?next=/admin/statistics%3Ffrom%3D2026-03-01",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert answer.headers["Location"] == "/admin/statistics?from=2026-03-01"


# -- sessions ------------------------------------------------------------------------------


def stolen_cookie(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    return cookie_copy(app, client, "poradovnik_session")


def test_a_cookie_kept_past_sign_out_no_longer_works(app: Flask, admin: FlaskClient) -> None:
    thief = stolen_cookie(app, admin)
    assert thief.get("/admin/").status_code == 200
    admin.post("/admin/logout", data={"csrf_token": csrf_token(admin, "/admin/")})
    answer = thief.get("/admin/")
    assert answer.status_code == 302
    assert "/admin/login" in answer.headers["Location"]


def test_a_new_password_ends_the_users_sessions(
    app: Flask, admin: FlaskClient, web_queue: QueueService
) -> None:
    Users(web_queue.store).add("jana", ADMIN_PASSWORD, "clerk")
    jana = app.test_client()
    assert sign_in(jana, "jana", ADMIN_PASSWORD) == 302
    thief = stolen_cookie(app, jana)
    assert thief.get("/admin/").status_code == 200
    changed = admin.post(
        "/admin/users",
        data={
            "username": "jana",
            "role": "clerk",
            "password": "a brand new password",
            "active": "y",
            "csrf_token": csrf_token(admin, "/admin/users"),
        },
    )
    assert changed.status_code == 302
    assert thief.get("/admin/").status_code == 302
    assert jana.get("/admin/").status_code == 302
    # The admin who changed their own password stays signed in, the old cookie does not.
    old = stolen_cookie(app, admin)
    admin.post(
        "/admin/users",
        data={
            "username": "admin",
            "role": "admin",
            "password": "another new password",
            "active": "y",
            "csrf_token": csrf_token(admin, "/admin/users"),
        },
    )
    assert admin.get("/admin/").status_code == 200
    assert old.get("/admin/").status_code == 302


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(
    web_queue: QueueService, cheap_password_hashes: PasswordHasher
) -> None:
    users = Users(web_queue.store)
    users.add("jana", ADMIN_PASSWORD, "clerk")
    old = older_hasher(cheap_password_hashes).hash(ADMIN_PASSWORD)
    with web_queue.store.transaction() as conn:
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE username = 'jana'"), {"h": old}
        )
    assert users.authenticate("jana", "a wrong password") is None
    assert password_hash(web_queue, "jana") == old
    assert users.authenticate("jana", ADMIN_PASSWORD) is not None
    fresh = password_hash(web_queue, "jana")
    assert fresh != old
    assert not cheap_password_hashes.check_needs_rehash(fresh)


def password_hash(queue: QueueService, username: str) -> str:
    with queue.store.db.connect() as conn:
        query = text("SELECT password_hash FROM users WHERE username = :u")
        return str(conn.execute(query, {"u": username}).scalar_one())


@pytest.mark.parametrize(
    "url", ["/admin/login", "/admin/", "/admin/users", "/admin/tokens", "/clerk/counter"]
)
def test_private_pages_are_not_stored(admin: FlaskClient, url: str) -> None:
    answer = admin.get(url)
    assert answer.status_code == 200, url
    assert answer.headers["Cache-Control"] == "no-store"
    assert admin.get("/clerk/").headers["Cache-Control"] == "no-store"


def test_the_page_with_a_new_token_and_the_csv_are_not_stored(admin: FlaskClient) -> None:
    shown = admin.post(
        "/admin/tokens",
        data={"name": "imesto", "eservice": "y", "csrf_token": csrf_token(admin, "/admin/tokens")},
    )
    assert shown.status_code == 200
    assert shown.headers["Cache-Control"] == "no-store"
    csv = admin.get("/admin/statistics.csv")
    assert csv.status_code == 200
    assert csv.headers["Cache-Control"] == "no-store"


def test_an_applications_status_is_not_stored(client: FlaskClient, application: str) -> None:
    api = client.post(LOOKUP, json={"reference": application, "pin": PIN})
    assert api.status_code == 200
    assert api.headers["Cache-Control"] == "no-store"
    token = csrf_token(client, "/eservice")
    page = client.post(
        "/eservice", data={"reference": application, "pin": PIN, "csrf_token": token}
    )
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"


def test_a_lock_ends_after_its_time(web_queue: QueueService) -> None:
    now = [datetime(2026, 3, 2, 8, 0, tzinfo=UTC)]
    lockout = Lockout(
        web_queue.store,
        attempts=3,
        window=timedelta(hours=1),
        duration=timedelta(minutes=15),
        clock=lambda: now[0],
    )

    def wrong() -> None:
        return None

    for _ in range(3):
        assert lockout.check("pin", "X", wrong) is None
    with pytest.raises(Locked) as locked:
        lockout.check("pin", "X", wrong)
    assert locked.value.retry_after_s == 15 * 60
    now[0] += timedelta(minutes=15)
    # Still within the hour: one more try, and locked again at once.
    assert lockout.check("pin", "X", wrong) is None
    with pytest.raises(Locked):
        lockout.check("pin", "X", wrong)
    now[0] += timedelta(hours=2)
    assert [lockout.check("pin", "X", wrong) for _ in range(3)] == [None] * 3
