"""The real web server: uvicorn, the worker pool and the live pages' event streams."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from edge_helpers import Stream

from common.settings import Settings
from hub.app import serve_web
from hub.service import QueueService
from hub.web.server import WebServer

WAIT_S = 10.0  # an upper bound for waiting, never a pause


@contextmanager
def streams(port: int, count: int) -> Iterator[list[Stream]]:
    with ExitStack() as stack:
        opened = []
        for _ in range(count):
            stream = Stream(port)
            stack.callback(stream.close)
            opened.append(stream)
        yield opened


def get(port: int, path: str) -> tuple[int, bytes, dict[str, str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=WAIT_S) as answer:
        return answer.status, answer.read(), dict(answer.headers)


def test_a_live_page_hears_of_every_queue_change(
    web_server: WebServer, web_queue: QueueService
) -> None:
    stream = Stream(web_server.port)
    try:
        assert stream.status == 200
        assert "text/event-stream" in stream.headers
        assert "content-security-policy" in stream.headers
        first = stream.version()
        web_queue.issue("taxes")
        assert stream.version() > first
    finally:
        stream.close()


def test_many_open_live_pages_leave_the_pages_their_threads(
    web_server: WebServer, web_queue: QueueService
) -> None:
    # Eight worker threads serve the pages; 60 open streams hold none of them.
    with streams(web_server.port, 60) as open_pages:
        for stream in open_pages:
            stream.version()
        status, body, headers = get(web_server.port, "/?lang=en")
        assert status == 200
        assert b"Local taxes" in body
        assert "content-security-policy" in {k.lower() for k in headers}
        web_queue.issue("waste")
        versions = {stream.version() for stream in open_pages}
        assert len(versions) == 1  # every page heard of the same change


def test_live_pages_beyond_the_limit_are_turned_away(
    tmp_path: object, web_settings: Settings, web_queue: QueueService
) -> None:
    settings = web_settings.model_copy(
        update={"web": web_settings.web.model_copy(update={"live_max_clients": 2})}
    )
    server = serve_web(settings, web_queue, port=0)
    try:
        with streams(server.port, 2) as admitted:
            for stream in admitted:
                stream.version()
            refused = Stream(server.port)
            assert refused.status == 503
            refused.close()
        # The pages themselves are not limited.
        assert get(server.port, "/healthz")[0] == 200
    finally:
        server.stop()


def test_replayed_pages_follow_the_queue_and_keep_their_headers(
    web_server: WebServer, web_queue: QueueService
) -> None:
    def count(path: str) -> tuple[bytes, dict[str, str]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{web_server.port}{path}", headers={"Accept-Language": "en"}
        )
        with urllib.request.urlopen(request, timeout=WAIT_S) as answer:
            body = answer.read()
            headers = {k.lower(): v for k, v in answer.headers.items()}
        return body, headers

    first, headers = count("/queue/fragment")
    again, replayed = count("/queue/fragment")
    assert again == first
    assert b'<strong class="count">0</strong>' in first
    for seen in (headers, replayed):
        assert "content-security-policy" in seen
        assert "x-poradovnik-cacheable" not in seen
    web_queue.issue("taxes")
    after, _ = count("/queue/fragment")
    assert b'<strong class="count">1</strong>' in after
