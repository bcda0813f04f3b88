"""python-etcd3's client (``etcd3.client``) over etcdfast's :class:`etcdfast.Client`.

Every method keeps python-etcd3 0.12.0's name, parameters and result shapes
(plus etcd-sdk-python 0.0.7's additions) and is a translation onto one or two
native calls, so the work itself -- encoding, decoding, retries, failover,
token refresh, watch resumption -- is etcdfast's.

Results: KV answers are etcdfast's immutable records, which carry the field
names of python-etcd3's protobuf messages (``response.header.revision``,
``.kvs``, ``.count``, ``.prev_kv``, ``.deleted``...); ``get`` and the range
iterators give python-etcd3's ``(value, KVMetadata)`` pairs; the rarely used
lease answers (``refresh_lease``, ``get_lease_info``) are the protobuf
messages themselves, from etcdfast's schema.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import shutil
import tempfile
import threading
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ... import _schema
from ..._sync.client import Client
from ...api import lease as _lease_api
from ...api import maintenance as _maintenance_api
from ...api.kv import get as _build_get
from ...api.request import Request
from ...errors import EtcdError, Timeout
from ...types import (
    DeleteResult,
    GetResult,
    KeyValue,
    OpResult,
    PutResult,
    ResponseHeader,
    SortOrder,
    SortTarget,
    TxnResult,
)
from . import etcdrpc, leases, locks, transactions, utils
from . import members as _members
from . import watch as _watch
from ._rpc import handle_errors, raise_translated
from .exceptions import WatchTimedOut

if TYPE_CHECKING:
    from ..._sync.watch import Watch

__all__ = [
    "Transactions",
    "KVMetadata",
    "Status",
    "Alarm",
    "EtcdTokenCallCredentials",
    "Endpoint",
    "MultiEndpointEtcd3Client",
    "Etcd3Client",
    "client",
]

KeyLike = Union[str, bytes]
Pair = Tuple[bytes, "KVMetadata"]


class Transactions:
    """``client.transactions``: the comparison and operation builders of a transaction."""

    value = transactions.Value
    version = transactions.Version
    create = transactions.Create
    mod = transactions.Mod

    put = transactions.Put
    get = transactions.Get
    delete = transactions.Delete
    txn = transactions.Txn


class KVMetadata(Tuple[bytes, int, int, int, bytes, int, ResponseHeader]):
    """A key's metadata, next to its value in ``get``'s and the range iterators' pairs.

    ``key``, ``create_revision``, ``mod_revision``, ``version``, ``lease_id``
    and ``response_header`` (the answer's header), as in python-etcd3; an
    immutable record, built in C for every key of a range.
    """

    __slots__ = ()

    def __new__(cls, keyvalue: Any, header: Any) -> "KVMetadata":
        return tuple.__new__(cls, (keyvalue.key, keyvalue.create_revision, keyvalue.mod_revision,
                                   keyvalue.version, getattr(keyvalue, "value", b""), keyvalue.lease, header))

    key = property(operator.itemgetter(0), doc="The key.")
    create_revision = property(operator.itemgetter(1), doc="Revision of the key's creation.")
    mod_revision = property(operator.itemgetter(2), doc="Revision of the key's last change.")
    version = property(operator.itemgetter(3), doc="Number of changes since the key was created.")
    lease_id = property(operator.itemgetter(5), doc="The lease the key is attached to (0: none).")
    response_header = property(operator.itemgetter(6), doc="The header of the answer it came in.")

    def __repr__(self) -> str:
        return (f"KVMetadata(key={self.key!r}, create_revision={self.create_revision}, "
                f"mod_revision={self.mod_revision}, version={self.version}, lease_id={self.lease_id})")


# From an etcdfast KeyValue plus the header: one tuple concatenation and one
# copy into the subclass, both in C (python-etcd3 ran an __init__ per key).
_new_metadata: Callable[[Tuple[Any, ...]], KVMetadata] = functools.partial(tuple.__new__, KVMetadata)
_value_of = operator.attrgetter("value")


def _pairs(kvs: Sequence[KeyValue], header: ResponseHeader) -> Iterator[Pair]:
    """``(value, KVMetadata)`` for each key, without a Python frame per key."""
    metadata = map(_new_metadata, map(operator.add, kvs, itertools.repeat((header,))))
    return zip(map(_value_of, kvs), metadata)


class Status:
    """The answering member's status; ``leader`` is the leader's :class:`Member` (None: no leader)."""

    def __init__(self, version: str, db_size: int, leader: Optional[_members.Member], raft_index: int,
                 raft_term: int) -> None:
        self.version = version
        self.db_size = db_size
        self.leader = leader
        self.raft_index = raft_index
        self.raft_term = raft_term


class Alarm:
    """An alarm: its ``alarm_type`` (``etcdrpc.NOSPACE``...) on member ``member_id``."""

    def __init__(self, alarm_type: int, member_id: int) -> None:
        self.alarm_type = alarm_type
        self.member_id = member_id

    def __repr__(self) -> str:
        return f"Alarm(alarm_type={self.alarm_type}, member_id={self.member_id:#x})"


class EtcdTokenCallCredentials:
    """python-etcd3's metadata plugin for a raw auth token (usable with
    ``grpc.metadata_call_credentials``). The compat client does not need it:
    etcdfast logs in, sends and refreshes the token itself."""

    def __init__(self, access_token: str) -> None:
        self._access_token = access_token

    def __call__(self, context: Any, callback: Callable[..., Any]) -> None:
        callback((("token", self._access_token),), None)


class _TLSFiles(Tuple[Optional[bytes], Optional[bytes], Optional[bytes]]):
    """What ``get_secure_creds`` gives the compat ``Endpoint``: PEM bytes of the CA,
    the client key and the client certificate (etcdfast builds grpc's credentials)."""

    __slots__ = ()


def _read(path: Optional[Union[str, "os.PathLike[str]"]]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class Endpoint:
    """etcd-sdk-python's endpoint: ``host``, ``port``, TLS (``secure``, ``creds``
    from :meth:`MultiEndpointEtcd3Client.get_secure_creds`) and gRPC options.

    ``time_retry`` is accepted and unused: etcdfast balances and fails over
    between endpoints per call (and reconnects) by itself.
    """

    def __init__(self, host: str, port: int, secure: bool = True, creds: Optional[_TLSFiles] = None,
                 time_retry: float = 300.0, opts: Any = None) -> None:
        self.host = host
        self.netloc = f"{host}:{port}"
        self.secure = secure
        self.protocol = "https" if secure else "http"
        if secure and creds is None:
            raise ValueError("Please set TLS credentials for secure connections")
        if creds is not None and not isinstance(creds, _TLSFiles):
            raise TypeError("creds must come from MultiEndpointEtcd3Client.get_secure_creds(): "
                            "etcdfast builds grpc's channel credentials itself")
        self.credentials = creds
        self.time_retry = time_retry
        self.opts = opts

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.netloc}"

    def __str__(self) -> str:
        return f"Endpoint({self.url})"


def _grpc_options(options: Any) -> List[Tuple[str, Any]]:
    if not options:
        return []
    return list(options.items()) if isinstance(options, dict) else list(options)


# python-etcd3's spellings of RangeRequest's sort options.
_SORT_ORDERS = {None: SortOrder.NONE, "ascend": SortOrder.ASCEND, "descend": SortOrder.DESCEND}
_SORT_TARGETS = {None: SortTarget.KEY, "key": SortTarget.KEY, "version": SortTarget.VERSION,
                 "create": SortTarget.CREATE, "mod": SortTarget.MOD, "value": SortTarget.VALUE}


def _range_options(
    limit: Optional[int] = None,
    revision: Optional[int] = None,
    sort_order: Optional[str] = None,
    sort_target: Optional[str] = "key",
    serializable: bool = False,
    keys_only: bool = False,
    count_only: bool = False,
    min_mod_revision: Optional[int] = None,
    max_mod_revision: Optional[int] = None,
    min_create_revision: Optional[int] = None,
    max_create_revision: Optional[int] = None,
) -> Dict[str, Any]:
    """etcdfast ``get`` options for python-etcd3's range options, every one honoured
    (0.12.0 dropped ``limit``, ``revision``, ``count_only`` and the revision filters)."""
    try:
        order = _SORT_ORDERS[sort_order]
    except (KeyError, TypeError):
        raise ValueError(f'unknown sort order: "{sort_order}"') from None
    try:
        target = _SORT_TARGETS[sort_target]
    except (KeyError, TypeError):
        raise ValueError('sort_target must be one of "key", "version", "create", "mod" or "value"') from None
    return {
        "limit": limit or 0, "revision": revision or 0, "sort_order": order, "sort_target": target,
        "serializable": bool(serializable), "keys_only": bool(keys_only), "count_only": bool(count_only),
        "min_mod_revision": min_mod_revision or 0, "max_mod_revision": max_mod_revision or 0,
        "min_create_revision": min_create_revision or 0, "max_create_revision": max_create_revision or 0,
    }


def _keyword(key: Optional[KeyLike]) -> Optional[bytes]:
    return None if key is None else utils.to_bytes(key)


_NO_KV = KeyValue(b"", 0, 0, 0, b"", 0)


@functools.lru_cache(maxsize=None)
def _message_decoder(name: str) -> Callable[[bytes, Any], Any]:
    # The answer as the protobuf message python-etcd3 returned (still feeding
    # the client's revision tracker).
    return _schema.decoder(f"etcdserverpb.{name}", lambda message: message)


class ResponseOp:
    """One op's answer in ``transaction()``'s responses (python-etcd3's ``ResponseOp``).

    ``WhichOneof("response")`` names the set field: ``response_put``,
    ``response_delete_range`` or ``response_txn`` (a range's answer is given as
    ``(value, KVMetadata)`` pairs instead, as in python-etcd3).
    """

    __slots__ = ("_field", "_result")

    def __init__(self, field: str, result: Any) -> None:
        self._field = field
        self._result = result

    def WhichOneof(self, group: str) -> Optional[str]:
        return self._field if group == "response" else None

    def _get(self, field: str) -> Any:
        return self._result if self._field == field else None

    response_range = property(lambda self: self._get("response_range"))
    response_put = property(lambda self: self._get("response_put"))
    response_delete_range = property(lambda self: self._get("response_delete_range"))
    response_txn = property(lambda self: self._get("response_txn"))

    def __repr__(self) -> str:
        return f"ResponseOp({self._field}={self._result!r})"


class TxnResponse(Tuple[ResponseHeader, bool, List[ResponseOp]]):
    """A nested transaction's answer: ``header``, ``succeeded``, ``responses`` (ResponseOps)."""

    __slots__ = ()
    header = property(operator.itemgetter(0))
    succeeded = property(operator.itemgetter(1))
    responses = property(operator.itemgetter(2))


def _response_op(result: Optional[OpResult]) -> ResponseOp:
    if isinstance(result, GetResult):
        return ResponseOp("response_range", result)
    if isinstance(result, PutResult):
        return ResponseOp("response_put", _with_prev_kv(result))
    if isinstance(result, DeleteResult):
        return ResponseOp("response_delete_range", result)
    if isinstance(result, TxnResult):
        nested = TxnResponse((result.header, result.succeeded, [_response_op(r) for r in result.responses]))
        return ResponseOp("response_txn", nested)
    return ResponseOp("", None)


def _with_prev_kv(result: PutResult) -> PutResult:
    # protobuf reads an unset prev_kv as an empty KeyValue; etcdfast says None.
    if result.prev_kv is None:
        return PutResult(result.header, _NO_KV)
    return result


class MultiEndpointEtcd3Client:
    """etcd-sdk-python's client over several endpoints (python-etcd3's API).

    etcdfast balances calls over every endpoint and fails over per call, with
    or without ``failover=True``; a call fails with ``ConnectionFailedError``
    only when no endpoint answers.
    """

    def __init__(self, endpoints: Optional[Iterable[Endpoint]] = None, timeout: Optional[float] = None,
                 user: Optional[str] = None, password: Optional[str] = None, failover: bool = False) -> None:
        eps = list(endpoints or ())
        if not eps:
            raise ValueError("at least one Endpoint is needed")
        self.endpoints = {ep.netloc: ep for ep in eps}
        self.failover = failover
        if (user is None) != (password is None):
            raise Exception("if using authentication credentials both user and password must be specified.")
        # One channel configuration for all: the first endpoint's TLS files and options.
        tls = next((ep.credentials for ep in eps if ep.secure), None)
        ca, key, cert = tls if tls is not None else (None, None, None)
        self.timeout = timeout
        self.uses_secure_channel = tls is not None
        self.transactions = Transactions()
        self._watch_ids = itertools.count()
        self._callback_watches: Dict[int, "Watch[Any]"] = {}
        # python-etcd3's timeout=None meant calls without a deadline.
        self._client = Client([ep.url for ep in eps], timeout=timeout, user=user, password=password,
                              ca_cert=ca, cert=cert, key=key, grpc_options=_grpc_options(eps[0].opts))

    @staticmethod
    def get_secure_creds(ca_cert: Union[str, "os.PathLike[str]"], cert_key: Optional[str] = None,
                         cert_cert: Optional[str] = None) -> _TLSFiles:
        """Read the CA certificate, client key and client certificate files (for :class:`Endpoint`)."""
        return _TLSFiles((_read(ca_cert), _read(cert_key), _read(cert_cert)))

    @property
    def native(self) -> Client:
        """The etcdfast :class:`etcdfast.Client` underneath, for new code."""
        return self._client

    def close(self) -> None:
        """Close the connection, stopping every watch."""
        self._client.close()

    def __enter__(self) -> "MultiEndpointEtcd3Client":
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def _call_raw(self, request: Request[Any], response: str) -> Any:
        """Run ``request`` and answer its response as the protobuf message python-etcd3 returned."""
        request.decode = _message_decoder(response)
        return self._client._run(request)

    # -- KV ----------------------------------------------------------------------------------

    def _build_get_range_request(self, key: KeyLike, range_end: Optional[KeyLike] = None,
                                 **options: Any) -> Any:
        """The ``etcdrpc.RangeRequest`` a range read sends (decoded from etcdfast's bytes)."""
        request = _build_get(utils.to_bytes(key), range_end=_keyword(range_end), **_range_options(**options))
        return etcdrpc.RangeRequest.FromString(request.payload)

    @handle_errors
    def get_response(self, key: KeyLike, **kwargs: Any) -> GetResult:
        """Read a key (or, with ``range_end=``, a range); the whole answer:
        ``header``, ``kvs``, ``count``, ``more``.

        Range options: ``limit``, ``revision``, ``sort_order`` (``"ascend"``,
        ``"descend"``), ``sort_target`` (``"key"``, ``"version"``, ``"create"``,
        ``"mod"``, ``"value"``), ``serializable``, ``keys_only``, ``count_only``,
        ``min_mod_revision``, ``max_mod_revision``, ``min_create_revision``,
        ``max_create_revision``.
        """
        if not kwargs:  # python-etcd3's defaults are etcdfast's: no options to translate
            return self._client.get(utils.to_bytes(key))
        range_end = kwargs.pop("range_end", None)
        options = _range_options(**kwargs)
        return self._client.get(utils.to_bytes(key), range_end=_keyword(range_end), **options)

    def get(self, key: KeyLike, **kwargs: Any) -> Tuple[Optional[bytes], Optional[KVMetadata]]:
        """The value of ``key`` and its :class:`KVMetadata`, or ``(None, None)``
        (options: see :meth:`get_response`)."""
        result = self.get_response(key, **kwargs)
        if not result.kvs:
            return None, None
        kv = result.kvs[-1]
        return kv.value, KVMetadata(kv, result.header)

    @handle_errors
    def get_prefix_response(self, key_prefix: KeyLike, **kwargs: Any) -> GetResult:
        """Read every key starting with ``key_prefix``; the whole answer."""
        if not kwargs:
            return self._client.get(utils.to_bytes(key_prefix), prefix=True)
        if "key" in kwargs or "range_end" in kwargs:
            raise TypeError("Don't use key or range_end with prefix")
        return self._client.get(utils.to_bytes(key_prefix), prefix=True, **_range_options(**kwargs))

    def get_prefix(self, key_prefix: KeyLike, **kwargs: Any) -> Iterator[Pair]:
        """``(value, KVMetadata)`` for every key starting with ``key_prefix``."""
        result = self.get_prefix_response(key_prefix, **kwargs)
        return _pairs(result.kvs, result.header)

    @handle_errors
    def get_range_response(self, range_start: KeyLike, range_end: KeyLike, sort_order: Optional[str] = None,
                           sort_target: Optional[str] = "key", **kwargs: Any) -> GetResult:
        """Read ``[range_start, range_end)``; the whole answer."""
        options = _range_options(sort_order=sort_order, sort_target=sort_target, **kwargs)
        return self._client.get(utils.to_bytes(range_start), range_end=utils.to_bytes(range_end), **options)

    def get_range(self, range_start: KeyLike, range_end: KeyLike, **kwargs: Any) -> Iterator[Pair]:
        """``(value, KVMetadata)`` for every key in ``[range_start, range_end)``."""
        result = self.get_range_response(range_start, range_end, **kwargs)
        return _pairs(result.kvs, result.header)

    @handle_errors
    def get_all_response(self, sort_order: Optional[str] = None, sort_target: Optional[str] = "key",
                         keys_only: bool = False, **kwargs: Any) -> GetResult:
        """Read every key; the whole answer."""
        options = _range_options(sort_order=sort_order, sort_target=sort_target, keys_only=keys_only,
                                 **kwargs)
        return self._client.get(b"\0", range_end=b"\0", **options)

    def get_all(self, **kwargs: Any) -> Iterator[Pair]:
        """``(value, KVMetadata)`` for every key."""
        result = self.get_all_response(**kwargs)
        return _pairs(result.kvs, result.header)

    @handle_errors
    def put(self, key: KeyLike, value: KeyLike, lease: Any = None, prev_kv: bool = False) -> PutResult:
        """Set ``key`` to ``value``; the answer's ``header`` and, with ``prev_kv=True``,
        the previous ``prev_kv`` (an empty KeyValue if there was none)."""
        result = self._client.put(utils.to_bytes(key), utils.to_bytes(value), lease=utils.lease_to_id(lease),
                                  prev_kv=prev_kv)
        return _with_prev_kv(result)

    @handle_errors
    def put_if_not_exists(self, key: KeyLike, value: KeyLike, lease: Any = None) -> bool:
        """Put ``key`` only if it does not exist; whether it was put."""
        status, _ = self.transaction(compare=[self.transactions.create(key) == 0],
                                     success=[self.transactions.put(key, value, lease=lease)], failure=[])
        return status

    @handle_errors
    def replace(self, key: KeyLike, initial_value: KeyLike, new_value: KeyLike) -> bool:
        """Set ``key`` to ``new_value`` only if its value is ``initial_value``; whether it was."""
        status, _ = self.transaction(compare=[self.transactions.value(key) == initial_value],
                                     success=[self.transactions.put(key, new_value)], failure=[])
        return status

    @handle_errors
    def delete(self, key: KeyLike, prev_kv: bool = False,
               return_response: bool = False) -> Union[bool, DeleteResult]:
        """Delete ``key``: whether it existed, or (``return_response=True``) the answer
        (``header``, ``deleted``, and ``prev_kvs`` with ``prev_kv=True``)."""
        result = self._client.delete(utils.to_bytes(key), prev_kv=prev_kv)
        if return_response:
            return result
        return result.deleted >= 1

    @handle_errors
    def delete_prefix(self, prefix: KeyLike) -> DeleteResult:
        """Delete every key starting with ``prefix``; the answer (``deleted``...)."""
        return self._client.delete(utils.to_bytes(prefix), prefix=True)

    @handle_errors
    def status(self) -> Status:
        """The answering member's status."""
        status = self._client.status()
        leader = next((m for m in self.members if m.id == status.leader), None)
        return Status(status.version, status.db_size, leader, status.raft_index, status.raft_term)

    # -- transactions --------------------------------------------------------------------------

    def _ops_to_requests(self, ops: Optional[Iterable[Any]]) -> List[Request[Any]]:
        """etcdfast's encoded ops for python-etcd3's ``Put``/``Get``/``Delete``/``Txn``."""
        return transactions.native_ops(ops)

    @handle_errors
    def transaction(self, compare: Iterable[transactions.BaseCompare],
                    success: Optional[Iterable[Any]] = None,
                    failure: Optional[Iterable[Any]] = None) -> Tuple[bool, List[Any]]:
        """Run ``success`` if every comparison holds, else ``failure``.

        Returns ``(succeeded, responses)``: per op of the branch that ran, a
        ``[(value, KVMetadata)...]`` list for a get, else a :class:`ResponseOp`.
        """
        result = self._client.txn(transactions.native_compares(compare), transactions.native_ops(success),
                                  transactions.native_ops(failure))
        responses: List[Any] = []
        for response in result.responses:
            if isinstance(response, GetResult):
                responses.append(list(_pairs(response.kvs, result.header)))
            else:
                responses.append(_response_op(response))
        return result.succeeded, responses

    # -- leases and locks ------------------------------------------------------------------

    @handle_errors
    def lease(self, ttl: int, lease_id: Optional[int] = None) -> leases.Lease:
        """Grant a lease of ``ttl`` seconds (``lease_id``: the ID to use). It is not
        kept alive: ``refresh()`` it."""
        grant = self._client.grant(ttl, lease_id or 0)
        return leases.Lease(lease_id=grant.id, ttl=grant.ttl, etcd_client=self)

    @handle_errors
    def revoke_lease(self, lease_id: int) -> None:
        """Revoke a lease: its keys are deleted."""
        self._client.revoke(lease_id)

    @handle_errors
    def refresh_lease(self, lease_id: int) -> Iterator[Any]:
        """Refresh a lease once; yields the ``etcdrpc.LeaseKeepAliveResponse``
        (``TTL``: the new time to live, 0 if the lease is gone)."""
        request = _lease_api.keep_alive_once(lease_id)
        request.decode = _message_decoder("LeaseKeepAliveResponse")
        response = self._client._executor.first(request)
        return iter([response])

    @handle_errors
    def get_lease_info(self, lease_id: int) -> Any:
        """The ``etcdrpc.LeaseTimeToLiveResponse`` of a lease, with its keys
        (``TTL`` -1: the lease is gone)."""
        return self._call_raw(_lease_api.time_to_live(lease_id, keys=True), "LeaseTimeToLiveResponse")

    def lock(self, name: KeyLike, ttl: int = 60) -> locks.Lock:
        """A lock on ``name`` (the key ``/locks/<name>``, python-etcd3's layout) whose
        lease lasts ``ttl`` seconds unless refreshed. Nothing is sent until ``acquire()``."""
        return locks.Lock(name, ttl=ttl, etcd_client=self)

    # -- watches ----------------------------------------------------------------------------

    def _open_watch(self, key: KeyLike, prefix: bool = False, range_end: Optional[KeyLike] = None,
                    start_revision: Optional[int] = None, progress_notify: bool = False,
                    filters: Optional[Iterable[int]] = None, prev_kv: bool = False) -> "Watch[Any]":
        chosen = set(filters or ())
        nothing = etcdrpc.WatchCreateRequest  # FilterType: NOPUT, NODELETE
        try:
            return self._client.watch(
                utils.to_bytes(key), prefix=prefix, range_end=_keyword(range_end),
                start_revision=start_revision or 0, progress_notify=progress_notify, prev_kv=prev_kv,
                no_put=nothing.NOPUT in chosen, no_delete=nothing.NODELETE in chosen,
            )
        except Timeout as exc:
            raise WatchTimedOut(str(exc)) from exc
        except EtcdError as exc:
            raise_translated(exc)
            raise  # pragma: no cover - raise_translated always raises

    def add_watch_callback(self, key: KeyLike, callback: Callable[[Any], object], **kwargs: Any) -> int:
        """Watch ``key`` and call ``callback`` with every :class:`WatchResponse` (on a
        thread of the watch's own); with the exception that ends the watch, if one does.

        Options: ``range_end``, ``start_revision``, ``progress_notify``,
        ``filters``, ``prev_kv``. Returns the ID for :meth:`cancel_watch`.
        ``WatchTimedOut`` if the watch is not created within the client's timeout.
        """
        handle = self._open_watch(key, **kwargs)
        watch_id = next(self._watch_ids)
        self._callback_watches[watch_id] = handle

        def done() -> None:
            self._callback_watches.pop(watch_id, None)

        _watch.run_callback(handle, callback, done)
        return watch_id

    def add_watch_prefix_callback(self, key_prefix: KeyLike, callback: Callable[[Any], object],
                                  **kwargs: Any) -> int:
        """:meth:`add_watch_callback` for every key starting with ``key_prefix``."""
        return self.add_watch_callback(key_prefix, callback, prefix=True, **kwargs)

    def cancel_watch(self, watch_id: int) -> None:
        """Stop a watch made by :meth:`add_watch_callback`."""
        handle = self._callback_watches.pop(watch_id, None)
        if handle is not None:
            handle.cancel()

    def _start_watch(self, key: KeyLike,
               kwargs: Dict[str, Any]) -> Tuple["Watch[Any]", threading.Event, Callable[[], None]]:
        handle = self._open_watch(key, **kwargs)
        cancelled = threading.Event()

        def cancel() -> None:
            cancelled.set()
            handle.cancel()

        return handle, cancelled, cancel

    def watch_response(self, key: KeyLike,
                       **kwargs: Any) -> Tuple[Iterator[_watch.WatchResponse], Callable[[], None]]:
        """Watch ``key``: ``(responses, cancel)``; iterate ``responses`` for each
        :class:`WatchResponse` (``header``, ``events``), call ``cancel()`` to stop."""
        handle, cancelled, cancel = self._start_watch(key, kwargs)
        return _watch.responses(handle, cancelled), cancel

    def watch(self, key: KeyLike, **kwargs: Any) -> Tuple[Iterator[Any], Callable[[], None]]:
        """Watch ``key``: ``(events, cancel)``; iterate ``events`` for each
        ``PutEvent``/``DeleteEvent``, call ``cancel()`` to stop."""
        handle, cancelled, cancel = self._start_watch(key, kwargs)
        return _watch.events(handle, cancelled), cancel

    def watch_prefix_response(self, key_prefix: KeyLike,
                              **kwargs: Any) -> Tuple[Iterator[_watch.WatchResponse], Callable[[], None]]:
        """:meth:`watch_response` for every key starting with ``key_prefix``."""
        return self.watch_response(key_prefix, prefix=True, **kwargs)

    def watch_prefix(self, key_prefix: KeyLike, **kwargs: Any) -> Tuple[Iterator[Any], Callable[[], None]]:
        """:meth:`watch` for every key starting with ``key_prefix``."""
        return self.watch(key_prefix, prefix=True, **kwargs)

    def watch_once_response(self, key: KeyLike, timeout: Optional[float] = None,
                            **kwargs: Any) -> _watch.WatchResponse:
        """The first :class:`WatchResponse` on ``key``; ``WatchTimedOut`` if none
        comes within ``timeout`` seconds (None: no limit)."""
        handle = self._open_watch(key, **kwargs)
        try:
            return _watch.first_response(handle, timeout)
        finally:
            handle.cancel()

    def watch_once(self, key: KeyLike, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """The first event on ``key`` (see :meth:`watch_once_response`)."""
        return self.watch_once_response(key, timeout=timeout, **kwargs).events[0]

    def watch_prefix_once_response(self, key_prefix: KeyLike, timeout: Optional[float] = None,
                                   **kwargs: Any) -> _watch.WatchResponse:
        """:meth:`watch_once_response` for every key starting with ``key_prefix``."""
        return self.watch_once_response(key_prefix, timeout=timeout, prefix=True, **kwargs)

    def watch_prefix_once(self, key_prefix: KeyLike, timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """:meth:`watch_once` for every key starting with ``key_prefix``."""
        return self.watch_once(key_prefix, timeout=timeout, prefix=True, **kwargs)

    # -- cluster ------------------------------------------------------------------------------

    def _member(self, member: Any) -> _members.Member:
        return _members.Member(member.id, member.name, member.peer_urls, member.client_urls, etcd_client=self)

    @handle_errors
    def add_member(self, urls: Iterable[str]) -> _members.Member:
        """Add a member with these peer URLs; the new (not yet started) :class:`Member`."""
        return self._member(self._client.member_add(list(urls)).member)

    @handle_errors
    def remove_member(self, member_id: int) -> None:
        """Remove a member from the cluster."""
        self._client.member_remove(member_id)

    @handle_errors
    def update_member(self, member_id: int, peer_urls: Iterable[str]) -> None:
        """Replace a member's peer URLs."""
        self._client.member_update(member_id, list(peer_urls))

    @property
    @handle_errors
    def members(self) -> Iterator[_members.Member]:
        """The members of the cluster (an iterator)."""
        return iter([self._member(m) for m in self._client.member_list().members])

    # -- maintenance -----------------------------------------------------------------------------

    @handle_errors
    def compact(self, revision: int, physical: bool = False) -> None:
        """Discard the history before ``revision`` (``physical=True``: wait until
        it is gone from the database)."""
        self._client.compact(revision, physical=physical)

    @handle_errors
    def defragment(self) -> None:
        """Defragment the answering member's database."""
        self._client.defragment()

    @handle_errors
    def hash(self) -> int:
        """Hash of the answering member's backend."""
        return self._client.hash().hash

    def _build_alarm_request(self, alarm_action: str, member_id: int, alarm_type: str) -> Any:
        """python-etcd3's ``etcdrpc.AlarmRequest`` (``member_id`` 0 is sent as 0, as it was)."""
        request = etcdrpc.AlarmRequest
        actions = {"get": request.GET, "activate": request.ACTIVATE, "deactivate": request.DEACTIVATE}
        types = {"none": etcdrpc.NONE, "no space": etcdrpc.NOSPACE}
        if alarm_action not in actions:
            raise ValueError(f"Unknown alarm action: {alarm_action}")
        if alarm_type not in types:
            raise ValueError(f"Unknown alarm type: {alarm_type}")
        return request(action=actions[alarm_action], memberID=member_id, alarm=types[alarm_type])

    def _alarm(self, action: str, member_id: int, alarm_type: str) -> List[Alarm]:
        message = self._build_alarm_request(action, member_id, alarm_type)
        # Built here, not with client.alarm_activate/alarm_disarm: python-etcd3
        # sent member ID 0 as it is (etcd then records an alarm on "member 0"),
        # which etcdfast's builders refuse.
        request: Request[Any] = Request(_maintenance_api.ALARM, message.SerializeToString(),
                                        _message_decoder("AlarmResponse"), repeatable=True)
        response = self._client._run(request)
        return [Alarm(alarm.alarm, alarm.memberID) for alarm in response.alarms]

    @handle_errors
    def create_alarm(self, member_id: int = 0) -> List[Alarm]:
        """Raise a NOSPACE alarm on ``member_id``; the alarms raised."""
        return self._alarm("activate", member_id, "no space")

    @handle_errors
    def list_alarms(self, member_id: int = 0, alarm_type: str = "none") -> Iterator[Alarm]:
        """The active alarms (an iterator)."""
        return iter(self._alarm("get", member_id, alarm_type))

    @handle_errors
    def disarm_alarm(self, member_id: int = 0) -> List[Alarm]:
        """Clear the NOSPACE alarm of ``member_id``; the alarms cleared."""
        return self._alarm("deactivate", member_id, "no space")

    @handle_errors
    def snapshot(self, file_obj: IO[bytes]) -> None:
        """Write a snapshot of the database to ``file_obj`` (its checksum verified first)."""
        directory = tempfile.mkdtemp(prefix="etcdfast-compat-snapshot-")
        try:
            path = os.path.join(directory, "snapshot.db")
            self._client.snapshot(path)
            with open(path, "rb") as f:
                shutil.copyfileobj(f, file_obj)
        finally:
            shutil.rmtree(directory, ignore_errors=True)


class Etcd3Client(MultiEndpointEtcd3Client):
    """python-etcd3's client for one endpoint, ``host:port``.

    ``ca_cert`` turns TLS on (with ``cert_key`` and ``cert_cert`` both, or
    neither); ``user``/``password`` log in (the token is refreshed when it
    expires); ``timeout`` is every call's deadline in seconds (None: none);
    ``grpc_options`` are extra gRPC channel options.
    """

    def __init__(self, host: str = "localhost", port: int = 2379, ca_cert: Optional[str] = None,
                 cert_key: Optional[str] = None, cert_cert: Optional[str] = None,
                 timeout: Optional[float] = None, user: Optional[str] = None, password: Optional[str] = None,
                 grpc_options: Any = None) -> None:
        tls: Optional[_TLSFiles] = None
        if ca_cert is not None:
            if (cert_key is None) != (cert_cert is None):
                raise ValueError("to use a secure channel ca_cert is required by itself, "
                                 "or cert_cert and cert_key must both be specified.")
            tls = self.get_secure_creds(ca_cert, cert_key, cert_cert)
        endpoint = Endpoint(host, port, secure=tls is not None, creds=tls, opts=grpc_options)
        super().__init__([endpoint], timeout=timeout, user=user, password=password)

    def _get_secure_creds(self, ca_cert: str, cert_key: Optional[str] = None,
                          cert_cert: Optional[str] = None) -> _TLSFiles:
        return self.get_secure_creds(ca_cert, cert_key, cert_cert)


def client(host: str = "localhost", port: int = 2379, ca_cert: Optional[str] = None,
           cert_key: Optional[str] = None, cert_cert: Optional[str] = None, timeout: Optional[float] = None,
           user: Optional[str] = None, password: Optional[str] = None,
           grpc_options: Any = None) -> Etcd3Client:
    """An :class:`Etcd3Client` (python-etcd3's ``etcd3.client()``)."""
    return Etcd3Client(host=host, port=port, ca_cert=ca_cert, cert_key=cert_key, cert_cert=cert_cert,
                       timeout=timeout, user=user, password=password, grpc_options=grpc_options)
