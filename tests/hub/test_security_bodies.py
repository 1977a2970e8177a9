"""Hostile request bodies on the REST API: every one gets a 4xx, never a 500.

Replays what was sent to the hub (a form-encoded body and a 30,000-deep JSON
array, two of them on routes that need no token), then lets hypothesis throw
arbitrary bytes, content types and deeply nested JSON at every route that takes
a body.
"""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.jsonbounds import too_deep
from hub.service import QueueService
from hub.users import ApiTokens
from hub.web.jsonbody import MAX_JSON_DEPTH

ROUTES = [
    "/api/v1/tickets",
    "/api/v1/eservice/lookup",
    "/api/v1/counters/1/actions",
    "/api/v1/eservice/updates",
]
"""Every API route that takes a body."""

JSON = "application/json"


@pytest.fixture
def headers(web_queue: QueueService) -> dict[str, str]:
    """A bearer token that may do everything (so that bodies, not scopes, are checked)."""
    token = ApiTokens(web_queue.store).issue("imesto", ("eservice", "counters", "statistics"))
    return {"Authorization": f"Bearer {token}"}


HOSTILE: dict[str, tuple[bytes, str]] = {
    "form-encoded": (b"service=taxes&priority=other", "application/x-www-form-urlencoded"),
    "30000-deep array": (b"[" * 30_000 + b"]" * 30_000, JSON),
    "10000-deep object": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, JSON),
    "unclosed depth": (b"[" * 30_000, JSON),
    "not an object": (b'["service", "taxes"]', JSON),
    "a string": (b'"taxes"', JSON),
    "null": (b"null", JSON),
    "empty": (b"", JSON),
    "not JSON": (b"service: taxes", JSON),
    "not UTF-8": (b'{"service": "\xff\xfe"}', JSON),
    "a 5000-digit number": (b'{"service": ' + b"9" * 5000 + b"}", JSON),
    "no content type": (b'{"service": "taxes"}', ""),
    "text/plain": (b'{"service": "taxes"}', "text/plain"),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_body_gets_400_invalid(
    client: FlaskClient, headers: dict[str, str], route: str, name: str
) -> None:
    body, content_type = HOSTILE[name]
    answer = client.post(route, data=body, headers={**headers, "Content-Type": content_type})
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert answer.is_json
    assert answer.get_json()["error"]["code"] == "invalid"


def test_the_first_two_need_no_token(client: FlaskClient) -> None:
    for route in ROUTES[:2]:
        for body, content_type in HOSTILE.values():
            answer = client.post(route, data=body, headers={"Content-Type": content_type})
            assert answer.status_code == 400, route


def test_a_body_too_deep_names_the_limit(client: FlaskClient) -> None:
    deep = {"service": "taxes", "lang": "sk"}
    nested: object = deep
    for _ in range(MAX_JSON_DEPTH):
        nested = [nested]
    answer = client.post("/api/v1/tickets", data=json.dumps(nested), content_type=JSON)
    assert answer.status_code == 400
    assert f"deeper than {MAX_JSON_DEPTH} levels" in answer.get_json()["error"]["message"]


def test_a_body_over_64_kib_is_refused(client: FlaskClient) -> None:
    body = json.dumps({"service": "x" * 70_000}).encode()
    answer = client.post("/api/v1/tickets", data=body, content_type=JSON)
    assert answer.status_code == 413
    assert answer.is_json


def test_an_ordinary_body_still_works(client: FlaskClient) -> None:
    answer = client.post("/api/v1/tickets", json={"service": "taxes", "lang": "en"})
    assert answer.status_code == 201


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("{}", False),
        ('{"a": [1, {"b": []}]}', False),
        ('{"a": "' + "[" * 100 + '"}', False),  # brackets in a string do not count
        ('["\\"' + "[" * 100 + '", [[]]]', False),  # nor after an escaped quote
        ("1", False),
        ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, False),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), True),
        ("[" * 100, True),
        ("]", True),
    ],
)
def test_the_nesting_is_measured_outside_strings(text: str, deep: bool) -> None:
    assert too_deep(text, MAX_JSON_DEPTH) is deep


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "body",
    [b'"' + b'\\"' * 32_000, b"[]" * 32_000, b"[" * 32_000 + b"]" * 32_000, b'"' * 64_000],
    ids=["escaped quotes", "many arrays", "deep", "quotes"],
)
def test_measuring_64_kib_is_linear(client: FlaskClient, body: bytes) -> None:
    """The first of these cost 48 s of CPU each with a pattern that backtracked."""
    for _ in range(10):
        answer = client.post("/api/v1/tickets", data=body, content_type=JSON)
        assert answer.status_code == 400


# -- hypothesis: arbitrary bodies on every route ------------------------------------------

nested_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=50,
)
deep_nesting = st.builds(
    lambda depth, opener: (opener[0] * depth + opener[1] * depth).encode(),
    st.integers(min_value=1, max_value=40_000),
    st.sampled_from([("[", "]"), ('{"a":', "}"), ("[", ""), ('{"service":[', "]}")]),
)
bodies = (
    st.binary(max_size=2_000)
    | nested_json.map(lambda value: json.dumps(value).encode())
    | deep_nesting
)
content_types = st.sampled_from(
    [
        JSON,
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ]
)


EVERY_PATH = [
    *ROUTES,
    "/api/v1/services",
    "/api/v1/queue",
    f"/api/v1/tickets/{'0' * 32}",
    "/api/v1/statistics",
    "/api/v1/openapi.json",
    "/api/v1/nothing",
]
"""Every route of the API (and one that does not exist)."""


def test_no_api_route_answers_500_to_any_body(client: FlaskClient, headers: dict[str, str]) -> None:
    @given(
        method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"]),
        route=st.sampled_from(EVERY_PATH),
        body=bodies,
        content_type=content_types,
    )
    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )
    def check(method: str, route: str, body: bytes, content_type: str) -> None:
        answer = client.open(
            route, method=method, data=body, headers={**headers, "Content-Type": content_type}
        )
        assert answer.status_code < 500, (route, body[:200], answer.get_data(as_text=True)[:300])
        assert answer.is_json

    check()
