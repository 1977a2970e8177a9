"""The REST API: its behaviour, and schemathesis fuzzing it against its OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from hub.service import QueueService
from hub.users import ApiTokens
from hub.web.api import spec

API = "/api/v1"


@pytest.fixture
def tokens(web_queue: QueueService) -> dict[str, str]:
    """Bearer tokens by system: imesto (e-services), panel (counters), bi (statistics)."""
    issuer = ApiTokens(web_queue.store)
    return {
        "imesto": issuer.issue("imesto", ("eservice",)),
        "panel": issuer.issue("panel", ("counters",)),
        "bi": issuer.issue("bi", ("statistics",)),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def update(msg_id: str, status: str, day: int, **extra: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "msg_id": msg_id,
        "system": "imesto",
        "reference": "MS-7",
        "status": status,
        "at": f"2026-03-{day:02d}T08:00:00+00:00",
        **extra,
    }


def test_the_openapi_document_describes_every_api_route(client: FlaskClient) -> None:
    document = client.get(f"{API}/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        f"{API}/services",
        f"{API}/queue",
        f"{API}/tickets",
        f"{API}/tickets/{{ticket_id}}",
        f"{API}/counters/{{counter_id}}/actions",
        f"{API}/eservice/updates",
        f"{API}/eservice/lookup",
        f"{API}/statistics",
        f"{API}/closures",
        f"{API}/services/{{service}}/slots",
        f"{API}/appointments",
        f"{API}/appointments/{{code}}",
    }
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


def test_a_ticket_is_issued_read_and_called(
    client: FlaskClient, web_queue: QueueService, tokens: dict[str, str]
) -> None:
    issued = client.post(f"{API}/tickets", json={"service": "waste", "lang": "en"})
    assert issued.status_code == 201
    ticket = issued.get_json()
    assert ticket["number"] == "B001"
    assert ticket["url"].endswith(f"/t/{ticket['id']}")
    panel = bearer(tokens["panel"])
    assert client.post(f"{API}/counters/3/actions", json={"action": "resume"}, headers=panel)
    called = client.post(f"{API}/counters/3/actions", json={"action": "next"}, headers=panel)
    assert called.status_code == 200
    assert called.get_json()["ticket"]["number"] == "B001"
    read = client.get(f"{API}/tickets/{ticket['id']}").get_json()
    assert read["state"] == "called"
    assert read["counter"] == "3"
    queue = {row["code"]: row for row in client.get(f"{API}/queue?lang=en").get_json()}
    assert queue["waste"]["name"] == "Municipal waste"


def test_refusals_are_4xx_json(
    client: FlaskClient, web_queue: QueueService, tokens: dict[str, str]
) -> None:
    cases = [
        (client.post(f"{API}/tickets", json={"service": "nope"}), 404, "unknown_service"),
        (client.post(f"{API}/tickets", data="not json"), 400, "invalid"),
        (client.post(f"{API}/tickets", json={"service": "taxes", "x": 1}), 422, "invalid"),
        (client.get(f"{API}/tickets/{'0' * 32}"), 404, "unknown_ticket"),
        (client.delete(f"{API}/queue"), 405, "method_not_allowed"),
        (client.get(f"{API}/nothing"), 404, "not_found"),
        (client.post(f"{API}/counters/1/actions", json={"action": "next"}), 401, "unauthorized"),
        (
            client.post(
                f"{API}/counters/1/actions",
                json={"action": "next"},
                headers=bearer(tokens["imesto"]),
            ),
            403,
            "forbidden",
        ),
        (
            client.post(
                f"{API}/counters/99/actions",
                json={"action": "next"},
                headers=bearer(tokens["panel"]),
            ),
            404,
            "unknown_counter",
        ),
        (
            client.post(
                f"{API}/counters/1/actions",
                json={"action": "done"},
                headers=bearer(tokens["panel"]),
            ),
            409,
            None,
        ),
    ]
    for answer, status, code in cases:
        assert answer.status_code == status, answer.get_data(as_text=True)
        body = answer.get_json()
        assert set(body) == {"error"}
        if code is not None:
            assert body["error"]["code"] == code


def test_eservice_updates_over_rest_are_idempotent_and_ordered(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    imesto = bearer(tokens["imesto"])
    first = client.post(
        f"{API}/eservice/updates", json=update("a", "received", 2, pin="555555"), headers=imesto
    )
    assert first.get_json()["current"] is True
    client.post(f"{API}/eservice/updates", json=update("c", "decided", 9), headers=imesto)
    late = client.post(
        f"{API}/eservice/updates", json=update("b", "in_progress", 5), headers=imesto
    )
    assert (late.get_json()["current"], late.get_json()["status"]) == (False, "decided")
    again = client.post(f"{API}/eservice/updates", json=update("c", "decided", 9), headers=imesto)
    assert again.get_json()["duplicate"] is True
    found = client.post(f"{API}/eservice/lookup", json={"reference": "ms-7", "pin": "555555"})
    assert found.status_code == 200
    body = found.get_json()
    assert body["status"] == "decided"
    assert [s["status"] for s in body["steps"]] == ["received", "in_progress", "decided"]
    wrong_pin = client.post(f"{API}/eservice/lookup", json={"reference": "MS-7", "pin": "000000"})
    wrong_ref = client.post(f"{API}/eservice/lookup", json={"reference": "MS-8", "pin": "555555"})
    assert wrong_pin.status_code == wrong_ref.status_code == 404
    assert wrong_pin.get_json() == wrong_ref.get_json()


def test_a_system_sends_only_for_itself(
    client: FlaskClient, web_queue: QueueService, tokens: dict[str, str]
) -> None:
    other = ApiTokens(web_queue.store).issue("skolstvo", ("eservice",))
    client.post(
        f"{API}/eservice/updates", json=update("a", "received", 2), headers=bearer(tokens["imesto"])
    )
    pretending = client.post(
        f"{API}/eservice/updates", json=update("z", "closed", 3), headers=bearer(other)
    )
    assert pretending.status_code == 403
    foreign = client.post(
        f"{API}/eservice/updates",
        json={**update("z", "closed", 3), "system": "skolstvo"},
        headers=bearer(other),
    )
    assert foreign.status_code == 409
    assert foreign.get_json()["error"]["code"] == "foreign_reference"


def test_statistics_need_their_token(
    client: FlaskClient, web_queue: QueueService, tokens: dict[str, str]
) -> None:
    web_queue.issue("taxes")
    assert client.get(f"{API}/statistics").status_code == 401
    answer = client.get(f"{API}/statistics", headers=bearer(tokens["bi"]))
    assert answer.status_code == 200
    assert answer.get_json()["total"]["tickets"] == 1
    assert answer.get_json()["walk_ins"]["tickets"] == 1
    assert answer.get_json()["appointments"]["tickets"] == 0
    assert answer.get_json()["punctuality"]["mean_offset_s"] is None
    reversed_range = client.get(
        f"{API}/statistics?from=2026-03-09&to=2026-03-01", headers=bearer(tokens["bi"])
    )
    assert reversed_range.status_code == 200
    assert reversed_range.get_json()["total"]["tickets"] == 0


@pytest.mark.parametrize("day", ["-8.9e-41", "1700000000", "2026-3-9", "09.03.2026"])
def test_statistics_take_days_as_iso_dates_only(
    client: FlaskClient, tokens: dict[str, str], day: str
) -> None:
    answer = client.get(f"{API}/statistics?from={day}", headers=bearer(tokens["bi"]))
    assert answer.status_code == 422
    assert answer.is_json


# -- schemathesis -------------------------------------------------------------------

SCOPE_OF_PATH = {"counters": "panel", "eservice": "imesto", "statistics": "bi"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_its_documented_contract(
    app: Flask, tokens: dict[str, str], mode: GenerationMode
) -> None:
    """Whatever schemathesis sends, valid or not: no 5xx, documented statuses and bodies."""
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (operation.query or operation.body):
            continue  # nothing to get wrong: GET /closures, or a path's free string alone
        system = next((v for k, v in SCOPE_OF_PATH.items() if k in operation.path), "panel")
        fuzz(operation, mode, bearer(tokens[system]))


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    """Send ``operation`` what schemathesis generates and check every answer."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=20,
        deadline=None,
        # The same examples on every run: a CI run fails for a change, not for a draw.
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers)

    check()


def test_the_document_is_generated_from_the_code(app: Flask) -> None:
    assert spec.spec["info"]["title"] == "Poradovník hub API"
