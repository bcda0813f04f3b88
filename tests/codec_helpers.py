"""Helpers shared by the codec tests (test_codec_*.py): comparing the twins."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from hypothesis import strategies as st

from etcdfast.types import Records


def same(a: Any, b: Any) -> bool:
    """Equal values *and* equal types all the way down (tuples compare loosely).

    The twins' record sequences (``KeyValues``, ``Events``) are each twin's own
    class: two of them must have the same name; against a list (an expected
    value built by a test) they count as the list of their records.
    """
    if isinstance(a, Records) and isinstance(b, Records) and type(a).__name__ != type(b).__name__:
        return False
    if isinstance(a, Records):
        a = list(a)
    if isinstance(b, Records):
        b = list(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def outcome(function: Callable[..., Any], *args: Any) -> Any:
    """The result of a call, or the type of what it raised."""
    try:
        return function(*args)
    except Exception as exc:  # the exception type is part of the contract
        return type(exc)


def agree(twins: Any, module: str, function: str, data: bytes) -> Any:
    """Both twins' ``module.function(data)`` give the same result or raise the same type."""
    fast = outcome(getattr(getattr(twins.fast, module), function), data)
    pure = outcome(getattr(getattr(twins.pure, module), function), data)
    assert same(fast, pure), (function, data.hex(), fast, pure)
    return pure


def mutated(samples: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """One of ``samples`` with a few bytes flipped, inserted or removed."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(samples)))
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            action = draw(st.integers(min_value=0, max_value=2))
            at = draw(st.integers(min_value=0, max_value=len(data)))
            if action == 0 and at < len(data):
                data[at] = draw(st.integers(min_value=0, max_value=255))
            elif action == 1:
                data[at:at] = draw(st.binary(min_size=1, max_size=3))
            elif at < len(data):
                del data[at]
        return bytes(data)

    return build()


def varint(n: int) -> bytes:
    """Unsigned LEB128, for hand-made wire bytes."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)
