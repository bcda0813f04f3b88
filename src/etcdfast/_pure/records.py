"""Records built on access (pure-Python twin of ``_fast/records.pyx``).

``GetResult.kvs``, ``DeleteResult.prev_kvs`` and ``WatchResponse.events`` are
:class:`KeyValues` and :class:`Events`: read-only sequences over the decoded
protobuf messages (upb's, which parse in C and make a ``bytes`` only when a
field is read), building a ``KeyValue``/``Event`` tuple when a record is
indexed or iterated. The behaviour is the Cython twin's, which keeps the raw
response bytes instead: see its docstring for the contract.
"""

from __future__ import annotations

from functools import partial
from itertools import repeat
from operator import attrgetter, methodcaller
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union, overload

from ..types import Event, EventType, KeyValue, Records

__all__ = ["KeyValues", "Events"]

_new = tuple.__new__
kv_fields = attrgetter("key", "create_revision", "mod_revision", "version", "value", "lease")
make_kv = partial(_new, KeyValue)


class _EventTypes(Dict[int, Union[EventType, int]]):
    """Known numbers to EventType members; ``__missing__`` keeps any other
    number as it is, as protobuf keeps unknown numbers of an open enum (see
    _pure/watch.py). A dict subclass so that the lookup stays C-level
    ``dict.__getitem__`` for every known type."""

    def __missing__(self, number: int) -> int:
        return number


_event_type = _EventTypes({member.value: member for member in EventType}).__getitem__
_type_of = attrgetter("type")
_kv_of = attrgetter("kv")
_has_prev_kv = methodcaller("HasField", "prev_kv")
_make_event = partial(_new, Event)


def kv_record(message: Any) -> KeyValue:
    """One ``mvccpb.KeyValue`` message as its record."""
    return make_kv(kv_fields(message))


def _prev_kv(message: Any) -> Optional[KeyValue]:
    return kv_record(message.prev_kv) if message.HasField("prev_kv") else None


def _event_record(message: Any) -> Event:
    return _make_event((_event_type(message.type), kv_record(message.kv), _prev_kv(message)))


def _events(messages: Sequence[Any]) -> Iterator[Event]:
    # C-level map/attrgetter passes over the messages: the only Python-level
    # call per event is _prev_kv, and only when some event carries a prev_kv
    # (watches rarely ask for it).
    types = map(_event_type, map(_type_of, messages))
    kvs = map(make_kv, map(kv_fields, map(_kv_of, messages)))
    prevs = map(_prev_kv, messages) if any(map(_has_prev_kv, messages)) else repeat(None)
    return map(_make_event, zip(types, kvs, prevs))


class _Records(Records):
    """What KeyValues and Events share: the messages and the list behaviour."""

    __slots__ = ("_messages",)
    _record: Callable[[Any], Any]
    _records: Callable[[Sequence[Any]], Iterator[Any]]

    def __init__(self, messages: Sequence[Any] = ()) -> None:
        # A upb repeated field (it keeps its message alive) or a list of messages.
        self._messages = messages

    def __len__(self) -> int:
        return len(self._messages)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> List[Any]: ...

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            return list(self._records(self._messages[index]))
        try:
            i = index.__index__()
        except AttributeError:
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, "
                            f"not {type(index).__name__}") from None
        n = len(self._messages)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._one(i)

    def _one(self, i: int) -> Any:
        return self._record(self._messages[i])

    def __iter__(self) -> Iterator[Any]:
        return self._records(self._messages)

    def __reversed__(self) -> Iterator[Any]:
        return self._records(self._messages[::-1])

    def __contains__(self, value: object) -> bool:
        return any(record == value for record in self)

    def index(self, value: Any, start: int = 0, stop: Optional[int] = None) -> int:
        """The first position of ``value`` in ``[start, stop)`` (ValueError if absent), as ``list.index``."""
        for i in range(*slice(start, stop).indices(len(self))):
            if self[i] == value:
                return i
        raise ValueError(f"{value!r} is not in {type(self).__name__}")

    def count(self, value: Any) -> int:
        """How many records equal ``value``, as ``list.count``."""
        return sum(1 for record in self if record == value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (list, Records)):
            return NotImplemented
        return len(other) == len(self) and all(a == b for a, b in zip(self, other))

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # a list's value semantics

    def __add__(self, other: object) -> List[Any]:
        if not isinstance(other, (list, Records)):
            return NotImplemented
        return list(self) + list(other)

    def __radd__(self, other: object) -> List[Any]:
        if not isinstance(other, (list, Records)):
            return NotImplemented
        return list(other) + list(self)

    def __repr__(self) -> str:
        return repr(list(self))

    def __reduce__(self) -> Any:
        # A list of the same records: the messages stay behind.
        return (list, (list(self),))


def _kv_records(messages: Sequence[Any]) -> Iterator[KeyValue]:
    return map(make_kv, map(kv_fields, messages))


class KeyValues(_Records):
    """The ``KeyValue`` records of a range or delete answer, built on access."""

    __slots__ = ()
    _record = staticmethod(kv_record)
    _records = staticmethod(_kv_records)


class Events(_Records):
    """The ``Event`` records of a watch response, built on first access.

    Unlike :class:`KeyValues`, this twin builds all of a response's events at
    once, on the first access, and keeps them: the watch cursor reads every
    event's revision and the consumer then reads every event, and through
    upb's message wrappers each read would cost more than building the record.
    """

    __slots__ = ("_built",)
    _record = staticmethod(_event_record)
    _records = staticmethod(_events)

    def __init__(self, messages: Sequence[Any] = ()) -> None:
        super().__init__(messages)
        self._built: Optional[List[Event]] = None

    def _all(self) -> List[Event]:
        """The events as a list (built once)."""
        if self._built is None:
            self._built = list(_events(self._messages))
        return self._built

    def _one(self, i: int) -> Event:
        return self._all()[i]

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            return self._all()[index]
        return super().__getitem__(index)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._all())

    def __reversed__(self) -> Iterator[Event]:
        return reversed(self._all())
