"""python-etcd3's watch events: :class:`PutEvent` and :class:`DeleteEvent`.

Each is etcdfast's :class:`etcdfast.Event` record (``type``, ``kv``,
``prev_kv``, ``key``, ``value``, ``revision``) under python-etcd3's class,
with its attribute names on top: ``create_revision``, ``mod_revision``,
``version``, ``lease`` and ``prev_<field>`` (``prev_value``...; empty or 0
when the watch did not ask for ``prev_kv`` or the key did not exist before,
as protobuf's defaults were).
"""

from __future__ import annotations

import functools
from operator import attrgetter
from typing import Any, Callable, List, Sequence

from ...types import Event as _NativeEvent
from ...types import EventType, KeyValue

__all__ = ["Event", "PutEvent", "DeleteEvent", "new_event", "new_events"]

_NO_KV = KeyValue(b"", 0, 0, 0, b"", 0)


class Event(_NativeEvent):
    """A watch event (see the module docstring)."""

    __slots__ = ()

    # C-level lookups (attrgetter), as etcdfast's Event does for key/value.
    create_revision = property(attrgetter("kv.create_revision"), doc="The key's create revision.")
    mod_revision = property(attrgetter("kv.mod_revision"), doc="The revision of this change.")
    version = property(attrgetter("kv.version"), doc="The key's version after this change (0: deleted).")
    lease = property(attrgetter("kv.lease"), doc="The lease the key is attached to (0: none).")

    def __getattr__(self, name: str) -> Any:
        # python-etcd3 forwarded prev_<field> to the event's prev_kv.
        if name.startswith("prev_"):
            return getattr(self.prev_kv or _NO_KV, name[5:])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __str__(self) -> str:
        return f"{type(self)} key={self.key!r} value={self.value!r}"


class PutEvent(Event):
    """A key was written."""

    __slots__ = ()


class DeleteEvent(Event):
    """A key was deleted (or expired with its lease)."""

    __slots__ = ()


# tuple.__new__ copies the native record's three fields into the subclass in
# C: the cheapest way to re-class ~100k events a second.
_as_put: Callable[[_NativeEvent], PutEvent] = functools.partial(tuple.__new__, PutEvent)
_as_delete: Callable[[_NativeEvent], DeleteEvent] = functools.partial(tuple.__new__, DeleteEvent)
_type_of = attrgetter("type")


def new_event(event: _NativeEvent) -> Event:
    """python-etcd3's ``new_event``: the PutEvent or DeleteEvent of an etcdfast Event."""
    return _as_delete(event) if event.type == EventType.DELETE else _as_put(event)


def new_events(events: Sequence[_NativeEvent]) -> List[Event]:
    """:func:`new_event` for a whole watch response (one C loop when all are puts)."""
    if any(map(_type_of, events)):  # EventType.DELETE is 1, PUT 0
        return [new_event(e) for e in events]
    return list(map(_as_put, events))
