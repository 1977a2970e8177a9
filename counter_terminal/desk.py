"""What a clerk's presses mean at one counter, and what its panel shows.

:class:`CounterDesk` turns the panel's gestures into counter commands and the hub's
retained state into lights and display lines. The rules a clerk relies on live here:

- **Next is never doubled by accident.** A Next while the previous one is still
  unanswered, or within ``[counter] next_guard_s`` of it, is refused on the panel (a
  long beep, a red flash) and never sent: two Nexts would finish the citizen just
  called before they reach the counter.
- **Transfer by repeated or long press.** Each short press of Transfer picks the next
  service (sorted by ticket prefix, without the ticket's own service), shown on the
  display and by as many flashes of the yellow light; holding Transfer sends the
  citizen to the picked service. A pick is forgotten after ``transfer_choice_s``.
- **Pause/Resume toggles**, from the counter's state as the hub last told it, and from
  the presses not yet answered.
- **Lights.** Green: open and free (blinking slowly while paused); yellow: a citizen
  is called or served; red: the hub or the broker is unreachable (and presses wait
  in the outbox). A command the hub refuses gives three beeps and three red flashes,
  and is logged with the hub's reason.
- **An appointment is marked.** A citizen who checked in with a booking shows with a
  mark after the number on the display (``A001 Booked``), so the clerk knows the visit
  was booked; a remote ticket (taken on the portal) shows ``A001 Remote``; a ticket with
  priority has a » before its number (``»A001``), as on the lobby's screens, never why.
- **The citizen rates the visit.** The optional rating buttons (good, neutral, bad)
  send a 5, 3 or 1 for the visit just finished at the counter; the hub picks the
  ticket and takes one rating per visit. The display thanks (``Rated A001: 5/5``) or
  says it was already rated.
- **A press is of its day.** Each command carries the hub's business day from the
  counter's last retained state; a press that waited in the outbox past the end of
  that day is refused by the hub (``stale_day``), and the display says so.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.counter_settings import RATING_BUTTONS, CounterSettings
from common.i18n import messages, service_name
from counter_terminal.gestures import Event, Gesture
from counter_terminal.hardware import LightMode
from counter_terminal.panel import CounterPanel, PanelView
from sync_agent import protocol as p

__all__ = ["CounterDesk", "Office"]

log = logging.getLogger(__name__)

ACTIONS: dict[str, p.CounterAction] = {
    "next": "next",
    "recall": "recall",
    "no_show": "no_show",
    "done": "done",
    "park": "park",
}
"""Buttons that send one command as they are pressed."""


@dataclass
class Office:
    """What every counter of this panel knows of the office: the link and the queues."""

    connected: bool = False
    """Whether the broker is connected."""
    hub_online: bool = False
    """Whether the hub's retained status says ``online``."""
    queues: dict[str, p.QueueState] = field(default_factory=dict)
    """The retained state of each service's queue, by service code."""

    @property
    def online(self) -> bool:
        """Whether presses reach the hub now."""
        return self.connected and self.hub_online

    def services(self) -> list[p.QueueState]:
        """The office's services, by ticket prefix."""
        return sorted(self.queues.values(), key=lambda q: (q.prefix, q.service))


Outgoing = p.CounterCommand | p.CounterRating
"""What a counter's presses send to the hub."""

Send = Callable[[str, Outgoing], None]
"""Queue a command (or rating) of a counter in the outbox: ``send(counter, command)``."""

RATING = "rating"
"""How a pending rating is noted among the pending commands' actions."""

PRIORITY_MARK = "»"
"""Before the number of a ticket with priority, as the lobby's screens mark it (an A02
LCD has it in its ROM, an A00 one draws it: :data:`counter_terminal.charset.GLYPHS`)."""


class CounterDesk:
    """One counter: its panel, its last known state, and the commands its presses send.

    ``send`` puts a command in the durable outbox; ``office`` is shared by the counters
    of one terminal; ``lang`` picks the display's texts; ``clock`` is monotonic seconds.
    :meth:`on_event` is the panel's buttons callback; :meth:`on_state`,
    :meth:`on_reply` and :meth:`refresh` come from the link's threads.
    """

    def __init__(
        self,
        panel: CounterPanel,
        *,
        config: CounterSettings,
        office: Office,
        send: Send,
        lang: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counter = panel.counter
        self.panel = panel
        self.config = config
        self.office = office
        self.state: p.CounterState | None = None
        """The counter's retained state, as the hub last published it."""
        self.changed = threading.Condition()
        """Notified after every change of :attr:`state` or of the pending commands."""
        self._send = send
        self._texts = messages("counter_terminal", lang)
        self._lang = lang
        self._clock = clock
        self._pending: dict[str, str] = {}
        """The action (or :data:`RATING`) of each command not yet answered, by msg_id."""
        self._outgoing: list[Outgoing] = []
        self._last_next: float | None = None
        self._expect_paused: bool | None = None
        self._choice: str | None = None
        self._choice_timer: threading.Timer | None = None
        self._notice: str | None = None
        self.gestures = 0
        """Gestures handled so far (a simulated clerk waits for its press to count)."""

    # -- the clerk ---------------------------------------------------------------------

    def on_event(self, button: str, event: Event) -> None:
        """A gesture on the panel's button ``button``."""
        with self.changed:
            self._notice = None
            if button == "transfer":
                self._transfer(event)
            elif button == "pause":
                self._toggle_pause()
            elif button == "next":
                self._next()
            elif button in ACTIONS:
                self._command(ACTIONS[button])
            elif button in RATING_BUTTONS:
                self._rate(RATING_BUTTONS[button])
            outgoing, self._outgoing = self._outgoing, []
            self._show()
        # Queued outside the lock: the outbox's synced write must not hold up the
        # network thread, which takes the lock to show what the hub says.
        for command in outgoing:
            self._queue(command)
        with self.changed:
            self.gestures += 1
            self.changed.notify_all()

    def _next(self) -> None:
        now = self._clock()
        unanswered = "next" in self._pending.values()
        recent = self._last_next is not None and now - self._last_next < self.config.next_guard_s
        if unanswered or recent:
            why = "the previous one is not answered yet" if unanswered else "pressed too soon"
            log.info("counter %s: a second Next refused: %s", self.counter, why)
            self._notice = self._texts.text("wait")
            self.panel.refused()
            return
        self._last_next = now
        self._command("next")

    def _toggle_pause(self) -> None:
        paused = self._expect_paused
        if paused is None:
            paused = self.state is not None and self.state.state == "paused"
        self._expect_paused = not paused
        self._command("resume" if paused else "pause")

    def _transfer(self, event: Event) -> None:
        ticket = self.state.ticket if self.state is not None else None
        if ticket is None:
            log.info("counter %s: Transfer with no citizen at the counter", self.counter)
            self.panel.refused()
            return
        targets = [q.service for q in self.office.services() if q.service != ticket.service]
        if event.gesture is Gesture.LONG:
            if self._choice not in targets:
                log.info("counter %s: Transfer held without a service picked", self.counter)
                self.panel.refused()
                return
            self._command("transfer", service=self._choice)
            self._forget_choice()
            return
        if not targets:
            self.panel.refused()
            return
        at = targets.index(self._choice) + 1 if self._choice in targets else 0
        self._choice = targets[at % len(targets)]
        self.panel.choice(at % len(targets) + 1)
        if self._choice_timer is not None:
            self._choice_timer.cancel()
        self._choice_timer = threading.Timer(self.config.transfer_choice_s, self._choice_expired)
        self._choice_timer.daemon = True
        self._choice_timer.start()

    def _choice_expired(self) -> None:
        with self.changed:
            if self._choice_timer is threading.current_thread():
                self._choice = None
                self._choice_timer = None
                self._show()

    def _forget_choice(self) -> None:
        self._choice = None
        if self._choice_timer is not None:
            self._choice_timer.cancel()
            self._choice_timer = None

    def _command(self, action: p.CounterAction, *, service: str | None = None) -> None:
        """Decide to send ``action``: noted as pending now, queued once the lock is let go."""
        command = p.CounterCommand(
            msg_id=uuid.uuid4().hex,
            action=action,
            service=service,
            sent_at=datetime.now(UTC),
            business_day=self.state.business_day if self.state is not None else None,
        )
        # Noted before it is queued: its answer can come before send() returns.
        self._pending[command.msg_id] = action
        self._outgoing.append(command)

    def _rate(self, rating: int) -> None:
        """Decide to send the citizen's ``rating`` of the visit just finished here."""
        message = p.CounterRating(msg_id=uuid.uuid4().hex, rating=rating, sent_at=datetime.now(UTC))
        self._pending[message.msg_id] = RATING
        self._outgoing.append(message)

    def _queue(self, command: Outgoing) -> None:
        if isinstance(command, p.CounterRating):
            action, service = f"rating {command.rating}", None
        else:
            action, service = command.action, command.service
        try:
            self._send(self.counter, command)
        except Exception:
            log.exception("counter %s: could not queue %s", self.counter, action)
            with self.changed:
                self._pending.pop(command.msg_id, None)
                self.panel.failed()
                self._show()
            return
        log.info("counter %s: %s%s", self.counter, action, f" to {service}" if service else "")

    # -- the hub -----------------------------------------------------------------------

    def on_state(self, state: p.CounterState) -> None:
        """The hub published the counter's state."""
        with self.changed:
            self.state = state
            if not {"pause", "resume"} & set(self._pending.values()):
                self._expect_paused = None
            if state.ticket is None:
                self._forget_choice()
            self._show()
            self.changed.notify_all()

    def on_reply(self, msg_id: str, reply: p.ErrorReply | p.CommandReply | p.RatingReply) -> bool:
        """The hub answered a command; ``False`` if it was not one of this desk's."""
        with self.changed:
            action = self._pending.pop(msg_id, None)
            if action is None:
                return False
            if isinstance(reply, p.RatingReply):
                log.info("counter %s: %s rated %d", self.counter, reply.rated, reply.rating)
                self._notice = self._texts.text("rated", number=reply.rated, rating=reply.rating)
            elif action == RATING and isinstance(reply, p.ErrorReply):
                log.info("counter %s: rating refused: %s", self.counter, reply.error.message)
                known = reply.error.code == "already_rated"
                self._notice = self._texts.text("rated_already" if known else "refused")
                self.panel.refused()
            elif isinstance(reply, p.ErrorReply):
                log.warning(
                    "counter %s: the hub refused %s: %s (%s)",
                    self.counter,
                    action,
                    reply.error.message,
                    reply.error.code,
                )
                if action in ("pause", "resume"):
                    self._expect_paused = None
                stale = reply.error.code == "stale_day"
                self._notice = self._texts.text("stale" if stale else "refused")
                self.panel.failed()
            elif self.state is not None:
                # The reply is the newest word on the counter (the retained state is not
                # republished for a recall, whose count the display shows).
                self.state = self.state.model_copy(
                    update={"state": reply.state, "ticket": reply.ticket}
                )
            self._show()
            self.changed.notify_all()
            return True

    def start(self) -> None:
        """Show the state known so far and start taking presses."""
        self.refresh()
        self.panel.start(self.on_event)

    def refresh(self) -> None:
        """Show again what the office's state (link, queues) means for this counter."""
        with self.changed:
            self._show()
            self.changed.notify_all()

    @property
    def pending(self) -> int:
        """Commands of this counter not yet answered by the hub."""
        with self.changed:
            return len(self._pending)

    # -- the panel ---------------------------------------------------------------------

    def view(self) -> PanelView:
        """What the panel should show now."""
        state, texts = self.state, self._texts
        ticket = state.ticket if state is not None else None
        paused = state is not None and state.state == "paused"
        if state is None or ticket is not None:
            ready = LightMode.OFF
        else:
            ready = LightMode.BLINK if paused else LightMode.ON
        if ticket is not None:
            mark = PRIORITY_MARK if ticket.priority else ""
            first = mark + ticket.number + (f" ({ticket.calls}x)" if ticket.calls > 1 else "")
            if ticket.appointment_at is not None:
                first += " " + texts.text("booked")
            elif ticket.remote:
                first += " " + texts.text("remote")
        elif state is None:
            first = "-"
        else:
            first = texts.text("paused") if paused else texts.text("free")
        if self._choice is not None:
            second = texts.text("transfer", service=self._service_name(self._choice))
        elif self._notice is not None:
            second = self._notice
        elif not self.office.online:
            second = texts.text("offline")
        else:
            second = texts.text("waiting", count=self._waiting())
        return PanelView(
            ready=ready,
            serving=LightMode.ON if ticket is not None else LightMode.OFF,
            offline=LightMode.OFF if self.office.online else LightMode.ON,
            lines=(first, second),
        )

    def _waiting(self) -> int:
        services = self.state.services if self.state is not None else []
        return sum(q.waiting for s in services if (q := self.office.queues.get(s)) is not None)

    def _service_name(self, service: str) -> str:
        queue = self.office.queues.get(service)
        if queue is None:
            return service
        return service_name(queue.names, self._lang, service)

    def _show(self) -> None:
        self.panel.show(self.view())

    def close(self) -> None:
        """Stop the transfer pick's timer and release the panel."""
        with self.changed:
            self._forget_choice()
        self.panel.close()
