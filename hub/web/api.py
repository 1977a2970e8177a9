"""The REST API at ``/api/v1``, described by the OpenAPI document at ``/api/v1/openapi.json``.

The document is generated from the pydantic models and routes here (spectree).
Requests are validated against the models; every refusal is a 4xx with a JSON
body ``{"error": {"code": …, "message": …}}``. A body must be a JSON object
(``Content-Type: application/json``), at most 64 KiB and nested at most
:data:`~hub.web.jsonbody.MAX_JSON_DEPTH` deep; any other is refused with 400
``invalid`` before a route sees it. Writes of city systems carry a
bearer token (:class:`~hub.users.ApiTokens`) with the right scope;
reading an application's status needs its reference and PIN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, time, timedelta
from functools import wraps
from typing import Annotated, Any, Final, Literal, TypeVar, cast

from flask import Blueprint, Flask, Response, g, jsonify, request
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, RootModel
from spectree import Response as Responses
from spectree import SecurityScheme, SpecTree
from spectree.models import SecureType, SecuritySchemeData
from werkzeug.exceptions import BadRequest

from hub import stats
from hub.appointments import MAX_NAME, BookingError, Contact
from hub.eservice import EServiceError
from hub.lockout import Locked
from hub.model import Appointment, Priority
from hub.service import QueueError
from hub.users import ApiToken, TokenScope
from hub.web.booking import (
    BOOKING_SCOPE,
    CODE_SCOPE,
    client_address,
    refusal_status,
)
from hub.web.context import hub
from hub.web.extensions import csrf, limiter
from hub.web.jsonbody import MAX_JSON_DEPTH
from hub.web.portal import LOOKUP_SCOPE, lookup_application
from hub.web.views import TICKET_ID_RE, queue_rows, ticket_view
from sync_agent.protocol import (
    CounterAction,
    EServiceAck,
    EServiceUpdate,
    Id,
    Lang,
    PriorityReason,
    booking_qr,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

F = TypeVar("F", bound=Callable[..., Any])

NOT_FOUND_CODES: Final = frozenset({"unknown_service", "unknown_counter", "unknown_ticket"})


class Model(BaseModel):
    """Base of the API's bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ErrorBody(Model):
    """Why a request was refused."""

    code: str
    message: str


class Error(Model):
    """Every 4xx answer."""

    error: ErrorBody


class ValidationFailure(Model):
    """A body, query or path that does not match the schema (422)."""

    error: ErrorBody


class ServiceOut(Model):
    """A service and its live state."""

    code: str
    prefix: str
    name: str
    """In the language asked for with ``lang``."""
    open: bool
    """Whether tickets are issued now (the admin's switch, the opening hours narrowed by
    public holidays and closures, the cut-off)."""
    cut_off: bool
    """Open, but taking no more tickets in this opening: those waiting fill it."""
    opens_at: AwareDatetime | None
    """When it is not open: the next time it opens, in the office's zone (``null``: not
    known)."""
    closed_for: str | None
    """Why the office calendar closes it now: a public holiday's name (in the office's
    language) or the reason the admin gave for a closure."""
    hours: str
    waiting: int
    estimated_wait_min: int | None
    """For a ticket taken now; ``null`` when no counter serves the service."""
    open_counters: int
    issued_today: int
    daily_limit: int | None


class Queue(RootModel[list[ServiceOut]]):
    """Every service, in catalog order."""


class ClosureOut(Model):
    """A day, or part of one, when the office or some of its services close."""

    id: str
    day: date
    """The office's local day."""
    start: time | None
    """Local time it begins; ``null``: the start of the day."""
    end: time | None
    """Local time it ends; ``null``: the end of the day."""
    reason: str
    services: list[str]
    """The services closed; empty: every service."""


class Closures(RootModel[list[ClosureOut]]):
    """The closures of today and later, by day and start."""


class LangQuery(Model):
    """The language of names in the answer."""

    lang: Lang = "sk"


class IssueIn(Model):
    """A ticket request."""

    service: Id
    lang: Lang = "sk"
    priority: PriorityReason | None = None


class TicketOut(Model):
    """A ticket as its holder sees it."""

    id: str
    number: str
    service: str
    service_name: str
    state: str
    people_ahead: int | None
    estimated_wait_min: int | None
    counter: str | None
    counter_name: str | None
    issued_at: AwareDatetime
    called_at: AwareDatetime | None
    url: str
    """The my-ticket page (what the printed QR code holds)."""


class ActionIn(Model):
    """A clerk's action at a counter."""

    action: CounterAction
    service: Id | None = None
    """The target service of a ``transfer``."""
    ticket_id: Id | None = None
    """With ``next``: bring back this parked ticket."""


class CounterOut(Model):
    """A counter after an action."""

    id: str
    name: str
    state: Literal["open", "paused"]
    ticket: TicketOut | None


class LookupIn(Model):
    """An application's reference and PIN from the citizen's receipt."""

    reference: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=4, max_length=32)


class StepOut(Model):
    """One entry of an application's timeline."""

    status: str
    at: AwareDatetime
    department: str | None
    note: str | None


class ApplicationOut(Model):
    """An application's status and timeline."""

    reference: str
    status: str
    status_at: AwareDatetime
    department: str | None
    waiting_position: int | None
    steps: list[StepOut]


def _iso_day(value: object) -> object:
    """Let only a calendar date as YYYY-MM-DD through.

    pydantic alone would also read a number as a Unix time: ``from=-8.9e-41`` would
    become 1970-01-01.
    """
    if isinstance(value, date) or (isinstance(value, str) and ISO_DAY_RE.fullmatch(value)):
        return value
    raise ValueError("a date as YYYY-MM-DD")


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
"""A day in a query: ``2026-11-22``."""

ISO_DAY_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


class StatisticsQuery(Model):
    """A range of business days (default: the 7 days to today; ``from`` after ``to`` is empty)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: IsoDay | None = Field(default=None, alias="from")
    end: IsoDay | None = Field(default=None, alias="to")


class GroupOut(Model):
    """Figures of a service, counter or hour of day."""

    key: str
    tickets: int
    served: int
    no_shows: int
    mean_wait_s: float | None
    mean_service_s: float | None
    within_target_share: float | None
    no_show_rate: float | None


class PunctualityOut(Model):
    """When citizens with a booking checked in, against their slot's start."""

    early: int
    on_time: int
    """Within ``stats.ON_TIME_S`` (5 minutes) of the slot's start, either side."""
    late: int
    mean_offset_s: float | None
    """The mean check-in time from the slot's start (negative: before it)."""


class RemoteOut(Model):
    """What became of the remote tickets (taken on the portal)."""

    taken: int
    checked_in: int
    """Their holders checked in at a kiosk."""
    expired: int
    """Expired without a check-in."""


class StatisticsOut(Model):
    """The figures of a range of business days."""

    start: date
    end: date
    target_wait_s: int
    total: GroupOut
    per_service: list[GroupOut]
    per_counter: list[GroupOut]
    per_hour: list[GroupOut]
    appointments: GroupOut
    """The tickets of citizens who checked in with a booking."""
    walk_ins: GroupOut
    """The other tickets."""
    punctuality: PunctualityOut
    booked_no_shows: int
    """Bookings of the range nobody checked in."""
    booked_no_show_rate: float | None
    per_priority: list[GroupOut] = []
    """The priority tickets per reason (``disability``, ``pregnancy``, ``age``,
    ``with_child``, ``other``), each reason that occurred."""
    priority_tickets: int = 0
    """How many tickets had priority, whatever the reason."""
    remote: RemoteOut
    """The remote tickets of the range."""


class SlotsQuery(Model):
    """The day whose slots are asked for."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    day: IsoDay = Field(alias="date")
    """``YYYY-MM-DD``, from today to the service's booking window."""


class SlotOut(Model):
    """A bookable slot and its free seats."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    seats: int
    free: int


class SlotsOut(Model):
    """A day's slots of a service (those not begun yet), full ones too."""

    service: str
    date: date
    slots: list[SlotOut]


class BookIn(Model):
    """A booking: the slot (its ``starts_at`` as the slots list gives it) and who comes."""

    service: Id
    starts_at: AwareDatetime
    name: str = Field(min_length=1, max_length=MAX_NAME)
    """A name or initials; the clerk greets the citizen with it."""
    email: str | None = Field(default=None, max_length=254)
    """Kept only until the night after the appointment."""
    lang: Lang = "sk"


class AppointmentOut(Model):
    """A booking as its holder sees it."""

    code: str
    """The booking code (8 digits): the kiosk's check-in and the key to cancel."""
    service: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    state: str
    qr: str
    """The text of the booking's QR code, which the kiosk's scanner reads."""
    url: str
    """The booking's portal page (QR code, calendar file, cancel, move)."""


def validation_failed(
    _req: Any, resp: Any, req_validation_error: Any, _instance: Any, *_args: Any
) -> None:
    """Give spectree's 422 the API's error shape."""
    if req_validation_error is None or resp is None:
        return
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ())) or 'body'}: {err.get('msg')}"
        for err in req_validation_error.errors()[:5]
    )
    resp.set_data(json.dumps({"error": {"code": "invalid", "message": problems}}))
    resp.mimetype = "application/json"


def api_spec(title: str, security_schemes: list[SecurityScheme]) -> SpecTree:
    """A role's OpenAPI document: strict validation and the API's 422 shape.

    The hub's and the city's APIs both serve theirs at ``/api/v1/openapi.json``.
    """
    return SpecTree(
        "flask",
        title=title,
        version="1",
        # spectree leaves its own path out of the document: it serves a copy there, and
        # the document's address is /api/v1/openapi.json (see openapi()).
        path="api/v1/doc",
        filename="openapi.json",
        mode="strict",
        page_templates={},
        annotations=False,
        validation_error_model=ValidationFailure,
        before=validation_failed,
        security_schemes=security_schemes,
    )


spec = api_spec(
    "Poradovník hub API",
    [SecurityScheme(name="token", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer"))],
)

_RESPONSES_4XX: Final = {"HTTP_400": Error, "HTTP_404": Error, "HTTP_405": Error}


def responses(**codes: type[BaseModel] | None) -> Responses:
    """The documented answers: ``codes`` plus the 4xx every route can give."""
    return Responses(**{**_RESPONSES_4XX, **codes})


def error(status: int, code: str, message: str) -> Response:
    """A JSON error answer."""
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response


@bp.before_request
def _json_object_body() -> Response | None:
    """Let through only requests whose body, if any, is one JSON object (else 400)."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    if not request.is_json:
        return error(400, "invalid", "send the body as JSON (Content-Type: application/json)")
    try:
        body = request.get_json()
    except BadRequest:
        return error(
            400, "invalid", f"the body is not JSON, or nests deeper than {MAX_JSON_DEPTH} levels"
        )
    if not isinstance(body, dict):
        return error(400, "invalid", "the body must be a JSON object")
    return None


def bearer_token() -> ApiToken | None:
    """The API token the request presents (``Authorization: Bearer …``), if it is valid."""
    kind, _, token = request.headers.get("Authorization", "").partition(" ")
    return hub().tokens.find(token.strip()) if kind.lower() == "bearer" else None


def token_required(scope: TokenScope) -> Callable[[F], F]:
    """Let in only requests with a bearer token that has ``scope``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            found = bearer_token()
            if found is None:
                response = error(401, "unauthorized", "a valid bearer token is needed")
                response.headers["WWW-Authenticate"] = 'Bearer realm="poradovnik"'
                return response
            if scope not in found.scopes:
                return error(403, "forbidden", f"the token of {found.name} may not {scope}")
            g.api_client = found.name
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def _ticket_out(ticket_id: str, lang: str) -> TicketOut | None:
    view = ticket_view(hub().queue, ticket_id, lang)
    if view is None:
        return None
    base = hub().settings.web.public_url or request.host_url.rstrip("/")
    return TicketOut(
        id=view.id,
        number=view.number,
        service=view.service,
        service_name=view.service_name,
        state=view.state,
        people_ahead=view.people_ahead,
        estimated_wait_min=view.wait_min,
        counter=view.counter,
        counter_name=view.counter_name,
        issued_at=view.issued_at,
        called_at=view.called_at,
        url=f"{base}/t/{view.id}",
    )


def _refused(exc: QueueError) -> Response:
    status = 404 if exc.code in NOT_FOUND_CODES else 409
    return error(status, exc.code, exc.message)


@bp.get("/services")
@spec.validate(query=LangQuery, resp=responses(HTTP_200=Queue, HTTP_422=ValidationFailure))
def services() -> Queue:
    """The services and their live queues (the same as ``/queue``)."""
    return _queue()


@bp.get("/queue")
@spec.validate(query=LangQuery, resp=responses(HTTP_200=Queue, HTTP_422=ValidationFailure))
def queue() -> Queue:
    """Every service's live queue: waiting, expected wait, counters open."""
    return _queue()


def _queue() -> Queue:
    lang = request.args.get("lang", "sk")
    return Queue(
        [
            ServiceOut(
                code=r.code,
                prefix=r.prefix,
                name=r.name,
                open=r.open,
                cut_off=r.cut_off,
                opens_at=r.opens_at,
                closed_for=r.closed_for,
                hours=r.hours,
                waiting=r.waiting,
                estimated_wait_min=r.wait_min,
                open_counters=r.open_counters,
                issued_today=r.issued_today,
                daily_limit=r.daily_limit,
            )
            for r in queue_rows(hub().queue, lang)
        ]
    )


@bp.get("/closures")
@spec.validate(resp=responses(HTTP_200=Closures))
def closures() -> Closures:
    """The office's closures of today and later (public holidays are not listed)."""
    return Closures(
        [
            ClosureOut(
                id=c.id,
                day=c.day,
                start=c.start,
                end=c.end,
                reason=c.reason,
                services=list(c.services),
            )
            for c in hub().queue.closures()
        ]
    )


@bp.post("/tickets")
@limiter.limit(lambda: hub().settings.web.issue_limit)
@spec.validate(
    json=IssueIn,
    resp=responses(
        HTTP_201=TicketOut,
        HTTP_403=Error,
        HTTP_409=Error,
        HTTP_415=Error,
        HTTP_422=ValidationFailure,
        HTTP_429=Error,
    ),
)
def issue() -> Any:
    """Take a ticket (rate-limited per address); 409 when the service issues none now.

    The 409's code says why: ``service_closed`` (switched off), ``outside_hours``
    (hours, a public holiday or a closure) or ``cut_off`` (those waiting fill the time
    until it closes); its message says when it opens next.

    A ``priority`` needs a token with scope ``counters`` (a clerks' system): anyone
    else gets 403 ``priority_not_allowed``. Kiosks give priority over MQTT.
    """
    body = IssueIn.model_validate(request.get_json(silent=True))
    giver = bearer_token() if body.priority is not None else None
    if body.priority is not None and (giver is None or "counters" not in giver.scopes):
        return error(
            403,
            "priority_not_allowed",
            "only a kiosk or a clerk gives a ticket priority (a token with scope counters)",
        )
    priority = Priority(body.priority) if body.priority else None
    try:
        issued = hub().queue.issue(body.service, priority=priority, lang=body.lang, actor="api")
    except QueueError as exc:
        return _refused(exc)
    out = _ticket_out(issued.ticket.id, body.lang)
    assert out is not None
    return out, 201


@bp.get("/tickets/<ticket_id>")
@spec.validate(
    query=LangQuery,
    resp=responses(HTTP_200=TicketOut, HTTP_422=ValidationFailure),
    path_parameter_descriptions={"ticket_id": "The ticket's id (32 hex digits)"},
)
def ticket(ticket_id: str) -> Any:
    """A ticket's state, position and expected wait."""
    if not TICKET_ID_RE.fullmatch(ticket_id):
        return error(404, "unknown_ticket", "no such ticket")
    out = _ticket_out(ticket_id, request.args.get("lang", "sk"))
    return out if out is not None else error(404, "unknown_ticket", "no such ticket")


@bp.post("/counters/<counter_id>/actions")
@token_required("counters")
@spec.validate(
    json=ActionIn,
    resp=responses(
        HTTP_200=CounterOut,
        HTTP_401=Error,
        HTTP_403=Error,
        HTTP_409=Error,
        HTTP_422=ValidationFailure,
    ),
    security={"token": []},
)
def counter_action(counter_id: str) -> Any:
    """Do a clerk's action at a counter (token scope ``counters``)."""
    body = ActionIn.model_validate(request.get_json(silent=True))
    current = hub()
    try:
        current.queue.counter_action(
            counter_id,
            body.action,
            actor=f"api:{g.api_client}",
            service=body.service,
            ticket_id=body.ticket_id,
        )
    except QueueError as exc:
        return _refused(exc)
    counter = current.queue.counter(counter_id)
    if counter is None:  # removed meanwhile
        return error(404, "unknown_counter", "no such counter")
    ticket = _ticket_out(counter.current, "sk") if counter.current else None
    return CounterOut(id=counter.id, name=counter.name, state=counter.state.value, ticket=ticket)


@bp.post("/eservice/updates")
@token_required("eservice")
@spec.validate(
    json=EServiceUpdate,
    resp=responses(
        HTTP_200=EServiceAck,
        HTTP_401=Error,
        HTTP_403=Error,
        HTTP_409=Error,
        HTTP_422=ValidationFailure,
    ),
    security={"token": []},
)
def eservice_update() -> Any:
    """Report an application's status (token scope ``eservice``; ``system`` is the token's).

    Idempotent by ``msg_id``; an update older than the current status joins the
    timeline without replacing it.
    """
    body = EServiceUpdate.model_validate(request.get_json(silent=True))
    if body.system != g.api_client:
        return error(403, "forbidden", f"this token sends for {g.api_client}, not {body.system}")
    try:
        return hub().eservices.apply(body)
    except EServiceError as exc:
        return error(409, exc.code, exc.message)


@bp.post("/eservice/lookup")
@limiter.shared_limit(lambda: hub().settings.web.lookup_limit, LOOKUP_SCOPE)
@spec.validate(
    json=LookupIn,
    resp=responses(HTTP_200=ApplicationOut, HTTP_422=ValidationFailure, HTTP_429=Error),
)
def eservice_lookup() -> Any:
    """An application's status and timeline, from its reference and PIN (rate-limited).

    A wrong reference and a wrong PIN get the same 404. After a few wrong PINs for a
    reference (from any address), it answers 429 ``too_many_attempts`` for a while,
    whether it exists or not.
    """
    body = LookupIn.model_validate(request.get_json(silent=True))
    try:
        found = lookup_application(body.reference, body.pin)
    except Locked as locked:
        response = error(
            429, "too_many_attempts", "too many wrong PINs for this reference; try again later"
        )
        response.headers["Retry-After"] = str(locked.retry_after_s)
        return response
    if found is None:
        return error(404, "not_found", "no application with this reference and PIN")
    return ApplicationOut(
        reference=found.reference,
        status=found.status,
        status_at=found.status_at,
        department=found.department,
        waiting_position=found.waiting_position,
        steps=[
            StepOut(status=s.status, at=s.at, department=s.department, note=s.note)
            for s in found.steps
        ],
    )


def group_out(group: stats.Group) -> GroupOut:
    """A group of figures as the API gives it."""
    return GroupOut(
        key=group.key,
        tickets=group.tickets,
        served=group.served,
        no_shows=group.no_shows,
        mean_wait_s=group.mean_wait_s,
        mean_service_s=group.mean_service_s,
        within_target_share=group.within_target_share,
        no_show_rate=group.no_show_rate,
    )


def remote_out(remote: stats.RemoteFigures) -> RemoteOut:
    """The remote tickets' figures as the API gives them."""
    return RemoteOut(taken=remote.taken, checked_in=remote.checked_in, expired=remote.expired)


@bp.get("/statistics")
@token_required("statistics")
@spec.validate(
    query=StatisticsQuery,
    resp=responses(
        HTTP_200=StatisticsOut, HTTP_401=Error, HTTP_403=Error, HTTP_422=ValidationFailure
    ),
    security={"token": []},
)
def statistics() -> Any:
    """Waiting and service times per service, counter and hour (token scope ``statistics``)."""
    query = StatisticsQuery.model_validate(request.args.to_dict())
    current = hub()
    today = current.queue.today()
    end = query.end or today
    start = query.start or end - timedelta(days=6)
    figures = current.queue.statistics(
        start, end, target_wait_s=current.settings.web.target_wait_min * 60
    )
    return StatisticsOut(
        start=start,
        end=end,
        target_wait_s=figures.target_wait_s,
        total=group_out(figures.total),
        per_service=[group_out(x) for x in figures.per_service],
        per_counter=[group_out(x) for x in figures.per_counter],
        per_hour=[group_out(x) for x in figures.per_hour],
        appointments=group_out(figures.appointments),
        walk_ins=group_out(figures.walk_ins),
        punctuality=PunctualityOut(
            early=figures.punctuality.early,
            on_time=figures.punctuality.on_time,
            late=figures.punctuality.late,
            mean_offset_s=figures.punctuality.mean_offset_s,
        ),
        booked_no_shows=figures.booked_no_shows,
        booked_no_show_rate=figures.booked_no_show_rate,
        per_priority=[group_out(x) for x in figures.per_priority],
        priority_tickets=figures.priority_tickets,
        remote=remote_out(figures.remote),
    )


def _booking_refused(exc: BookingError) -> Response:
    return error(refusal_status(exc), exc.code, exc.message)


@bp.get("/services/<service>/slots")
@spec.validate(
    query=SlotsQuery,
    resp=responses(HTTP_200=SlotsOut, HTTP_409=Error, HTTP_422=ValidationFailure),
    path_parameter_descriptions={"service": "The service's code"},
)
def service_slots(service: str) -> Any:
    """A day's slots of a service with their free seats (404 when it takes no bookings).

    400 ``out_of_range`` for a day before today or past the service's booking window.
    """
    query = SlotsQuery.model_validate(request.args.to_dict())
    try:
        found = hub().appointments.slots(service, query.day)
    except BookingError as exc:
        return _booking_refused(exc)
    return SlotsOut(
        service=service,
        date=query.day,
        slots=[
            SlotOut(starts_at=s.starts_at, ends_at=s.ends_at, seats=s.seats, free=s.free)
            for s in found
        ],
    )


@bp.post("/appointments")
@limiter.shared_limit(lambda: hub().settings.web.booking_limit, BOOKING_SCOPE)
@spec.validate(
    json=BookIn,
    resp=responses(
        HTTP_201=AppointmentOut,
        HTTP_409=Error,
        HTTP_415=Error,
        HTTP_422=ValidationFailure,
        HTTP_429=Error,
    ),
)
def book_appointment() -> Any:
    """Book a slot at once; the answer's ``code`` is the booking's key (rate-limited).

    400 ``no_such_slot``/``out_of_range``/``invalid``, 404 ``unknown_service``/
    ``not_bookable``, 409 ``slot_full`` or ``too_many_bookings`` (active bookings per
    address and per e-mail address are limited).
    """
    body = BookIn.model_validate(request.get_json(silent=True))
    contact = Contact(body.name, body.email, body.lang)
    try:
        booked = hub().appointments.book(
            body.service, body.starts_at, contact, client=client_address()
        )
    except BookingError as exc:
        return _booking_refused(exc)
    return _appointment_out(booked), 201


@bp.delete("/appointments/<code>")
@limiter.shared_limit(lambda: hub().settings.web.booking_code_limit, CODE_SCOPE)
@spec.validate(
    resp=responses(HTTP_200=AppointmentOut, HTTP_409=Error, HTTP_429=Error),
    path_parameter_descriptions={"code": "The booking code (8 digits)"},
)
def cancel_appointment(code: str) -> Any:
    """Cancel a booking by its code, until the service's deadline (409 ``too_late``)."""
    try:
        cancelled = hub().appointments.cancel(code)
    except BookingError as exc:
        return _booking_refused(exc)
    return _appointment_out(cancelled)


def _appointment_out(found: Appointment) -> AppointmentOut:
    base = hub().settings.web.public_url or request.host_url.rstrip("/")
    return AppointmentOut(
        code=found.code,
        service=found.service,
        starts_at=found.starts_at,
        ends_at=found.ends_at,
        state=found.state.value,
        qr=booking_qr(found.code),
        url=f"{base}/appointment/{found.code}",
    )


def serve_document(blueprint: Blueprint, document: SpecTree) -> None:
    """Serve ``document`` at ``openapi.json`` under ``blueprint`` (endpoint ``openapi``)."""

    def openapi() -> Response:
        """The OpenAPI document of this API, generated from its routes and models."""
        return jsonify(document.spec)

    blueprint.add_url_rule("/openapi.json", "openapi", openapi, methods=["GET"])


serve_document(bp, spec)


def register(app: Flask) -> None:
    """Let the OpenAPI document describe ``app``'s API routes."""
    spec.register(app)


__all__ = ["bp", "register", "spec"]
