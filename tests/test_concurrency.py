"""Sessions, locks, elections, STM, recipes and the server Lock/Election services,
against a real etcd, for both clients.

Each scenario is written once, as a coroutine taking a :class:`Kit`, and runs
for the sync and the asyncio client (the ``kind`` fixture). The kit hides the
one difference that matters to a scenario:

* ``await k(x)`` -- ``x`` is a sync call's result (already done) or an async
  call's awaitable (awaited);
* ``k.bg(f, ...)`` -- a call that waits (a lock behind another holder...):
  a worker thread for the sync client, a task for the async one; its future
  is checked with ``fut.done()`` and collected with ``await k.join(fut)``
  (bounded);
* ``await k.next(it)`` / ``await k.close_iter(it)`` -- an observe iterator
  (sync ``next``/``close()`` on a worker thread, async ``__anext__``/``aclose()``);
* ``k.apply(body)`` -- an STM body written as ``async def body(tx)``
  (``await tx.get(key)``, ``tx.put(...)``): a coroutine function for the
  async client, driven synchronously (it never suspends) for the sync one.

The sync client's calls block the scenario's event loop while they run, which
is fine: nothing else runs on it but the kit's own futures. Every wait is
bounded (a ``timeout=`` on the call, or a join with one); "must not get
through yet" checks give a waiter SETTLE seconds to get through wrongly, so a
slow machine can only make them pass, never fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Awaitable, Callable, List, Optional

import pytest

import etcdfast
from etcdfast import (
    ElectionNoLeaderError,
    ElectionNotLeaderError,
    InvalidArgumentError,
    LeaseExpiredError,
    LeaseNotFoundError,
    Op,
)
from etcdfast.concurrency import Isolation
from etcdfast.errors import RecipeKeyExistsError, TooManyClientsError
from etcdfast.testing import FaultProxy

KINDS = ("sync", "async")
#: The bound of any wait that must end (generous: the machine is shared).
WAIT = 30.0
#: How long a waiter that must not get through yet is given to (wrongly) do so.
SETTLE = 0.3
#: A lock id's hex digits in a key: Go's layout, ``name/<lease id in lowercase hex>``.
UNKNOWN_LEASE = 0x7FFF_0000_0000_0001

_END = object()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The client a scenario runs on: ``"sync"`` (Client) or ``"async"`` (AsyncClient)."""
    return request.param  # type: ignore[no-any-return]


def hexkey(name: bytes, session: Any) -> bytes:
    """``name/<lease id in lowercase hex>``: what Go's Mutex/Election and etcdctl write."""
    return name + b"/" + format(session.id, "x").encode()


class _SyncTx:
    """The sync ``Stm`` behind the awaitable face an STM body uses (its coroutines never suspend)."""

    def __init__(self, stm: Any) -> None:
        self._stm = stm

    async def get(self, key: Any, *more: Any) -> Optional[bytes]:
        return self._stm.get(key, *more)  # type: ignore[no-any-return]

    async def rev(self, key: Any) -> int:
        return self._stm.rev(key)  # type: ignore[no-any-return]

    def put(self, key: Any, value: Any, **options: Any) -> None:
        self._stm.put(key, value, **options)

    def delete(self, key: Any) -> None:
        self._stm.delete(key)


def _drive(coro: Any) -> Any:
    """Run a coroutine that never suspends to its result (sync STM bodies)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("a sync scenario step awaited something that suspends")


class Kit:
    """One scenario's clients, sessions and waiters, for the sync or the async client."""

    def __init__(self, kind: str, endpoint: str) -> None:
        self.kind = kind
        self.is_sync = kind == "sync"
        self.endpoint = endpoint
        self._clients: List[Any] = []
        self._sessions: List[Any] = []
        self._pending: List["asyncio.Future[Any]"] = []
        self._pool = ThreadPoolExecutor(max_workers=12, thread_name_prefix="kit-waiter")
        #: The scenario's first client.
        self.c: Any = self.client()

    def client(self, endpoint: Optional[str] = None, **options: Any) -> Any:
        """Another client of the kit's kind (closed at the end)."""
        options.setdefault("timeout", 10)
        cls = etcdfast.Client if self.is_sync else etcdfast.AsyncClient
        client = cls(endpoint or self.endpoint, **options)
        self._clients.append(client)
        return client

    async def __call__(self, value: Any) -> Any:
        """A sync call's result as is; an async call's awaitable, awaited."""
        if inspect.isawaitable(value):
            return await value
        return value

    async def session(self, client: Any = None, **options: Any) -> Any:
        """A session (revoked at the end if still alive)."""
        options.setdefault("ttl", 30)
        session = await self((client or self.c).session(**options))
        self._sessions.append(session)
        return session

    def bg(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> "asyncio.Future[Any]":
        """``function(*args, **kwargs)`` in the background: a thread (sync) or a task (async)."""
        if self.is_sync:
            future = asyncio.get_running_loop().run_in_executor(
                self._pool, functools.partial(function, *args, **kwargs))
        else:
            future = asyncio.ensure_future(function(*args, **kwargs))
        self._pending.append(future)
        return future

    async def join(self, future: "asyncio.Future[Any]", timeout: float = WAIT) -> Any:
        """The result of a background call, which must come within ``timeout``."""
        done, _ = await asyncio.wait({future}, timeout=timeout)
        assert future in done, "a waiter was not served in time"
        return future.result()

    async def settle(self) -> None:
        """Give background waiters SETTLE seconds (to get through wrongly, if they would)."""
        await asyncio.sleep(SETTLE)

    async def pause(self, seconds: float) -> None:
        """Sleep inside an STM body (blocking for the sync client: its body cannot suspend)."""
        if self.is_sync:
            time.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def until(self, check: Callable[[], Awaitable[Any]], what: str, timeout: float = WAIT) -> Any:
        """Poll ``check()`` until it answers something true (at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            value = await check()
            if value:
                return value
            assert time.monotonic() < deadline, f"never happened: {what}"
            await asyncio.sleep(0.05)

    async def kvs(self, prefix: bytes) -> List[Any]:
        """The key-values under ``prefix``, oldest first."""
        result = await self(self.c.get(prefix, prefix=True, sort_target="create", sort_order="ascend"))
        return list(result.kvs)

    async def keys(self, prefix: bytes) -> List[bytes]:
        """The keys under ``prefix``, oldest first."""
        return [kv.key for kv in await self.kvs(prefix)]

    async def count(self, prefix: bytes, n: int) -> None:
        """Wait until there are ``n`` keys under ``prefix``."""
        async def check() -> bool:
            return len(await self.keys(prefix)) == n
        await self.until(check, f"{n} keys under {prefix!r}")

    async def value(self, key: bytes) -> Optional[bytes]:
        return await self(self.c.get_value(key))  # type: ignore[no-any-return]

    async def next(self, iterator: Any, timeout: float = WAIT) -> Any:
        """The next item of a sync or async iterator (``_END`` when it ended), within ``timeout``."""
        if self.is_sync:
            future = asyncio.get_running_loop().run_in_executor(self._pool, next, iterator, _END)
            return await asyncio.wait_for(future, timeout)
        try:
            return await asyncio.wait_for(iterator.__anext__(), timeout)
        except StopAsyncIteration:
            return _END

    async def close_iter(self, iterator: Any) -> None:
        if self.is_sync:
            iterator.close()
        else:
            await iterator.aclose()

    @contextlib.asynccontextmanager
    async def within(self, manager: Any) -> AsyncIterator[Any]:
        """``with manager`` (sync) or ``async with manager`` (async)."""
        if hasattr(manager, "__aenter__"):
            async with manager as value:
                yield value
        else:
            with manager as value:
                yield value

    def apply(self, body: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Any]:
        """An STM ``apply`` from ``async def body(tx)``, for the kit's client."""
        if self.is_sync:
            return lambda stm: _drive(body(_SyncTx(stm)))
        return body

    async def aclose(self) -> None:
        for future in self._pending:
            if not future.done() and not self.is_sync:
                future.cancel()
        if not self.is_sync and self._pending:
            await asyncio.wait(self._pending, timeout=WAIT)
        for session in self._sessions:
            if session.alive and not session._client.closed:
                with contextlib.suppress(etcdfast.EtcdError):
                    await self(session.close())
        for client in self._clients:
            await self(client.close())  # unblocks any sync waiter left
        self._pool.shutdown(wait=False, cancel_futures=True)
        for future in self._pending:  # retrieved: no "exception never retrieved" noise
            if future.done() and not future.cancelled():
                future.exception()


def run(kind: str, endpoint: str, scenario: Callable[[Kit], Awaitable[None]]) -> None:
    """Run ``scenario`` on a fresh kit of ``kind``."""
    async def main() -> None:
        kit = Kit(kind, endpoint)
        try:
            await scenario(kit)
        finally:
            await kit.aclose()

    asyncio.run(main())


# -- Session -------------------------------------------------------------------------------------------


def test_session_is_granted_at_once_with_its_ttl(kind, etcd_endpoint):
    async def scenario(k: Kit) -> None:
        session = await k.session(ttl=7)
        assert isinstance(session, etcdfast.Session if k.is_sync else etcdfast.AsyncSession)
        assert session.granted and session.alive and session.id > 0 and session.ttl == 7
        info = await k(k.c.time_to_live(session.id))
        assert info.granted_ttl == 7 and 0 < info.ttl <= 7
        await k(session.close())

    run(kind, etcd_endpoint, scenario)


def test_session_with_block_revokes_it_and_its_keys_vanish(kind, etcd_endpoint, etcd_prefix):
    async def scenario(k: Kit) -> None:
        async with k.within(await k(k.c.session(ttl=30))) as session:
            await k(k.c.put(etcd_prefix + b"plain", b"v", lease=session))
            mutex = session.mutex(etcd_prefix + b"lock")
            await k(mutex.lock(timeout=10))
            assert await k.keys(etcd_prefix) == [etcd_prefix + b"plain", mutex.key]
        assert session.revoked and not session.alive and session.lost is None
        assert await k.keys(etcd_prefix) == []
        with pytest.raises(LeaseNotFoundError):
            await k(k.c.time_to_live(session.id))

    run(kind, etcd_endpoint, scenario)


def test_session_close_revokes_it(kind, etcd_endpoint, etcd_prefix):
    async def scenario(k: Kit) -> None:
        session = await k.session()
        await k(k.c.put(etcd_prefix + b"k", b"v", lease=session.id))
        await k(session.close())
        assert session.revoked and not session.alive and session.lost is None
        assert await k(session.wait(timeout=5)) is True
        assert await k.keys(etcd_prefix) == []
        with pytest.raises(LeaseNotFoundError):
            await k(k.c.time_to_live(session.id))
        await k(session.close())  # again: the lease is gone already, not an error

    run(kind, etcd_endpoint, scenario)


def test_session_adopts_an_existing_lease(kind, etcd_endpoint, etcd_prefix):
    async def scenario(k: Kit) -> None:
        granted = await k(k.c.grant(20))
        session = await k.session(lease=granted.id)
        assert session.id == granted.id and session.ttl == 20 and session.granted and session.alive
        mutex = session.mutex(etcd_prefix + b"lock")
        await k(mutex.lock(timeout=10))
        assert mutex.key == hexkey(etcd_prefix + b"lock", granted)
        assert (await k.kvs(etcd_prefix))[0].lease == granted.id
        await k(session.close())  # revokes the adopted lease
        assert await k.keys(etcd_prefix) == []
        with pytest.raises(LeaseNotFoundError):
            await k(k.c.time_to_live(granted.id))

    run(kind, etcd_endpoint, scenario)


def test_session_adopting_an_unknown_lease_is_lease_not_found(kind, etcd_endpoint):
    async def scenario(k: Kit) -> None:
        with pytest.raises(LeaseNotFoundError):
            await k(k.c.session(lease=UNKNOWN_LEASE))

    run(kind, etcd_endpoint, scenario)


def test_session_on_lost_is_called_once_when_revoked_by_another_client(kind, etcd_endpoint, etcd_prefix):
    async def scenario(k: Kit) -> None:
        lost: List[Any] = []
        session = await k.session(ttl=2, on_lost=lost.append)
        await k(k.c.put(etcd_prefix + b"k", b"v", lease=session))
        other = k.client()
        await k(other.revoke(session.id))

        async def was_lost() -> bool:
            return bool(lost)
        await k.until(was_lost, "on_lost")
        assert await k(session.wait(timeout=WAIT)) is True
        assert lost == [session]
        assert isinstance(session.lost, LeaseExpiredError)
        assert not session.alive and not session.revoked
        await asyncio.sleep(1.0)  # past a few keep-alive rounds (TTL/3): still once
        assert lost == [session]
        assert await k.keys(etcd_prefix) == []

    run(kind, etcd_endpoint, scenario)


def test_session_on_lost_is_not_called_when_its_owner_closes_it(kind, etcd_endpoint):
    async def scenario(k: Kit) -> None:
        lost: List[Any] = []
        session = await k.session(ttl=2, on_lost=lost.append)
        await asyncio.sleep(0.8)  # a keep-alive round went by
        await k(session.close())
        assert await k(session.wait(timeout=WAIT)) is True
        await asyncio.sleep(1.0)
        assert lost == [] and session.lost is None and session.revoked

    run(kind, etcd_endpoint, scenario)


def test_session_wait_returns_when_it_ends(kind, etcd_endpoint):
    async def scenario(k: Kit) -> None:
        session = await k.session(ttl=5)
        assert await k(session.wait(timeout=0.2)) is False  # alive: times out
        waiting = k.bg(session.wait, timeout=WAIT)
        await k.settle()
        assert not waiting.done()
        await k(session.close())
        assert await k.join(waiting) is True

    run(kind, etcd_endpoint, scenario)


# -- Mutex ---------------------------------------------------------------------------------------------


def test_mutex_key_layout_lock_and_unlock(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        mutex = session.mutex(name)
        assert not mutex.locked and mutex.key is None
        await k(mutex.lock(timeout=10))
        assert mutex.locked
        assert mutex.key == name + b"/" + format(session.id, "x").encode()
        [kv] = await k.kvs(name + b"/")
        assert kv.key == mutex.key and kv.lease == session.id and kv.value == b""
        await k(mutex.unlock())
        assert not mutex.locked and mutex.key is None and mutex.revision == -1
        assert await k.keys(name + b"/") == []
        await k(mutex.lock(timeout=10))  # again after unlock
        assert await k.keys(name + b"/") == [mutex.key]
        await k(mutex.unlock())

    run(kind, etcd_endpoint, scenario)


def test_mutex_context_manager(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        async with k.within(session.mutex(name)) as mutex:
            assert mutex.locked and await k.keys(name + b"/") == [hexkey(name, session)]
        assert not mutex.locked and await k.keys(name + b"/") == []
        with pytest.raises(RuntimeError):
            async with k.within(session.mutex(name)):
                raise RuntimeError("boom")
        assert await k.keys(name + b"/") == []  # released on the way out of an error too

    run(kind, etcd_endpoint, scenario)


def test_mutex_try_lock_held_elsewhere_is_false_and_leaves_no_key(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session(k.client())
        held, other = s1.mutex(name), s2.mutex(name)
        assert await k(held.try_lock()) is True and held.locked
        assert await k(other.try_lock()) is False
        assert not other.locked and other.key is None
        assert await k.keys(name + b"/") == [held.key]
        await k(held.unlock())
        assert await k(other.try_lock()) is True
        assert await k.keys(name + b"/") == [hexkey(name, s2)]
        await k(other.unlock())

    run(kind, etcd_endpoint, scenario)


def test_mutex_lock_timeout_raises_and_leaves_no_key(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        held, other = s1.mutex(name), s2.mutex(name)
        await k(held.lock(timeout=10))
        with pytest.raises(etcdfast.Timeout):
            await k(other.lock(timeout=0.5))
        assert not other.locked and other.key is None
        assert await k.keys(name + b"/") == [held.key]
        await k(held.unlock())
        await k(other.lock(timeout=10))  # the handle is usable after its timeout
        await k(other.unlock())

    run(kind, etcd_endpoint, scenario)


def test_mutex_relock_with_the_same_session_returns_at_once_with_the_same_key(
        kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        first = session.mutex(name)
        await k(first.lock(timeout=10))
        again = session.mutex(name)
        await k(again.lock(timeout=2))  # Go: the session's key exists, and it owns the lock
        assert again.locked and again.key == first.key and again.revision == first.revision
        await k(first.lock(timeout=2))  # the same handle, again
        assert first.key == again.key and first.revision == again.revision
        assert await k(session.mutex(name).try_lock()) is True
        assert await k.keys(name + b"/") == [first.key]
        await k(first.unlock())

    run(kind, etcd_endpoint, scenario)


def test_mutex_lock_with_a_closed_session_is_lease_not_found(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        await k(session.close())
        mutex = session.mutex(name)
        with pytest.raises(LeaseNotFoundError):
            await k(mutex.lock(timeout=10))
        assert not mutex.locked and mutex.key is None
        assert await k.keys(name + b"/") == []

    run(kind, etcd_endpoint, scenario)


def test_mutex_is_owner_guards_a_txn(kind, etcd_endpoint, etcd_prefix):
    name, guarded = etcd_prefix + b"lock", etcd_prefix + b"guarded"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        mine, theirs = s1.mutex(name), s2.mutex(name)

        async def write(compare: Any, value: bytes) -> bool:
            result = await k(k.c.txn(compare=[compare], success=[Op.put(guarded, value)]))
            return result.succeeded  # type: ignore[no-any-return]

        await k(mine.lock(timeout=10))
        token = mine.is_owner()
        assert await write(token, b"1") and await write(mine.is_owner(), b"2")
        await k(mine.unlock())
        assert not await write(token, b"x") and not await write(mine.is_owner(), b"x")
        await k(theirs.lock(timeout=10))
        assert not await write(token, b"x")
        assert await write(theirs.is_owner(), b"3")
        assert await k.value(guarded) == b"3"
        await k(theirs.unlock())

        # A holder that lost its key (say its lease expired) and was followed by
        # another still believes it holds the lock: its guard no longer passes.
        await k(mine.lock(timeout=10))
        await k(k.c.delete(mine.key))
        await k(theirs.lock(timeout=10))
        assert mine.locked
        assert not await write(mine.is_owner(), b"stale")
        assert await k.value(guarded) == b"3"
        await k(theirs.unlock())

    run(kind, etcd_endpoint, scenario)


def test_mutex_key_and_revision_are_a_fencing_token(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        first, second = s1.mutex(name), s2.mutex(name)
        await k(first.lock(timeout=10))
        [kv] = await k.kvs(name + b"/")
        assert (first.key, first.revision) == (kv.key, kv.create_revision)
        assert first.header is not None and first.header.revision >= first.revision
        first_token = first.revision
        await k(first.unlock())
        await k(second.lock(timeout=10))
        [kv] = await k.kvs(name + b"/")
        assert (second.key, second.revision) == (kv.key, kv.create_revision)
        assert second.revision > first_token
        await k(second.unlock())
        await k(first.lock(timeout=10))
        assert first.revision > second.revision  # each hold a newer token
        await k(first.unlock())

    run(kind, etcd_endpoint, scenario)


def test_mutex_waiters_are_served_in_order(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        sessions = [await k.session() for _ in range(4)]
        mutexes = [s.mutex(name) for s in sessions]
        await k(mutexes[0].lock(timeout=10))
        waiting = []
        for number, mutex in enumerate(mutexes[1:], start=2):
            waiting.append(k.bg(mutex.lock, timeout=WAIT))
            await k.count(name + b"/", number)  # queued in this order
        assert await k.keys(name + b"/") == [hexkey(name, s) for s in sessions]
        await k.settle()
        assert not any(w.done() for w in waiting)
        served = []
        holder = mutexes[0]
        for _ in range(3):
            # Chosen before the unlock: the next waiter may be served before
            # the unlock's own answer is back (a race of two responses).
            candidates = [w for w in waiting if not w.done()]
            await k(holder.unlock())
            await asyncio.wait(candidates, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
            await k.settle()
            done = {w for w in candidates if w.done()}
            assert len(done) == 1, "unlocking let more than one waiter through (or none)"
            index = waiting.index(done.pop())
            waiting[index].result()
            served.append(index + 1)
            holder = mutexes[index + 1]
            assert holder.locked
            assert sum(w.done() for w in waiting) == len(served)  # the others still wait
        assert served == [1, 2, 3]
        await k(holder.unlock())
        assert await k.keys(name + b"/") == []

    run(kind, etcd_endpoint, scenario)


def test_mutex_waiter_watches_only_its_predecessor(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        spied = k.client()
        watched: List[Any] = []
        original = spied.watch

        def spy(key: Any, **options: Any) -> Any:
            watched.append((key, options.get("range_end")))
            return original(key, **options)

        spied.watch = spy
        s1, s2, s3 = await k.session(), await k.session(), await k.session(spied)
        first, second, third = s1.mutex(name), s2.mutex(name), s3.mutex(name)
        await k(first.lock(timeout=10))
        second_waits = k.bg(second.lock, timeout=WAIT)
        await k.count(name + b"/", 2)
        third_waits = k.bg(third.lock, timeout=WAIT)

        async def watching() -> bool:
            return bool(watched)
        await k.until(watching, "the third waiter's watch")
        assert watched == [(hexkey(name, s2), None)]  # one key, not the prefix
        # The first holder's key goes (not the third's predecessor): the second
        # gets the lock; the third is not woken.
        await k(k.c.delete(first.key))
        await k.join(second_waits)
        await k.settle()
        assert not third_waits.done()
        assert watched == [(hexkey(name, s2), None)]
        await k(second.unlock())
        await k.join(third_waits)
        assert third.locked and watched == [(hexkey(name, s2), None)]
        await k(third.unlock())

    run(kind, etcd_endpoint, scenario)


# -- Election ------------------------------------------------------------------------------------------


def test_election_campaign_in_an_empty_election_leads_at_once(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        election = session.election(name)
        assert not election.leading
        await k(election.campaign(b"v1", timeout=10))
        assert election.leading and election.key == hexkey(name, session)
        leader = await k(election.leader())
        assert isinstance(leader, etcdfast.KeyValue)
        assert (leader.key, leader.value, leader.lease) == (election.key, b"v1", session.id)
        assert leader.create_revision == election.revision
        # Anyone can ask, not only the leader.
        other = (await k.session()).election(name)
        assert (await k(other.leader())).value == b"v1"
        await k(election.resign())

    run(kind, etcd_endpoint, scenario)


def test_election_second_candidate_leads_after_the_first_resigns(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session(k.client())
        first, second = s1.election(name), s2.election(name)
        await k(first.campaign(b"one", timeout=10))
        campaigning = k.bg(second.campaign, b"two", timeout=WAIT)
        await k.count(name + b"/", 2)
        await k.settle()
        assert not campaigning.done()
        assert (await k(first.leader())).value == b"one"
        await k(first.resign())
        await k.join(campaigning)
        assert second.leading and not first.leading
        leader = await k(first.leader())
        assert (leader.key, leader.value) == (hexkey(name, s2), b"two")
        await k(second.resign())

    run(kind, etcd_endpoint, scenario)


def test_election_leader_without_one_is_election_no_leader(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        election = session.election(name)
        with pytest.raises(ElectionNoLeaderError):
            await k(election.leader())
        await k(election.campaign(b"v", timeout=10))
        await k(election.resign())
        with pytest.raises(ElectionNoLeaderError):
            await k(election.leader())

    run(kind, etcd_endpoint, scenario)


def test_election_proclaim_changes_the_value(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        election = session.election(name)
        await k(election.campaign(b"v1", timeout=10))
        revision = election.revision
        await k(election.proclaim(b"v2"))
        leader = await k(election.leader())
        assert (leader.key, leader.value, leader.create_revision) == (election.key, b"v2", revision)
        assert election.leading
        await k(election.resign())

    run(kind, etcd_endpoint, scenario)


def test_election_proclaim_when_not_leading_is_election_not_leader(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        with pytest.raises(ElectionNotLeaderError):
            await k(s2.election(name).proclaim(b"never campaigned"))
        election = s1.election(name)
        await k(election.campaign(b"v1", timeout=10))
        key = election.key
        await k(k.c.delete(key))  # someone else deleted the leader key
        with pytest.raises(ElectionNotLeaderError):
            await k(election.proclaim(b"v2"))
        assert not election.leading
        assert await k.keys(name + b"/") == []  # proclaim did not put it back
        with pytest.raises(ElectionNotLeaderError):
            await k(election.proclaim(b"v3"))

    run(kind, etcd_endpoint, scenario)


def test_election_resign(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        election = session.election(name)
        await k(election.resign())  # not leading: nothing happens
        await k(election.campaign(b"v", timeout=10))
        await k(election.resign())
        assert not election.leading and await k.keys(name + b"/") == []
        await k(election.resign())  # twice: nothing happens
        await k(election.campaign(b"again", timeout=10))  # and it can run again
        assert (await k(election.leader())).value == b"again"
        await k(election.resign())

    run(kind, etcd_endpoint, scenario)


def test_election_observe_follows_values_and_leaders_and_closes(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        s1, s2, s3 = await k.session(), await k.session(), await k.session(k.client())
        first, second = s1.election(name), s2.election(name)
        await k(first.campaign(b"v1", timeout=10))
        observed = s3.election(name).observe()
        now = await k.next(observed)
        assert (now.key, now.value) == (first.key, b"v1")
        await k(first.proclaim(b"v1b"))
        changed = await k.next(observed)
        assert (changed.key, changed.value) == (first.key, b"v1b")
        campaigning = k.bg(second.campaign, b"v2", timeout=WAIT)
        await k.count(name + b"/", 2)
        await k(first.resign())
        await k.join(campaigning)
        new = await k.next(observed)
        assert (new.key, new.value) == (hexkey(name, s2), b"v2")
        await k(second.proclaim(b"v2b"))
        assert (await k.next(observed)).value == b"v2b"
        await k.close_iter(observed)
        assert await k.next(observed) is _END
        await k(second.resign())
        assert (await k(k.c.get(b"x"))).header.revision > 0  # the client is fine

    run(kind, etcd_endpoint, scenario)


def test_election_observe_waits_for_a_first_leader(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        observed = s2.election(name).observe()
        first = asyncio.ensure_future(k.next(observed))
        await k.settle()
        assert not first.done()
        election = s1.election(name)
        await k(election.campaign(b"first", timeout=10))
        kv = await k.join(first)
        assert (kv.key, kv.value) == (election.key, b"first")
        await k.close_iter(observed)
        await k(election.resign())

    run(kind, etcd_endpoint, scenario)


def test_election_campaign_timeout_leaves_no_candidacy(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        leader, late = s1.election(name), s2.election(name)
        await k(leader.campaign(b"one", timeout=10))
        with pytest.raises(etcdfast.Timeout):
            await k(late.campaign(b"two", timeout=0.5))
        assert not late.leading
        assert await k.keys(name + b"/") == [leader.key]
        await k(leader.resign())
        with pytest.raises(ElectionNoLeaderError):  # nobody took over
            await k(leader.leader())

    run(kind, etcd_endpoint, scenario)


def test_election_campaign_again_with_the_same_session_takes_the_new_value(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        first = session.election(name)
        await k(first.campaign(b"one", timeout=10))
        again = session.election(name)
        await k(again.campaign(b"two", timeout=2))  # Go: the session's key exists: proclaim
        assert again.key == first.key and again.revision == first.revision
        assert (await k(again.leader())).value == b"two"
        assert await k.keys(name + b"/") == [first.key]
        await k(again.resign())

    run(kind, etcd_endpoint, scenario)


def test_resume_election(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        election = session.election(name)
        await k(election.campaign(b"before", timeout=10))
        # Another process (client) resumes it with the same lease, key and revision.
        adopted = await k.session(k.client(), lease=session.id)
        resumed = adopted.resume_election(name, election.key, election.revision)
        assert resumed.leading and resumed.key == election.key and resumed.revision == election.revision
        await k(resumed.proclaim(b"after"))
        assert (await k(election.leader())).value == b"after"
        await k(resumed.resign())
        assert await k.keys(name + b"/") == []
        # A resumed election with a wrong revision does not lead.
        await k(election.campaign(b"again", timeout=10))
        stale = adopted.resume_election(name, election.key, election.revision - 1)
        with pytest.raises(ElectionNotLeaderError):
            await k(stale.proclaim(b"stale"))
        assert (await k(election.leader())).value == b"again"
        await k(election.resign())

    run(kind, etcd_endpoint, scenario)


# -- STM -----------------------------------------------------------------------------------------------

LEVELS = ["serializable_snapshot", "serializable", "repeatable_reads", "read_committed"]


@pytest.mark.parametrize("isolation", [*LEVELS, *Isolation], ids=str)
def test_stm_commits_a_transfer(kind, etcd_endpoint, etcd_prefix, isolation):
    a, b = etcd_prefix + b"a", etcd_prefix + b"b"

    async def scenario(k: Kit) -> None:
        await k(k.c.put(a, b"100"))
        await k(k.c.put(b, b"0"))

        async def transfer(tx: Any) -> None:
            from_a, to_b = int(await tx.get(a)), int(await tx.get(b))
            tx.put(a, b"%d" % (from_a - 10))
            tx.put(b, b"%d" % (to_b + 10))

        result = await k(k.c.stm(k.apply(transfer), isolation=isolation, timeout=WAIT))
        assert isinstance(result, etcdfast.TxnResult) and result.succeeded
        assert (await k.value(a), await k.value(b)) == (b"90", b"10")
        await k(k.c.stm(k.apply(transfer), isolation=isolation, timeout=WAIT))
        assert (await k.value(a), await k.value(b)) == (b"80", b"20")

    run(kind, etcd_endpoint, scenario)


def test_stm_get_put_delete(kind, etcd_endpoint, etcd_prefix):
    a, b, c, missing = (etcd_prefix + name for name in (b"a", b"b", b"c", b"missing"))

    async def scenario(k: Kit) -> None:
        await k(k.c.put(a, b"1"))
        await k(k.c.put(c, b"3"))
        seen = {}

        async def body(tx: Any) -> None:
            seen["missing"] = await tx.get(missing)
            seen["c"] = await tx.get(c)
            tx.put(b, b"2")
            seen["b"] = await tx.get(b)  # its own write
            tx.delete(a)
            seen["a"] = await tx.get(a)  # its own delete

        await k(k.c.stm(k.apply(body), timeout=WAIT))
        assert seen == {"missing": None, "c": b"3", "b": b"2", "a": None}
        assert await k.keys(etcd_prefix) == [c, b]
        assert (await k.value(b), await k.value(c)) == (b"2", b"3")

    run(kind, etcd_endpoint, scenario)


def test_stm_rev(kind, etcd_endpoint, etcd_prefix):
    a, missing = etcd_prefix + b"a", etcd_prefix + b"missing"

    async def scenario(k: Kit) -> None:
        await k(k.c.put(a, b"1"))
        put = await k(k.c.put(a, b"2"))
        revs = []

        async def body(tx: Any) -> None:
            revs.append(await tx.rev(a))
            revs.append(await tx.rev(missing))
            tx.put(a, b"3")

        await k(k.c.stm(k.apply(body), timeout=WAIT))
        assert revs == [put.header.revision, 0]

    run(kind, etcd_endpoint, scenario)


@pytest.mark.parametrize("isolation", LEVELS)
def test_stm_prefetch_reads_before_apply_in_one_call(kind, etcd_endpoint, etcd_prefix, isolation):
    a, b = etcd_prefix + b"a", etcd_prefix + b"b"

    async def scenario(k: Kit) -> None:
        await k(k.c.put(a, b"1"))
        await k(k.c.put(b, b"2"))
        calls: List[Any] = []
        original = k.c._run

        def counting(request: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(request)
            return original(request, *args, **kwargs)

        k.c._run = counting
        during: List[Any] = []

        async def body(tx: Any) -> None:
            before = len(calls)
            during.append((await tx.get(a), await tx.get(b), len(calls) - before))
            tx.put(etcd_prefix + b"sum", b"3")

        await k(k.c.stm(k.apply(body), isolation=isolation, prefetch=[a, b], timeout=WAIT))
        assert during == [(b"1", b"2", 0)]  # both came with the prefetch
        assert len(calls) == 2  # the prefetch, the commit
        assert await k.value(etcd_prefix + b"sum") == b"3"

    run(kind, etcd_endpoint, scenario)


def test_stm_timeout(kind, etcd_endpoint, etcd_prefix):
    a, b = etcd_prefix + b"a", etcd_prefix + b"b"

    async def scenario(k: Kit) -> None:
        async def slow(tx: Any) -> None:
            tx.put(a, b"late")
            await k.pause(1.0)

        with pytest.raises(etcdfast.Timeout):
            await k(k.c.stm(k.apply(slow), timeout=0.3))
        assert await k.value(a) is None

        # A body that always conflicts retries until the timeout.
        other = k.client()
        await k(k.c.put(a, b"0"))
        runs = []

        async def doomed(tx: Any) -> None:
            runs.append(await tx.get(a))
            await k(other.put(a, b"%d" % len(runs)))
            tx.put(b, b"never")

        with pytest.raises(etcdfast.Timeout):
            await k(k.c.stm(k.apply(doomed), timeout=1.0))
        assert len(runs) > 1 and await k.value(b) is None

    run(kind, etcd_endpoint, scenario)


@pytest.mark.parametrize("isolation, runs", [
    ("serializable_snapshot", 2), ("serializable", 2), ("repeatable_reads", 2), ("read_committed", 1),
])
def test_stm_retries_after_a_conflicting_write_to_a_read_key(
        kind, etcd_endpoint, etcd_prefix, isolation, runs):
    a, b = etcd_prefix + b"a", etcd_prefix + b"b"

    async def scenario(k: Kit) -> None:
        other = k.client()
        await k(k.c.put(a, b"first"))
        seen: List[Optional[bytes]] = []

        async def copy(tx: Any) -> None:
            seen.append(await tx.get(a))
            if len(seen) == 1:
                await k(other.put(a, b"second"))  # behind the STM's back, on its first run only
            tx.put(b, seen[-1])

        await k(k.c.stm(k.apply(copy), isolation=isolation, timeout=WAIT))
        assert len(seen) == runs
        assert await k.value(b) == (b"second" if runs == 2 else b"first")
        assert seen == [b"first", b"second"][:runs]

    run(kind, etcd_endpoint, scenario)


@pytest.mark.parametrize("isolation, runs", [
    ("serializable_snapshot", 2), ("serializable", 1), ("repeatable_reads", 1), ("read_committed", 1),
])
def test_stm_write_conflict_on_an_unread_key_retries_only_serializable_snapshot(
        kind, etcd_endpoint, etcd_prefix, isolation, runs):
    a, b = etcd_prefix + b"a", etcd_prefix + b"b"

    async def scenario(k: Kit) -> None:
        other = k.client()
        await k(k.c.put(a, b"read"))
        count: List[int] = []

        async def overwrite(tx: Any) -> None:
            count.append(1)
            await tx.get(a)
            if len(count) == 1:
                await k(other.put(b, b"theirs"))
            tx.put(b, b"mine")

        await k(k.c.stm(k.apply(overwrite), isolation=isolation, timeout=WAIT))
        assert len(count) == runs
        assert await k.value(b) == b"mine"

    run(kind, etcd_endpoint, scenario)


def test_stm_get_of_several_keys_returns_the_first_ones_value(kind, etcd_endpoint, etcd_prefix):
    # get(key, *more) answers for key; the others are only prefetched. (Go's
    # stm.Get(keys...) returns whichever key it finds first; this test once failed here.)
    a, b, c = etcd_prefix + b"a", etcd_prefix + b"b", etcd_prefix + b"c"

    async def scenario(k: Kit) -> None:
        await k(k.c.put(a, b"A"))
        await k(k.c.put(b, b"B"))
        seen: List[Optional[bytes]] = []

        async def body(tx: Any) -> None:
            seen.append(await tx.get(a, b, c))  # nothing read yet: fetches all three
            seen.append(await tx.get(c, a))  # c was fetched (missing): None
            seen.append(await tx.get(etcd_prefix + b"z", b))  # z unread, b read: z's value is None
            tx.put(c, b"C")
            seen.append(await tx.get(etcd_prefix + b"y", c))  # y unread, c written: None

        await k(k.c.stm(k.apply(body), timeout=WAIT))
        assert seen == [b"A", None, None, None]

    run(kind, etcd_endpoint, scenario)


class _Boom(Exception):
    pass


def test_stm_exception_from_apply_propagates_and_nothing_is_written(kind, etcd_endpoint, etcd_prefix):
    a = etcd_prefix + b"a"

    async def scenario(k: Kit) -> None:
        async def failing(tx: Any) -> None:
            await tx.get(a)
            tx.put(a, b"never")
            raise _Boom("from apply")

        with pytest.raises(_Boom):
            await k(k.c.stm(k.apply(failing), timeout=WAIT))
        assert await k.value(a) is None

    run(kind, etcd_endpoint, scenario)


def test_stm_bad_isolation_is_invalid_argument(kind, etcd_endpoint):
    async def scenario(k: Kit) -> None:
        with pytest.raises(InvalidArgumentError):
            await k(k.c.stm(lambda stm: None, isolation="snapshot"))
        with pytest.raises(InvalidArgumentError):
            await k(k.c.stm(lambda stm: None, isolation=3))

    run(kind, etcd_endpoint, scenario)


def test_async_stm_apply_may_be_a_plain_function_or_a_coroutine_function(etcd_endpoint, etcd_prefix):
    a, b = etcd_prefix + b"a", etcd_prefix + b"b"

    async def scenario(k: Kit) -> None:
        def plain(stm: Any) -> None:
            assert isinstance(stm, etcdfast.concurrency.AsyncStm)
            stm.put(a, b"plain")

        await k.c.stm(plain)

        async def coroutine(stm: Any) -> None:
            stm.put(b, await stm.get(a) + b"+async")

        await k.c.stm(coroutine)
        assert await k.value(b) == b"plain+async"

    run("async", etcd_endpoint, scenario)


# -- Recipes -------------------------------------------------------------------------------------------


def test_rwmutex_readers_share_and_a_writer_excludes(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"rw"
    under = name + b"/"

    async def scenario(k: Kit) -> None:
        s1, s2, s3 = await k.session(), await k.session(), await k.session(k.client())
        reader1, reader2, writer = s1.rwmutex(name), s2.rwmutex(name), s3.rwmutex(name)
        await k(reader1.rlock(timeout=10))
        await k(reader2.rlock(timeout=10))  # two readers at once
        assert [key.startswith(under + b"read/") for key in await k.keys(under)] == [True, True]
        writing = k.bg(writer.lock, timeout=WAIT)
        await k.count(under, 3)
        await k.settle()
        assert not writing.done()
        # A reader after a waiting writer waits for it: it times out, and cleans up.
        late = s1.rwmutex(name)
        with pytest.raises(etcdfast.Timeout):
            await k(late.rlock(timeout=0.5))
        assert len(await k.keys(under)) == 3
        await k(reader1.unlock())
        await k.settle()
        assert not writing.done()
        await k(reader2.unlock())
        await k.join(writing)
        assert await k.keys(under) == [writer.key.key]
        assert writer.key.key.startswith(under + b"write/")
        reading = k.bg(late.rlock, timeout=WAIT)
        await k.count(under, 2)
        await k.settle()
        assert not reading.done()  # the writer excludes readers
        await k(writer.unlock())
        await k.join(reading)
        await k(late.unlock())
        assert await k.keys(under) == []

    run(kind, etcd_endpoint, scenario)


def test_rwmutex_lock_timeouts_clean_up(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"rw"
    under = name + b"/"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        writer = s1.rwmutex(name)
        await k(writer.lock(timeout=10))
        for attempt in (s2.rwmutex(name).rlock, s2.rwmutex(name).lock):
            with pytest.raises(etcdfast.Timeout):
                await k(attempt(timeout=0.5))
            assert await k.keys(under) == [writer.key.key]
        await k(writer.unlock())
        reader = s1.rwmutex(name)
        await k(reader.rlock(timeout=10))
        blocked = s2.rwmutex(name)
        with pytest.raises(etcdfast.Timeout):
            await k(blocked.lock(timeout=0.5))
        assert blocked.key is None and await k.keys(under) == [reader.key.key]
        await k(reader.unlock())
        await k(blocked.lock(timeout=10))  # free now
        await k(blocked.unlock())

    run(kind, etcd_endpoint, scenario)


def test_barrier_wait_blocks_until_release(kind, etcd_endpoint, etcd_prefix):
    key = etcd_prefix + b"barrier"

    async def scenario(k: Kit) -> None:
        barrier = k.c.barrier(key)
        await k(barrier.wait(timeout=5))  # not held: at once
        await k(barrier.hold())
        assert await k.keys(key) == [key]
        other = k.client().barrier(key)
        with pytest.raises(etcdfast.Timeout):
            await k(other.wait(timeout=0.5))
        waiting = [k.bg(other.wait, timeout=WAIT), k.bg(k.c.barrier(key).wait, timeout=WAIT)]
        await k.settle()
        assert not any(w.done() for w in waiting)
        await k(barrier.release())
        for w in waiting:
            await k.join(w)
        assert await k.keys(key) == []

    run(kind, etcd_endpoint, scenario)


def test_barrier_hold_twice_is_recipe_key_exists(kind, etcd_endpoint, etcd_prefix):
    key = etcd_prefix + b"barrier"

    async def scenario(k: Kit) -> None:
        barrier = k.c.barrier(key)
        await k(barrier.hold())
        with pytest.raises(RecipeKeyExistsError):
            await k(barrier.hold())
        with pytest.raises(RecipeKeyExistsError):
            await k(k.client().barrier(key).hold())
        await k(barrier.release())
        await k(barrier.hold())  # free again
        await k(barrier.release())

    run(kind, etcd_endpoint, scenario)


def test_double_barrier_enter_and_leave_together(kind, etcd_endpoint, etcd_prefix):
    key = etcd_prefix + b"double"

    async def scenario(k: Kit) -> None:
        sessions = [await k.session(k.client()) for _ in range(3)]
        barriers = [s.double_barrier(key, 3) for s in sessions]
        entering = []
        for number, barrier in enumerate(barriers[:2], start=1):
            entering.append(k.bg(barrier.enter, timeout=WAIT))
            await k.count(key + b"/waiters/", number)
        await k.settle()
        assert not any(e.done() for e in entering)  # nobody passes before the third
        await k(barriers[2].enter(timeout=WAIT))
        for e in entering:
            await k.join(e)
        assert await k.value(key + b"/ready") == b""
        leaving = [k.bg(barrier.leave, timeout=WAIT) for barrier in barriers[:2]]
        await k.settle()
        assert not any(w.done() for w in leaving)
        await k(barriers[2].leave(timeout=WAIT))
        for w in leaving:
            await k.join(w)
        assert await k.keys(key) == []

    run(kind, etcd_endpoint, scenario)


def test_double_barrier_fourth_process_is_too_many_clients(kind, etcd_endpoint, etcd_prefix):
    key = etcd_prefix + b"double"

    async def scenario(k: Kit) -> None:
        sessions = [await k.session() for _ in range(4)]
        barriers = [s.double_barrier(key, 3) for s in sessions]
        entering = [k.bg(barrier.enter, timeout=WAIT) for barrier in barriers[:2]]
        await k.count(key + b"/waiters/", 2)
        await k(barriers[2].enter(timeout=WAIT))
        for e in entering:
            await k.join(e)
        with pytest.raises(TooManyClientsError):
            await k(barriers[3].enter(timeout=WAIT))
        # contrib/recipes leaves the refused waiter's key (the others' leave()
        # would wait for it): it goes with its session.
        await k(sessions[3].close())
        await k.count(key + b"/waiters/", 3)
        leaving = [k.bg(barrier.leave, timeout=WAIT) for barrier in barriers[:3]]
        for w in leaving:
            await k.join(w)
        assert await k.keys(key) == []

    run(kind, etcd_endpoint, scenario)


def test_double_barrier_enter_timeout_leaves_no_waiter_key(kind, etcd_endpoint, etcd_prefix):
    # A timed-out enter() deletes its waiter key: left behind, it would count as a
    # process at the barrier (this test once failed here).
    key = etcd_prefix + b"double"

    async def scenario(k: Kit) -> None:
        s1, s2, s3 = await k.session(), await k.session(), await k.session()
        quitter = s1.double_barrier(key, 3)
        with pytest.raises(etcdfast.Timeout):
            await k(quitter.enter(timeout=0.5))
        leftover = await k.keys(key + b"/waiters/")
        # What the leftover key does: two live processes pass a barrier for three.
        first = k.bg(s2.double_barrier(key, 3).enter, timeout=WAIT)
        await k.count(key + b"/waiters/", len(leftover) + 1)
        second = s3.double_barrier(key, 3)
        if leftover:
            await k(second.enter(timeout=5))
            await k.join(first, 5)
        assert leftover == [], "a timed-out enter() left its waiter key, counted as a live process"

    run(kind, etcd_endpoint, scenario)


def test_queue_is_fifo(kind, etcd_endpoint, etcd_prefix):
    prefix = etcd_prefix + b"queue"

    async def scenario(k: Kit) -> None:
        queue = k.c.queue(prefix)
        for item in (b"a", b"b", b"c", b"d"):
            await k(queue.enqueue(item))
        assert len(await k.keys(prefix + b"/")) == 4
        got = [await k(queue.dequeue(timeout=10)) for _ in range(2)]
        await k(queue.enqueue(b"e"))
        got += [await k(k.c.queue(prefix).dequeue(timeout=10)) for _ in range(3)]
        assert got == [b"a", b"b", b"c", b"d", b"e"]
        assert await k.keys(prefix) == []
        with pytest.raises(etcdfast.Timeout):
            await k(queue.dequeue(timeout=0.5))

    run(kind, etcd_endpoint, scenario)


def test_queue_dequeue_waits_and_concurrent_dequeuers_get_distinct_items(kind, etcd_endpoint, etcd_prefix):
    prefix = etcd_prefix + b"queue"

    async def scenario(k: Kit) -> None:
        waiting = k.bg(k.c.queue(prefix).dequeue, timeout=WAIT)
        await k.settle()
        assert not waiting.done()
        await k(k.client().queue(prefix).enqueue(b"x"))
        assert await k.join(waiting) == b"x"

        clients = [k.c, k.client(), k.client()]
        dequeuers = [k.bg(c.queue(prefix).dequeue, timeout=WAIT) for c in clients for _ in range(2)]
        await k.settle()
        assert not any(d.done() for d in dequeuers)
        items = [b"item%d" % i for i in range(6)]
        for item in items:
            await k(k.c.queue(prefix).enqueue(item))
        got = [await k.join(d) for d in dequeuers]
        assert sorted(got) == items  # each item once, to one dequeuer
        assert await k.keys(prefix) == []

    run(kind, etcd_endpoint, scenario)


def test_priority_queue_order_and_key_layout(kind, etcd_endpoint, etcd_prefix):
    prefix = etcd_prefix + b"pq"

    async def scenario(k: Kit) -> None:
        queue = k.c.priority_queue(prefix)
        for value, priority in ((b"p5-first", 5), (b"p1", 1), (b"p5-second", 5), (b"p3", 3),
                                (b"p0", 0), (b"p65535", 65535), (b"p5-third", 5)):
            await k(queue.enqueue(value, priority))
        keys = await k.keys(prefix + b"/")
        assert keys[0] == prefix + b"/00005/0000000000000000"
        assert sorted(keys) == [
            prefix + b"/00000/0000000000000000", prefix + b"/00001/0000000000000000",
            prefix + b"/00003/0000000000000000", prefix + b"/00005/0000000000000000",
            prefix + b"/00005/0000000000000001", prefix + b"/00005/0000000000000002",
            prefix + b"/65535/0000000000000000",
        ]
        got = [await k(queue.dequeue(timeout=10)) for _ in range(7)]
        assert got == [b"p0", b"p1", b"p3", b"p5-first", b"p5-second", b"p5-third", b"p65535"]
        await k(queue.enqueue(b"default"))  # priority 0 by default
        assert await k(queue.dequeue(timeout=10)) == b"default"
        assert await k.keys(prefix + b"/") == []

    run(kind, etcd_endpoint, scenario)


@pytest.mark.parametrize("priority", [-1, 65536, True, 1.5, "1", None])
def test_priority_queue_priority_out_of_range_is_value_error(kind, etcd_endpoint, etcd_prefix, priority):
    prefix = etcd_prefix + b"pq"

    async def scenario(k: Kit) -> None:
        queue = k.c.priority_queue(prefix)
        with pytest.raises(ValueError):
            await k(queue.enqueue(b"x", priority))
        assert await k.keys(prefix) == []

    run(kind, etcd_endpoint, scenario)


def test_priority_queue_dequeue_waits_for_an_enqueue(kind, etcd_endpoint, etcd_prefix):
    prefix = etcd_prefix + b"pq"

    async def scenario(k: Kit) -> None:
        waiting = k.bg(k.c.priority_queue(prefix).dequeue, timeout=WAIT)
        await k.settle()
        assert not waiting.done()
        await k(k.client().priority_queue(prefix).enqueue(b"late", 7))
        assert await k.join(waiting) == b"late"
        with pytest.raises(etcdfast.Timeout):
            await k(k.c.priority_queue(prefix).dequeue(timeout=0.5))

    run(kind, etcd_endpoint, scenario)


# -- The server's Lock and Election services -----------------------------------------------------------


def test_server_lock_waits_until_unlock(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        held = await k(k.c.lock(name, lease=s1.id, timeout=10))
        assert isinstance(held, etcdfast.LockResult) and held.key == hexkey(name, s1)
        waiting = k.bg(k.client().lock, name, lease=s2.id, timeout=WAIT)
        await k.count(name + b"/", 2)
        await k.settle()
        assert not waiting.done()
        await k(k.c.unlock(held))
        second = await k.join(waiting)
        assert second.key == hexkey(name, s2)
        assert await k.keys(name + b"/") == [second.key]
        await k(k.c.unlock(second.key))  # by key too
        assert await k.keys(name + b"/") == []

    run(kind, etcd_endpoint, scenario)


def test_server_lock_and_client_mutex_exclude_each_other(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        held = await k(k.c.lock(name, lease=s1.id, timeout=10))
        mutex = s2.mutex(name)
        assert await k(mutex.try_lock()) is False
        with pytest.raises(etcdfast.Timeout):
            await k(mutex.lock(timeout=0.5))
        assert await k.keys(name + b"/") == [held.key]
        await k(k.c.unlock(held))
        await k(mutex.lock(timeout=10))
        waiting = k.bg(k.client().lock, name, lease=s1.id, timeout=WAIT)
        await k.count(name + b"/", 2)
        await k.settle()
        assert not waiting.done()
        await k(mutex.unlock())
        assert (await k.join(waiting)).key == hexkey(name, s1)
        await k(k.c.unlock(hexkey(name, s1)))

    run(kind, etcd_endpoint, scenario)


def test_server_election_campaign_proclaim_leader_resign(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        won = await k(k.c.election_campaign(name, b"v1", lease=session.id, timeout=10))
        assert isinstance(won, etcdfast.CampaignResult)
        leader = won.leader
        assert (leader.name, leader.key, leader.lease) == (name, hexkey(name, session), session.id)
        kv = await k(k.c.election_leader(name))
        assert (kv.key, kv.value, kv.create_revision) == (leader.key, b"v1", leader.rev)
        await k(k.c.election_proclaim(leader, b"v2"))
        assert (await k(k.c.election_leader(name))).value == b"v2"
        # The client-side Election sees the same leader.
        assert (await k(session.election(name).leader())).value == b"v2"
        await k(k.c.election_resign(leader))
        assert await k.keys(name + b"/") == []

    run(kind, etcd_endpoint, scenario)


def test_server_election_second_candidate_and_client_election_interoperate(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        client_side = s1.election(name)
        await k(client_side.campaign(b"client", timeout=10))
        kv = await k(k.c.election_leader(name))
        assert (kv.key, kv.value) == (client_side.key, b"client")
        waiting = k.bg(k.client().election_campaign, name, b"server", lease=s2.id, timeout=WAIT)
        await k.count(name + b"/", 2)
        await k.settle()
        assert not waiting.done()
        await k(client_side.resign())
        won = await k.join(waiting)
        assert won.leader.key == hexkey(name, s2)
        assert (await k(client_side.leader())).value == b"server"
        await k(k.c.election_resign(won.leader))

    run(kind, etcd_endpoint, scenario)


def test_server_election_observe(kind, etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        won = await k(k.c.election_campaign(name, b"v1", lease=s1.id, timeout=10))
        observed = await k(k.client().election_observe(name))
        assert (await k.next(observed)).value == b"v1"
        await k(k.c.election_proclaim(won.leader, b"v2"))
        assert (await k.next(observed)).value == b"v2"
        waiting = k.bg(k.client().election_campaign, name, b"next", lease=s2.id, timeout=WAIT)
        await k.count(name + b"/", 2)
        await k(k.c.election_resign(won.leader))
        second = await k.join(waiting)
        kv = await k.next(observed)
        assert (kv.key, kv.value) == (second.leader.key, b"next")
        await k.close_iter(observed)
        await k(k.c.election_resign(second.leader))

    run(kind, etcd_endpoint, scenario)


def test_server_election_errors_are_the_election_errors(kind, etcd_endpoint, etcd_prefix):
    # etcd's Election service sends "election: no leader"/"election: not leader" with
    # code UNKNOWN: they map to the errors the client-side Election raises (they
    # once arrived as a plain EtcdError).
    name = etcd_prefix + b"election"

    async def scenario(k: Kit) -> None:
        session = await k.session()
        with pytest.raises(etcdfast.EtcdError) as no_leader:
            await k(k.c.election_leader(name))
        won = await k(k.c.election_campaign(name, b"v1", lease=session.id, timeout=10))
        await k(k.c.election_resign(won.leader))
        with pytest.raises(etcdfast.EtcdError) as not_leader:
            await k(k.c.election_proclaim(won.leader, b"stale"))
        assert await k.keys(name + b"/") == []
        assert isinstance(no_leader.value, ElectionNoLeaderError), repr(no_leader.value)
        assert isinstance(not_leader.value, ElectionNotLeaderError), repr(not_leader.value)

    run(kind, etcd_endpoint, scenario)


# -- Plans: interrupted, cancelled, timed out mid-call ------------------------------------------------


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def test_sync_lock_interrupted_by_ctrl_c_leaves_no_key(etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"
    with etcdfast.Client(etcd_endpoint, timeout=10) as client, \
            etcdfast.Client(etcd_endpoint, timeout=10) as observer:
        with client.session(ttl=30) as s1, client.session(ttl=30) as s2:
            held, waiter = s1.mutex(name), s2.mutex(name)
            held.lock(timeout=10)
            mine = hexkey(name, s2)
            main = threading.main_thread().ident
            assert threading.get_ident() == main
            sent = threading.Event()

            def interrupt() -> None:
                deadline = time.monotonic() + WAIT
                while not observer.get(mine).kvs:
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.05)
                time.sleep(SETTLE)  # into its wait for the holder's key to go
                sent.set()
                signal.pthread_kill(main, signal.SIGUSR1)  # type: ignore[arg-type]

            previous = signal.signal(signal.SIGUSR1, _raise_keyboard_interrupt)
            timer = threading.Thread(target=interrupt, name="ctrl-c", daemon=True)
            try:
                timer.start()
                with pytest.raises(KeyboardInterrupt):
                    waiter.lock(timeout=WAIT)
            finally:
                timer.join(WAIT)
                signal.signal(signal.SIGUSR1, previous)
            assert sent.is_set()
            assert not waiter.locked and waiter.key is None
            assert [kv.key for kv in client.get(name + b"/", prefix=True).kvs] == [held.key]
            held.unlock()  # the client and the lock still work
            waiter.lock(timeout=10)
            assert waiter.key == mine
            waiter.unlock()


def test_async_lock_cancelled_leaves_no_key_and_stays_cancelled(etcd_endpoint, etcd_prefix):
    name = etcd_prefix + b"lock"

    async def scenario(k: Kit) -> None:
        s1, s2 = await k.session(), await k.session()
        held, waiter = s1.mutex(name), s2.mutex(name)
        await held.lock(timeout=10)
        task = asyncio.ensure_future(waiter.lock(timeout=WAIT))
        await k.count(name + b"/", 2)
        await k.settle()  # into its wait
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=WAIT)
        assert task in done and task.cancelled()
        assert not waiter.locked and waiter.key is None
        assert await k.keys(name + b"/") == [held.key]
        # Cancelling while the election campaign waits cleans up likewise.
        leader, candidate = s1.election(name + b"-e"), s2.election(name + b"-e")
        await leader.campaign(b"a", timeout=10)
        task = asyncio.ensure_future(candidate.campaign(b"b", timeout=WAIT))
        await k.count(name + b"-e/", 2)
        await k.settle()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=WAIT)
        assert task in done and task.cancelled()
        assert await k.keys(name + b"-e/") == [leader.key]
        await held.unlock()
        await waiter.lock(timeout=10)
        await waiter.unlock()

    run("async", etcd_endpoint, scenario)


@pytest.mark.parametrize("recipe", ["mutex", "election", "rwmutex"])
def test_timeout_while_the_first_put_is_in_flight_leaves_no_key(kind, etcd_server, etcd_prefix, recipe):
    # The put reaches etcd and is applied, but its answer comes after the deadline
    # (a proxy adds 1 s each way; the timeout is 1.5 s): the plan must still clean up.
    # The key is known before its put is sent, so a put applied but whose answer
    # was lost is cleaned up too (the election and the rwmutex once left it: an
    # orphan that blocked everyone until the session ended).
    name = etcd_prefix + recipe.encode()

    with FaultProxy(etcd_server.endpoint) as proxy:
        async def scenario(k: Kit) -> None:
            slow = k.client(proxy.endpoint)
            session = await k.session(slow, ttl=60)
            assert (await k(slow.get(b"warm-up"))).header.revision > 0  # connected before the delay
            if recipe == "mutex":
                handle: Any = session.mutex(name)
                attempt = functools.partial(handle.lock, timeout=1.5)
            elif recipe == "election":
                handle = session.election(name)
                attempt = functools.partial(handle.campaign, b"v", timeout=1.5)
            else:
                handle = session.rwmutex(name)
                attempt = functools.partial(handle.lock, timeout=1.5)
            proxy.delay(1.0)
            try:
                with pytest.raises(etcdfast.Timeout):
                    await k(attempt())
            finally:
                proxy.pass_through()
            assert await k.keys(name + b"/") == []

        run(kind, etcd_server.endpoint, scenario)
