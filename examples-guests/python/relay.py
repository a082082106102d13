"""The relay actor in Python: the `example:relay/relay` world
(examples-guests/wit/relay/relay.wit). It talks to other actors through the
`troupe:actor/host` import: messages go out as WAVE text (`incr(5)`),
replies come back as WAVE text (`5`, `ok(5)`).

componentize-py raises `Err(error)` when an imported function returns a
`result` error (here the host's `error` variant, one dataclass per case);
an export returning `result` returns its `ok` value or raises `Err(text)`.
"""

import re
from typing import Callable, List, TypeVar

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

# How long to wait for each answer; 0 would mean the host default (5 s).
ASK_TIMEOUT_MS = 5000

_forwarded = 0

# The WAVE name of each case of the host's `error` variant.
_ERROR_TAGS = {
    types.Error_UnknownAddress: "unknown-address",
    types.Error_MailboxFull: "mailbox-full",
    types.Error_BadMessage: "bad-message",
    types.Error_TooLarge: "too-large",
    types.Error_Timeout: "timeout",
    types.Error_ActorFailed: "actor-failed",
    types.Error_Stopped: "stopped",
    types.Error_Cycle: "cycle",
    types.Error_NameTaken: "name-taken",
    types.Error_UnknownComponent: "unknown-component",
    types.Error_SpawnFailed: "spawn-failed",
    types.Error_QuotaExceeded: "quota-exceeded",
    types.Error_InvalidArgument: "invalid-argument",
}

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "'": "'", "\\": "\\"}


def wave_string(text: str) -> str:
    """`text` as a WAVE string literal."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def parse_wave_string(wave: str) -> str | None:
    """The text of a WAVE string literal, or None if `wave` is not one."""
    if len(wave) < 2 or not (wave.startswith('"') and wave.endswith('"')):
        return None
    out, i, body = [], 0, wave[1:-1]
    while i < len(body):
        if body[i] != "\\":
            out.append(body[i])
        elif body[i + 1] == "u":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3 : end], 16)))
            i = end
        else:
            out.append(_UNESCAPES[body[i + 1]])
            i += 1
        i += 1
    return "".join(out)


def wave_error(error: types.Error) -> str:
    """The host's `error` variant in WAVE, e.g. `unknown-address("nobody")`."""
    tag = _ERROR_TAGS[type(error)]
    if isinstance(error, types.Error_Timeout):
        return tag
    if isinstance(error, types.Error_TooLarge):
        return f"{tag}({error.value})"
    if isinstance(error, types.Error_Cycle):
        return f"{tag}([{', '.join(map(wave_string, error.value))}])"
    return f"{tag}({wave_string(error.value)})"


T = TypeVar("T")


def host_call(verb: str, to: str, call: Callable[[], T]) -> T:
    """Runs a host call; a host error becomes the relay's error text."""
    global _forwarded
    try:
        result = call()
    except Err as e:
        raise Err(f"{verb} `{to}` failed: {wave_error(e.value)}")
    _forwarded += 1
    return result


_NUMBER = re.compile(r"([0-9]+)|ok\(([0-9]+)\)")


def ask_u64(to: str, message: str) -> int:
    """Asks `to` with `message` and returns the answer as a u64."""
    host.log(types.Level.DEBUG, "relay (python) asks", [("to", to), ("message", message)])
    reply = host_call("ask", to, lambda: host.ask(to, message, ASK_TIMEOUT_MS))
    # A counter answers `5`; a relay answers `ok(5)` or `err("why")`.
    number = _NUMBER.fullmatch(reply)
    if number:
        return int(number[1] or number[2])
    if reply.startswith("err(") and reply.endswith(")"):
        why = parse_wave_string(reply[4:-1])
        if why is not None:
            raise Err(why)
    raise Err(f"ask `{to}` answered `{reply}`, not a u64")


class Api(exports.Api):
    def forward(self, to: str, by: int) -> int:
        return ask_u64(to, f"incr({by})")

    def route(self, hops: List[str], by: int) -> int:
        if not hops:
            raise Err("no hops")
        rest = hops[1:]
        message = f"route([{', '.join(map(wave_string, rest))}], {by})" if rest else f"incr({by})"
        return ask_u64(hops[0], message)

    def notify(self, to: str, by: int) -> None:
        host_call("tell", to, lambda: host.tell(to, f"incr({by})"))

    def forwarded(self) -> int:
        return _forwarded

    def crash(self, reason: str) -> None:
        raise RuntimeError(reason)
