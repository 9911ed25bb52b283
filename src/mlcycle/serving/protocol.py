"""The HTTP protocol the server runs: uvicorn's (httptools), with a deadline on the request line and
headers.

uvicorn closes a keep-alive connection idle between requests, and the app answers 408 to a body still
incomplete `serve.body_timeout_seconds` after its headers (`guard.py`); but a connection that opens and
sends nothing, or stops in the middle of its headers, reaches neither and stays open for good (a few
hundred of them exhaust the server's descriptors). `HeaderDeadline` arms a timer when a connection opens
and after each answer, disarms it when a request's headers are complete, and on expiry closes the
connection: with a 408 when part of a request had arrived, silently when nothing had (as uvicorn closes an
idle keep-alive connection, so a client reusing it never reads a 408 for a request it sends later). The deadline is `serve.body_timeout_seconds`, read from the settings the server
hands its workers ($MLCYCLE_SERVE_SETTINGS), or `DEFAULT_SECONDS` without them."""

from __future__ import annotations

import json
import logging
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mlcycle.serving.settings import SETTINGS_ENV, Settings

log = logging.getLogger("mlcycle.serve")
DEFAULT_SECONDS = 30.0


def deadline_seconds() -> float:
    text = os.environ.get(SETTINGS_ENV)
    return Settings.from_json(text).body_timeout_seconds if text else DEFAULT_SECONDS


def answer_408(seconds: float) -> bytes:
    body = json.dumps({"error": "request timeout",
                       "detail": f"the request line and headers were not complete {seconds:g} s after the "
                                 "connection opened or the previous answer (serve.body_timeout_seconds); "
                                 "send a request at once"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's line and headers."""

    seconds: float | None = None  # None: `deadline_seconds()` when the first connection opens

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer, self._partial = None, False
        self._arm()

    def on_message_begin(self) -> None:
        self._partial = True  # a request's first byte arrived
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._partial = False
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has the same deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if type(self).seconds is None:
            type(self).seconds = deadline_seconds()
        self._header_timer = self.loop.call_later(type(self).seconds, self._expired)

    def _disarm(self) -> None:
        timer, self._header_timer = getattr(self, "_header_timer", None), None
        if timer is not None:
            timer.cancel()

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # a request is being answered: the app's own deadlines apply
        try:
            if self._partial:
                self.transport.write(answer_408(type(self).seconds))
        finally:
            self.transport.close()
