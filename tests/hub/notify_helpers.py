"""Local stand-ins for a push service and an SMS gateway, and a browser's push keys.

:class:`Endpoint` is a real HTTP server on a free port of 127.0.0.1 that keeps each
request and answers with the statuses it is told to (then 201). A push request is
checked as a push service would: :func:`open_push` verifies the VAPID signature (an
ES256 JWT) against the hub's public key and decrypts the aes128gcm body with the
subscription's private key.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from hub.broker import free_port

WAIT_S = 10.0


def b64url(raw: bytes) -> str:
    """``raw`` in unpadded base64url, as Web Push spells keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """The bytes of unpadded base64url ``text``."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Request:
    """One request an :class:`Endpoint` received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


@dataclass
class Endpoint:
    """A local HTTP server; ``answers`` are the next statuses to give (then 201).

    A request arriving while ``holds`` has events waits, once it is read, until the
    first of them is set (noted in ``holding``), then is answered and kept as usual.
    """

    port: int = 0
    answers: list[int] = field(default_factory=list)
    received: queue.Queue[Request] = field(default_factory=queue.Queue)
    lock: threading.Lock = field(default_factory=threading.Lock)
    holds: list[threading.Event] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/") -> str:
        """The address of ``path`` here."""
        return f"http://127.0.0.1:{self.port}{path}"

    def next(self) -> Request:
        """The next request received (waits for it)."""
        return self.received.get(timeout=WAIT_S)

    def answer(self) -> int:
        """The status for the request now arriving (after its hold, if it has one)."""
        with self.lock:
            release = self.holds.pop(0) if self.holds else None
        if release is not None:
            self.holding.set()
            release.wait(WAIT_S)
        with self.lock:
            return self.answers.pop(0) if self.answers else 201


@contextmanager
def endpoint() -> Iterator[Endpoint]:
    """A running :class:`Endpoint`."""
    here = Endpoint(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status = here.answer()
            if status < 300:
                here.received.put(
                    Request(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_GET = _handle

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", here.port), Handler)
    server.daemon_threads = True
    # It looks for the shutdown every 50 ms (not every 0.5 s): each test ends sooner.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield here
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Browser:
    """A browser's push subscription: its keys, as the browser makes them."""

    key: ec.EllipticCurvePrivateKey
    auth: bytes
    endpoint: str

    @classmethod
    def make(cls, push_service: Endpoint) -> Browser:
        """A new subscription at ``push_service``."""
        return cls(
            ec.generate_private_key(ec.SECP256R1()),
            os.urandom(16),
            push_service.url(f"/push/{b64url(os.urandom(12))}"),
        )

    def subscription(self) -> str:
        """The subscription's JSON, as ``PushSubscription.toJSON()`` gives it."""
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {"p256dh": b64url(public), "auth": b64url(self.auth)}
        return json.dumps({"endpoint": self.endpoint, "expirationTime": None, "keys": keys})


def open_push(request: Request, browser: Browser, server_key: str) -> dict[str, Any]:
    """The payload of a push ``request`` to ``browser``, after checking it as a push service.

    The VAPID header must carry the hub's public key ``server_key`` and an ES256 JWT it
    signed, for this endpoint's origin and not expired; the body must decrypt
    (aes128gcm) with the browser's keys.
    """
    scheme, _, params = request.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(item.split("=", 1) for item in params.split(","))
    assert parts["k"] == server_key
    header, claims, signature = parts["t"].split(".")
    assert json.loads(unb64url(header)) == {"typ": "JWT", "alg": "ES256"}
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
    raw = unb64url(signature)
    der = utils.encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    try:
        public.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AssertionError("the VAPID signature does not verify") from None
    claim = json.loads(unb64url(claims))
    assert claim["aud"] == browser.endpoint.split("/push/")[0]
    assert claim["exp"] > time.time()
    assert claim["sub"].startswith("mailto:")
    assert request.headers["content-encoding"] == "aes128gcm"
    plain = http_ece.decrypt(
        request.body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
    )
    payload: dict[str, Any] = json.loads(plain)
    return payload


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Wait until ``condition()`` holds; AssertionError after ``timeout``."""
    done = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        done.wait(0.02)
