"""python-etcd3's watch results (:class:`WatchResponse`) over etcdfast's watches.

A compat watch is an etcdfast :class:`etcdfast.Watch` on the client's one
shared stream: it resumes after a broken connection with no event lost or
repeated, and it never ends silently -- a compaction or a failure that
cannot be recovered from reaches the iterator as an exception (the
callback: as its argument), translated to python-etcd3's classes.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any, Callable, Iterator, List, NamedTuple, Union

from ..._sync.watch import Watch
from ...errors import CompactedError, EtcdError, Timeout
from ...types import Progress, ResponseHeader
from ...types import WatchResponse as _NativeResponse
from . import events as _events
from ._rpc import translate
from .exceptions import RevisionCompactedError, WatchTimedOut

__all__ = ["WatchResponse", "watch_error", "responses", "event_lists", "first_response", "run_callback"]

log = logging.getLogger("etcdfast.compat.etcd3.watch")


class WatchResponse(NamedTuple):
    """One watch response: the ``header`` (its ``revision``...) and its ``events``.

    A progress notification (``progress_notify=True``) has no events; its
    header carries only the revision up to which everything was sent.
    """

    header: ResponseHeader
    events: List[_events.Event]


def _response(batch: Union[_NativeResponse, Progress]) -> WatchResponse:
    if isinstance(batch, Progress):
        return WatchResponse(ResponseHeader(0, 0, batch.revision, 0), [])
    return WatchResponse(batch.header, _events.new_events(batch.events))


def watch_error(exc: EtcdError) -> BaseException:
    """python-etcd3's exception for what ended a watch."""
    if isinstance(exc, CompactedError):
        return RevisionCompactedError(exc.compact_revision or 0)
    if isinstance(exc, Timeout):
        return WatchTimedOut(str(exc))
    return translate(exc)


def _raise(exc: EtcdError) -> None:
    new = watch_error(exc)
    if new is exc:
        raise exc
    raise new from exc


def responses(handle: "Watch[Any]", cancelled: threading.Event) -> Iterator[WatchResponse]:
    """The watch's responses until it is cancelled (then at once, as python-etcd3)."""
    try:
        for batch in handle.batches():
            if cancelled.is_set():
                return
            yield _response(batch)
    except EtcdError as exc:
        _raise(exc)


def event_lists(handle: "Watch[Any]", cancelled: threading.Event) -> Iterator[List[_events.Event]]:
    """Each response's events (for ``watch()``: the consumer chains them)."""
    try:
        for batch in handle.batches():
            if cancelled.is_set():
                return
            if not isinstance(batch, Progress):
                yield _events.new_events(batch.events)
    except EtcdError as exc:
        _raise(exc)


def events(handle: "Watch[Any]", cancelled: threading.Event) -> Iterator[_events.Event]:
    """The watch's events one by one (each response's list walked in C)."""
    return itertools.chain.from_iterable(event_lists(handle, cancelled))


def first_response(handle: "Watch[Any]", timeout: Any) -> WatchResponse:
    """The watch's first response within ``timeout`` seconds (None: no limit)."""
    try:
        for batch in handle.batches(timeout):
            return _response(batch)
    except EtcdError as exc:
        _raise(exc)
    raise WatchTimedOut("the watch was cancelled before its first response")


def _safe_callback(callback: Callable[[Any], object], response_or_err: Any) -> None:
    try:
        callback(response_or_err)
    except Exception:
        # python-etcd3's contract: a failing callback is logged and the watch goes on.
        log.exception("Watch callback failed")


def run_callback(handle: "Watch[Any]", callback: Callable[[Any], object],
                 done: Callable[[], None]) -> threading.Thread:
    """Call ``callback`` with each response on a thread of its own; with the
    exception that ends the watch, if one does; then ``done()``."""

    def run() -> None:
        try:
            for batch in handle.batches():
                _safe_callback(callback, _response(batch))
        except EtcdError as exc:
            _safe_callback(callback, watch_error(exc))
        finally:
            done()

    thread = threading.Thread(target=run, name="etcdfast-compat-watch", daemon=True)
    thread.start()
    return thread
