"""What a client tells about its calls: the per-call hook and debug logging.

``Client(on_call=hook)`` calls ``hook(info)`` once per finished call or
stream with a :class:`CallInfo` -- method, the member that served it, how
long it took, the outcome and the retries -- so Prometheus or OpenTelemetry
can count and time calls without wrapping every method::

    from prometheus_client import Histogram
    latency = Histogram("etcd_call_seconds", "etcd calls", ["method", "code"])

    def record(info: etcdfast.CallInfo) -> None:
        latency.labels(info.method.rsplit("/", 1)[-1], info.code).observe(info.duration)

    client = etcdfast.Client(on_call=record)

The hook runs on the thread (or in the task) that made the call, after the
call ended and before its result or error reaches the caller; an exception
it raises is logged and swallowed, never the call's.

Logging goes to the ``etcdfast`` loggers (``etcdfast.call``,
``etcdfast.watch``, ``etcdfast.lease``...): connects, retries and fail-overs,
token refreshes, endpoint changes and watch resumes at DEBUG/INFO. Configure
them as any Python logger, or set ``ETCD_CLIENT_DEBUG=1`` (the switch of
etcd's Go client) to have them printed to stderr at DEBUG.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any, Callable, NamedTuple, Optional

__all__ = ["CallInfo", "CallHook", "StreamSession", "peer_of", "debug_from_environment", "fire"]

log = logging.getLogger("etcdfast.call")


class CallInfo(NamedTuple):
    """One finished call or stream, as the ``on_call`` hook sees it."""

    #: The gRPC method, e.g. ``"/etcdserverpb.KV/Range"``.
    method: str
    #: The member that answered (or failed), as ``host:port`` / ``unix:path``:
    #: the client's one endpoint, the ``endpoint=`` a call was pinned to, or
    #: the member a failure names. None when no connection got that far, and
    #: for a call answered over several balanced endpoints (grpc's client
    #: calls do not tell which member answered; the answer's
    #: ``header.member_id`` does).
    endpoint: Optional[str]
    #: Seconds from the first attempt to the end, retries and logins included.
    duration: float
    #: ``"OK"``, or the gRPC status name of the error (``"UNAVAILABLE"``...),
    #: or ``"CLIENT"`` for an error the client raised itself.
    code: str
    #: The error the caller got (None on success).
    error: Optional[BaseException]
    #: Attempts after the first (retries of UNAVAILABLE, repeats after a new login).
    retries: int
    #: ``"unary"``, ``"server_stream"`` (snapshots, observe...) or
    #: ``"bidi_stream"`` (the watch and keep-alive streams: one info per
    #: stream session, when it ends or breaks).
    kind: str = "unary"
    #: The ID of the member that answered, from the answer's header (0: no
    #: answer, or one without a header); ``client.member_list()`` names it.
    member_id: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


CallHook = Callable[[CallInfo], Any]

# grpc names the peer as "ipv4:127.0.0.1:2379", "ipv6:[::1]:2379" or "unix:/path";
# its error strings carry it ("... from peer ipv4:127.0.0.1:2379 ...").
_PEER = re.compile(r"\b(?:ipv4:(\d{1,3}(?:\.\d{1,3}){3}:\d+)|ipv6:((?:\[|%5B)[^\]%]*(?:\]|%5D):\d+)"
                   r"|unix:([^\s,;\"'}]+))")


def peer_of(text: Optional[str]) -> Optional[str]:
    """The member address in a grpc peer string or error text (``host:port``, ``unix:path``)."""
    if not text:
        return None
    match = _PEER.search(text)
    if match is None:
        return None
    ipv4, ipv6, unix = match.groups()
    if unix is not None:  # "unix:/run/etcd.sock: Failed to connect": not the colon after it
        return "unix:" + unix.rstrip(":")
    return ipv4 or ipv6.replace("%5B", "[").replace("%5D", "]")


def fire(hook: CallHook, info: CallInfo) -> None:
    """Call the user's hook; what it raises is logged, never propagated."""
    try:
        hook(info)
    except Exception:
        log.exception("on_call hook %r raised for %s", hook, info.method)


class StreamSession:
    """One session of a client's watch or keep-alive stream, for the ``on_call``
    hook: opened when the stream (re)connects, reported when it ends.

    ``retries`` of its CallInfo counts the sessions of that stream the client
    opened before this one (0 for the first; each break opens another).
    """

    __slots__ = ("state", "method", "started_at", "reconnects")

    def __init__(self, state: Any, method: str) -> None:
        self.state = state
        self.method = method
        self.started_at = state._clock()
        opened = state._stream_sessions
        self.reconnects = opened.get(method, 0)
        opened[method] = self.reconnects + 1

    def end(self, failure: Optional[BaseException]) -> None:
        """The session ended: the server closed it (None) or it broke with ``failure``."""
        hook = self.state._on_call
        if hook is None:
            return
        error = None if failure is None else self.state._error_of(failure)
        debug = getattr(failure, "debug_error_string", None)
        cancelled = getattr(failure, "cancelled", None)
        # A sync grpc stream cancelled here (close) never gets a debug string:
        # its debug_error_string() would wait for one forever.
        if callable(cancelled) and cancelled():
            debug = None
        peer = peer_of(debug() if callable(debug) else None)
        if peer is None and len(self.state._endpoints) == 1:
            peer = self.state._endpoints[0].address
        code = "OK" if error is None else (error.code or "CLIENT")
        fire(hook, CallInfo(self.method, peer, self.state._clock() - self.started_at, code, error,
                            self.reconnects, "bidi_stream"))


_debug_configured = False


def debug_from_environment() -> None:
    """``ETCD_CLIENT_DEBUG`` set (to anything but ""/"0"): the ``etcdfast``
    loggers print DEBUG records to stderr, unless the application already
    configured them (then its configuration stands)."""
    global _debug_configured
    if _debug_configured or os.environ.get("ETCD_CLIENT_DEBUG", "") in ("", "0"):
        return
    _debug_configured = True
    root = logging.getLogger("etcdfast")
    if root.level == logging.NOTSET:
        root.setLevel(logging.DEBUG)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root.addHandler(handler)
