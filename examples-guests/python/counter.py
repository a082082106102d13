"""The counter actor in Python: the `example:counter/counter` world
(examples-guests/wit/counter/counter.wit), behaving exactly like the Rust
counter, snapshot encoding included, so that either can replace the other.

componentize-py calls the class named after each exported interface (`Api`,
`Lifecycle`, `Persistence`); a `result<_, string>` is "return normally, or
raise `Err(text)`"; any other exception is a trap.
"""

import json
from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

# The snapshot format version this code writes and reads.
STATE_VERSION = "counter/1"
U64_MAX = 2**64 - 1

_value = 0


class Api(exports.Api):
    def incr(self, by: int) -> int:
        global _value
        # Python integers do not overflow: check, and trap like the Rust
        # counter does (an uncaught exception in a function without a
        # `result` is a trap, and the actor restarts).
        if _value + by > U64_MAX:
            raise OverflowError("counter overflow")
        _value += by
        return _value

    def get(self) -> int:
        return _value

    def reset(self) -> None:
        global _value
        _value = 0


def parse_u64(text: str) -> int:
    """Parses a u64 as Rust's `u64::from_str` does, with its error messages,
    so that a bad `start` reads the same in every language."""
    if text == "":
        raise ValueError("cannot parse integer from empty string")
    digits = text[1:] if text.startswith("+") else text
    if digits == "":
        raise ValueError("invalid digit found in string")
    # Digit by digit: int() would also take whitespace, underscores and signs.
    n = 0
    for ch in digits:
        if not "0" <= ch <= "9":
            raise ValueError("invalid digit found in string")
        n = n * 10 + ord(ch) - ord("0")
        if n > U64_MAX:
            raise ValueError("number too large to fit in target type")
    return n


class Lifecycle(exports.Lifecycle):
    def init(self, config: List[Tuple[str, str]]) -> None:
        global _value
        _value = 0
        start = next((v for k, v in config if k == "start"), None)
        if start is not None:
            try:
                _value = parse_u64(start)
            except ValueError as why:
                raise Err(f"config `start` = {json.dumps(start, ensure_ascii=False)}: {why}")
        host.log(types.Level.DEBUG, "counter (python) started", [("start", str(_value))])


class Persistence(exports.Persistence):
    def snapshot(self) -> types.State:
        return types.State(version=STATE_VERSION, bytes=_value.to_bytes(8, "little"))

    def restore(self, state: types.State) -> None:
        global _value
        if state.version != STATE_VERSION:
            raise Err(f"unknown state version `{state.version}` (expected `{STATE_VERSION}`)")
        if len(state.bytes) != 8:
            raise Err(f"state has {len(state.bytes)} bytes, expected 8")
        _value = int.from_bytes(state.bytes, "little")
