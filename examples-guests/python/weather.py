"""The weather actor in Python: the `example:weather/weather` world
(examples-guests/wit/weather/weather.wit), as weather.js is in JavaScript.
It calls a JSON API over `wasi:http/outgoing-handler` through the bindings
componentize-py generates (Python's own sockets and `urllib` have no
network in a component); the actor needs an `http` grant naming the URL.

A request is an `OutgoingRequest` handed to `outgoing_handler.handle`; the
response arrives on a future, read once its pollable is ready. Waiting
suspends the actor without holding a host thread.
"""

import json
import re
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import outgoing_handler, poll, streams, types

# Largest body read at once.
CHUNK = 64 * 1024


def error_name(code: types.ErrorCode) -> str:
    """A `wasi:http` error code by its WIT name: `ErrorCode_HttpRequestDenied`
    is `HTTP-request-denied`, as the Rust SDK and `fetch` name it."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    words = re.findall(r"[A-Z][a-z]*", name)
    return "-".join(w.upper() if w in ("Http", "Dns", "Tls", "Ip") else w.lower() for w in words)


def get(url: str) -> tuple[int, bytes]:
    """`GET url`: the status and the body."""
    parts = urlsplit(url)
    request = types.OutgoingRequest(types.Fields())
    request.set_scheme(types.Scheme_Https() if parts.scheme == "https" else types.Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query(parts.path + ("?" + parts.query if parts.query else "") or "/")
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise Err(error_name(e.value))
    with future:
        with future.subscribe() as ready:
            poll.poll([ready])
        outcome = future.get()
    if outcome is None or isinstance(outcome, Err):
        raise Err("the response was not ready or was taken already")
    if isinstance(outcome.value, Err):
        raise Err(error_name(outcome.value.value))
    with outcome.value.value as response:
        status = response.status()
        with response.consume() as body:
            data = bytearray()
            with body.stream() as stream:
                while True:
                    try:
                        data += stream.blocking_read(CHUNK)
                    except Err as e:
                        if isinstance(e.value, streams.StreamError_Closed):
                            break
                        raise Err(f"reading the body failed: {e.value.value.to_debug_string()}")
    return status, bytes(data)


class Api(exports.Api):
    def temperature(self, url: str) -> str:
        status, body = get(url)
        if status != 200:
            raise Err(f"status {status}")
        try:
            doc = json.loads(body)
        except ValueError:
            raise Err("the document is not JSON")
        if not isinstance(doc.get("temperature"), (int, float)):
            raise Err("no `temperature` number in the document")
        return str(doc["temperature"])
