"""The ASGI middleware in front of the app (`Guard`): the bearer token checked before any body is
read (401), bodies over the size limit refused with a JSON 413 before they are read (a body sent
in chunks is not read beyond the limit), a body still incomplete `body_timeout` seconds after the
headers answered 408 with the connection closed (a client that stalls holds no connection), and
every HTTP request counted and timed by endpoint and status."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid

from mlcycle.core.errors import ClientError
from mlcycle.serving.metrics import Metrics

ENDPOINTS = {"/predict", "/feedback", "/health", "/ready", "/model", "/metrics", "/docs", "/openapi.json", "/redoc"}
PROTECTED = ("/predict", "/feedback")  # POST routes needing the token (a task's own route is added)


class Guard:
    """ASGI middleware: refuses a POST /predict without the token (401) and bodies over `max_body`
    bytes (413) with a JSON body before they are read, and counts and times every HTTP request by
    endpoint and status."""

    def __init__(self, app, metrics: Metrics, max_body: int, token: str | None = None,
                 routes: tuple[str, ...] = (), body_timeout: float = 30.0):
        """`routes`: a task's own routes (e.g. /recommend), counted by name; a POST to one needs the
        token here (a GET route checks it in its dependency: it has no body to hold off)."""
        self.app, self.metrics, self.max_body, self.token = app, metrics, max_body, token
        self.endpoints, self.protected = ENDPOINTS | set(routes), (*PROTECTED, *routes)
        self.body_timeout = body_timeout

    def authorized(self, scope) -> bool:
        """No token set, or `Authorization: Bearer <token>` matches (checked before any body is read)."""
        if self.token is None or scope.get("path") not in self.protected or scope.get("method") != "POST":
            return True
        header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), b"")
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token.encode())

    @staticmethod
    async def refuse(send, err: ClientError, headers: tuple = ()) -> None:
        rid = uuid.uuid4().hex
        body = json.dumps(err.body(rid)).encode()
        await send({"type": "http.response.start", "status": err.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"x-request-id", rid.encode()), (b"connection", b"close"), *headers]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.exceptions import HTTPException

        path = scope.get("path", "")
        endpoint = path if path in self.endpoints else "other"
        status = [500]
        labels = ["", ""]  # the answering version and route, from the response's headers
        start = time.perf_counter()
        done = [False]

        def observe() -> None:
            """Count and time the request once: when its last body part is sent (a shadow scoring
            that runs after the answer is not the caller's latency), else when the app returns."""
            if not done[0]:
                done[0] = True
                self.metrics.latency.labels(endpoint, *labels).observe(time.perf_counter() - start)
                self.metrics.requests.labels(endpoint, str(status[0]), *labels).inc()

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                for k, v in message.get("headers", ()):
                    if k == b"x-model-version":
                        labels[0] = v.decode()
                    elif k == b"x-route":
                        labels[1] = v.decode()
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                observe()

        size = [0]
        deadline = time.monotonic() + self.body_timeout
        complete = [False]

        async def receiving():
            if complete[0]:  # the body is read: what follows is a wait for the client's disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise HTTPException(408, f"the request body was not complete {self.body_timeout:g} s after its "
                                    "headers (serve.body_timeout_seconds); send it at once",
                                    headers={"connection": "close"}) from None
            if message["type"] == "http.request":
                size[0] += len(message.get("body", b""))
                if size[0] > self.max_body:  # a body sent without Content-Length: not read further
                    raise HTTPException(413, headers={"connection": "close"})
                complete[0] = not message.get("more_body", False)
            else:
                complete[0] = True
            return message

        try:
            if not self.authorized(scope):
                return await self.refuse(sending, ClientError(
                    401, "unauthorized", "Authorization", "send the header 'Authorization: Bearer <token>' with the "
                    "server's token"), ((b"www-authenticate", b"Bearer"),))
            length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
            if length is not None and length.isdigit() and int(length) > self.max_body:
                err = ClientError(413, "body too large", "body", f"the body is larger than {self.max_body} bytes")
                body = json.dumps(err.body(uuid.uuid4().hex)).encode()
                await sending({"type": "http.response.start", "status": 413,
                               "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                           (b"connection", b"close")]})
                await sending({"type": "http.response.body", "body": body})
                return
            await self.app(scope, receiving, sending)
        finally:
            observe()
