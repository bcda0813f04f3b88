"""python-etcd3's watch events: :class:`PutEvent` and :class:`DeleteEvent`.

Each holds etcdfast's :class:`etcdfast.Event` fields (``type``, ``kv``,
``prev_kv``, ``key``, ``value``, ``revision``) under python-etcd3's class,
with python-etcd3's attribute names on top: ``create_revision``, ``mod_revision``,
``version``, ``lease`` and ``prev_<field>`` (``prev_value``...; empty or 0
when the watch did not ask for ``prev_kv`` or the key did not exist before,
as protobuf's defaults were).
"""

from __future__ import annotations

from operator import attrgetter, itemgetter
from typing import Any, List, Optional, Sequence, Tuple

from ...types import Event as _NativeEvent
from ...types import EventType, KeyValue

__all__ = ["Event", "PutEvent", "DeleteEvent", "new_event", "new_events"]

_NO_KV = KeyValue(b"", 0, 0, 0, b"", 0)


class Event(Tuple[EventType, KeyValue, Optional[KeyValue]]):
    """A watch event (see the module docstring): ``PutEvent(event)`` re-classes an
    etcdfast :class:`etcdfast.Event` (its ``type``, ``kv``, ``prev_kv``).

    A plain tuple subclass, so that making one is tuple's own ``__new__`` in C
    (a watch re-classes every event it delivers); the fields are read in C too.
    """

    __slots__ = ()

    type = property(itemgetter(0), doc="EventType.PUT or EventType.DELETE.")
    kv = property(itemgetter(1), doc="The key after the change (etcdfast's KeyValue).")
    prev_kv = property(itemgetter(2), doc="The key before the change, if asked for and it existed.")
    key = property(attrgetter("kv.key"), doc="The changed key.")
    value = property(attrgetter("kv.value"), doc="The value written (empty for a delete).")
    revision = property(attrgetter("kv.mod_revision"), doc="The store revision of the change.")
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, value={self.value!r}, revision={self.revision})"


class PutEvent(Event):
    """A key was written."""

    __slots__ = ()


class DeleteEvent(Event):
    """A key was deleted (or expired with its lease)."""

    __slots__ = ()


_type_of = attrgetter("type")


def new_event(event: _NativeEvent) -> Event:
    """python-etcd3's ``new_event``: the PutEvent or DeleteEvent of an etcdfast Event."""
    return DeleteEvent(event) if event.type == EventType.DELETE else PutEvent(event)


def new_events(events: Sequence[_NativeEvent]) -> List[Event]:
    """:func:`new_event` for a whole watch response (one C loop when all are puts)."""
    if any(map(_type_of, events)):  # EventType.DELETE is 1, PUT 0
        return [new_event(e) for e in events]
    return list(map(PutEvent, events))
