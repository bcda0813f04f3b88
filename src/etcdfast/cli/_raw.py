"""Whole responses for the cold-path verbs (auth, cluster, maintenance, leases).

The client's methods return what a program needs (``user_list()`` is a list
of names); etcdctl prints the whole response, header included, as Go's
``encoding/json`` writes the protobuf struct, or as its bytes with ``-w
protobuf``. :func:`call` runs a request built by ``etcdfast.api`` through the
client's own executor (retries, auth and deadlines as usual) and hands back
the decoded protobuf message; :func:`go_json` and :func:`fields` print it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from .. import _schema

if TYPE_CHECKING:
    from .. import Client
    from ..api.request import Request
    from ._context import Context

__all__ = ["call", "go_json", "header_of", "respond"]


def call(client: "Client", request: "Request[Any]", response: str) -> Any:
    """Run ``request``; return its answer as the ``etcdserverpb.<response>`` message."""
    name = response if "." in response else f"etcdserverpb.{response}"
    request.decode = _schema.decoder(name, _same)
    try:
        return client._run(request)
    finally:
        if request.secret:
            request.payload = b""  # as the client's own secret methods do


def _same(message: Any) -> Any:
    return message


def go_json(message: Any) -> Dict[str, Any]:
    """A protobuf message as Go's encoding/json writes the gogoproto struct:
    proto field names, zero values left out (omitempty), bytes in base64,
    enums as numbers, 64-bit integers as numbers."""
    out: Dict[str, Any] = {}
    for field, value in message.ListFields():
        out[field.name] = _value(field, value)
    return out


def _value(field: Any, value: Any) -> Any:
    repeated = getattr(field, "is_repeated", None)  # protobuf >= 6; older ones have only label
    if repeated is None:
        repeated = field.label == field.LABEL_REPEATED
    if repeated:
        return [_scalar(field, item) for item in value]
    return _scalar(field, value)


def _scalar(field: Any, value: Any) -> Any:
    if field.type == field.TYPE_MESSAGE:
        return go_json(value)
    if field.type == field.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    return value


def header_of(message: Any) -> Optional[Any]:
    """The message's ResponseHeader as an ``etcdfast.ResponseHeader``."""
    return _schema.header(message) if message.HasField("header") else None


def respond(ctx: "Context", request: "Request[Any]", response: str, simple: Callable[[Any], None],
            fields: Optional[Callable[[Any], str]] = None, table: bool = False) -> int:
    """Run ``request`` and print its ``response`` message as ``-w`` asks: json and
    protobuf whole, fields with ``fields`` (else the header), simple (and table,
    when the verb has one) with ``simple``."""
    from .output import dumps, fields_header

    message = call(ctx.client(), request, response)
    if ctx.write_out == "json":
        ctx.out.line(dumps(go_json(message)))
    elif ctx.write_out == "protobuf":
        ctx.out.write(message.SerializeToString())
    elif ctx.write_out == "fields":
        ctx.out.write(fields(message) if fields else fields_header(header_of(message)))
    elif ctx.write_out == "table" and not table:
        raise ctx.unsupported_format("table")
    else:
        simple(message)
    return 0
