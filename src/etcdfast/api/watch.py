"""What to watch: the options of ``client.watch``, validated once for both clients.

A watch is not a unary call, so there is no Request here: :func:`watch_spec`
turns the caller's options into a :class:`WatchSpec` of wire values, which the
watch hub (``etcdfast._core.watch_hub``) encodes into create requests -- again
after every reconnect, from the revision each watch reached.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Literal, Optional, TypeVar, Union, overload

from .. import _codec
from ..errors import InvalidArgumentError
from ..types import Event, Progress, WatchResponse
from .args import non_negative
from .request import check_timeout

__all__ = ["WatchSpec", "watch_spec", "WatchItem"]

#: What iterating a watch yields: events, and progress notifications when
#: the watch was made with ``progress_notify=True``.
WatchItem = Union[Event, Progress]
ItemT = TypeVar("ItemT", bound=WatchItem)


class WatchSpec(Generic[ItemT]):
    """What to watch, resolved to wire values (see :func:`watch_spec`).

    ``ItemT`` is what the watch yields (``Event``, or ``Event | Progress``
    with ``progress_notify``): only for type checkers.
    """

    __slots__ = ("key", "range_end", "start_revision", "prev_kv", "no_put", "no_delete",
                 "progress_notify", "fragment", "timeout", "transform", "require_leader")

    def __init__(self, key: bytes, range_end: bytes, start_revision: int, prev_kv: bool, no_put: bool,
                 no_delete: bool, progress_notify: bool, fragment: bool,
                 timeout: Optional[float] = None) -> None:
        self.key = key
        self.range_end = range_end
        self.start_revision = start_revision
        self.prev_kv = prev_kv
        self.no_put = no_put
        self.no_delete = no_delete
        self.progress_notify = progress_notify
        self.fragment = fragment
        #: How long to wait for the server to create the watch (None: the client's timeout).
        self.timeout = timeout
        #: What a view does to each response before delivery (a namespace strips
        #: its prefix); None: nothing.
        self.transform: Optional[Callable[[WatchResponse], WatchResponse]] = None
        #: Watch on a stream that carries etcd's "hasleader" (None: the client's choice).
        self.require_leader: Optional[bool] = None

    def __repr__(self) -> str:
        return f"<WatchSpec {self.key!r}..{self.range_end!r} from {self.start_revision}>"


@overload
def watch_spec(
    key: Union[str, bytes],
    *,
    prefix: bool = ...,
    range_end: Union[str, bytes, None] = ...,
    from_key: bool = ...,
    start_revision: int = ...,
    prev_kv: bool = ...,
    no_put: bool = ...,
    no_delete: bool = ...,
    progress_notify: Literal[False] = ...,
    fragment: bool = ...,
    timeout: Optional[float] = ...,
    require_leader: Optional[bool] = ...,
) -> WatchSpec[Event]: ...


@overload
def watch_spec(
    key: Union[str, bytes],
    *,
    prefix: bool = ...,
    range_end: Union[str, bytes, None] = ...,
    from_key: bool = ...,
    start_revision: int = ...,
    prev_kv: bool = ...,
    no_put: bool = ...,
    no_delete: bool = ...,
    progress_notify: bool,
    fragment: bool = ...,
    timeout: Optional[float] = ...,
    require_leader: Optional[bool] = ...,
) -> WatchSpec[WatchItem]: ...


def watch_spec(
    key: Union[str, bytes],
    *,
    prefix: bool = False,
    range_end: Union[str, bytes, None] = None,
    from_key: bool = False,
    start_revision: int = 0,
    prev_kv: bool = False,
    no_put: bool = False,
    no_delete: bool = False,
    progress_notify: bool = False,
    fragment: bool = False,
    timeout: Optional[float] = None,
    require_leader: Optional[bool] = None,
) -> WatchSpec[Any]:
    """Watch a key, a prefix, ``[key, range_end)`` or everything from ``key`` on.

    Returns the watch once the server confirmed it: iterate it for events, use
    it as a context manager, or ``cancel()`` it (in the asyncio client:
    ``async for``, ``async with``, ``await watch.cancel()``). Iterating yields
    :class:`~etcdfast.types.Event` objects, and
    :class:`~etcdfast.types.Progress` items too with ``progress_notify=True``.

    Events come from ``start_revision`` if given (0: from now); ``prev_kv``
    adds each key's previous value; ``no_put``/``no_delete`` filter event
    types; ``progress_notify`` interleaves :class:`~etcdfast.types.Progress`
    items; ``fragment`` lets the server split huge revisions (merged again
    here). All watches share one stream and resume after a broken connection
    with no event lost or repeated. ``timeout`` bounds the wait for the server
    to create the watch (default: the client's timeout). ``require_leader``
    overrides the client's for this watch (Go's ``WithRequireLeader``): it
    ends with NoLeaderError when its member loses the leader; such watches
    share a stream of their own.
    """
    k, end = _codec.keys.resolve_range(key, range_end, prefix, from_key)
    # b"\0" as range_end means "every key from key on" (from_key).
    if end and end != b"\x00" and end <= k:
        raise InvalidArgumentError(
            f"watch range_end {end!r} must sort after the key {k!r} (the range would be empty)"
        )
    spec: WatchSpec[Any] = WatchSpec(
        k, end, non_negative("start_revision", start_revision), bool(prev_kv), bool(no_put),
        bool(no_delete), bool(progress_notify), bool(fragment), check_timeout(timeout))
    spec.require_leader = require_leader
    return spec
