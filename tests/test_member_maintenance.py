"""One member at a time, on a real 3-member cluster: calls pinned with
``endpoint=`` (status, hash_kv, alarms, defragment), ordered reads
(``client.ordered()``, Go's ``ordering``) when a member that is behind
answers, per-call ``require_leader`` on a member cut off from its leader, and
``reject_old_cluster`` against Debian's etcd 3.4.

Both clients (the async one through ``client_drivers.Driver``). The cluster
is shared by the module; a test that freezes members brings them back and
waits for a leader before it ends.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest
from client_drivers import KINDS, Driver

from etcdfast import (
    FutureRevisionError,
    NoLeaderError,
    OldClusterError,
    Op,
    StaleReadError,
    Timeout,
    Unavailable,
)
from etcdfast.testing import EtcdCluster, EtcdServer, FaultProxy, etcd_version

#: Bound of every wait for the cluster to reach a state.
WAIT_S = 30.0
DEBIAN_ETCD = "/usr/bin/etcd"


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    with EtcdCluster(3) as c:
        yield c


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture()
def driver(kind, cluster) -> Iterator[Driver]:
    with Driver(kind, cluster.endpoints, timeout=10) as d:
        yield d


def member_ids(driver: Driver) -> Dict[str, int]:
    """``host:port`` of each member -> its ID, from the member list."""
    return {url.split("://", 1)[1]: member.id
            for member in driver.member_list().members for url in member.client_urls}


def poll(what: Callable[[], Any], accept: Callable[[Any], bool], errors: tuple = (),
         wait: float = WAIT_S) -> Any:
    """``what()`` until ``accept`` takes its answer (errors in ``errors`` count as no), bounded."""
    deadline = time.monotonic() + wait
    while True:
        try:
            answer = what()
            if accept(answer):
                return answer
        except errors as exc:
            answer = exc
        assert time.monotonic() < deadline, f"no acceptable answer in {wait} s; last: {answer!r}"
        time.sleep(0.05)


# -- per-endpoint maintenance ---------------------------------------------------------------


def test_status_hash_kv_and_alarms_of_each_member(driver, cluster, etcd_prefix):
    ids = member_ids(driver)
    assert len(ids) == 3
    revision = driver.put(etcd_prefix + b"k", b"v").header.revision
    hashes = {}
    leaders = set()
    for member in cluster.members:
        endpoint = member.endpoint
        status = driver.status(endpoint=endpoint)
        assert status.header.member_id == ids[endpoint]  # that member answered, not a balanced one
        leaders.add(status.leader)
        assert driver.alarms(endpoint=endpoint) == []
        # A follower may not have applied the write yet: ask until it has.
        answer = poll(lambda e=endpoint: driver.hash_kv(revision, endpoint=e), lambda a: True,
                      errors=(FutureRevisionError,))
        assert answer.header.member_id == ids[endpoint]
        hashes[endpoint] = answer.hash
        assert driver.hash(endpoint=endpoint).header.member_id == ids[endpoint]
    assert len(leaders) == 1 and leaders <= set(ids.values())  # every member names one leader
    assert len(set(hashes.values())) == 1, hashes  # the same history on each member


def test_defragment_one_member_while_the_others_serve(driver, cluster, etcd_prefix):
    target, others = cluster.members[0].endpoint, [m.endpoint for m in cluster.members[1:]]
    blob = b"x" * 4096
    driver.put_many(((etcd_prefix + b"%05d" % i, blob) for i in range(1500)))
    driver.delete(etcd_prefix, prefix=True)
    compacted = driver.put(etcd_prefix + b"after", b"1").header.revision
    driver.compact(compacted, physical=True)
    before = {e: driver.status(endpoint=e).db_size for e in [target, *others]}
    with Driver(driver.kind, others, timeout=10) as rest:
        served: List[int] = []
        failures: List[BaseException] = []
        stop = threading.Event()

        def serve() -> None:  # the other members keep answering writes and reads
            try:
                for n in range(10_000):
                    if stop.is_set():
                        return
                    rest.put(etcd_prefix + b"during", b"%d" % n)
                    served.append(int(rest.get_value(etcd_prefix + b"during")))
            except BaseException as exc:  # reported below
                failures.append(exc)

        writer = threading.Thread(target=serve, name="test-defrag-writer")
        writer.start()
        try:
            driver.defragment(endpoint=target, timeout=60)
        finally:
            stop.set()
            writer.join(WAIT_S)
        assert not failures, failures
        assert served == list(range(len(served))) and served
    # etcd's DefragmentResponse carries no header: the file sizes tell which member ran it.
    after = {e: driver.status(endpoint=e).db_size for e in [target, *others]}
    assert after[target] < before[target], (before, after)
    # Only that member was defragmented: the others keep their (larger) files.
    for endpoint in others:
        assert after[endpoint] >= before[endpoint] * 0.9, (before, after)


# -- ordering: a member that is behind answers --------------------------------------------


def test_an_ordered_view_refuses_a_read_from_a_member_that_is_behind(kind, cluster, etcd_prefix):
    """Go's ordering/kv_test.go, with real processes.

    Go stops a member and restarts it alone; a lone etcd 3.5 process does not
    even open its client port before it has a leader, so here the member is
    frozen (SIGSTOP) instead -- the *leader*: the others elect a new one,
    which probes the frozen member once and sends it nothing more until it
    answers, so the write that follows never reaches it, not even into its
    socket buffers. It is cut off from the client too (a FaultProxy
    resetting its connections) while the write commits and the views read
    it; then the other two are frozen and cut off and it comes back alone,
    unable to catch up: its serializable answers are stale."""
    proxies = [FaultProxy(member.endpoint) for member in cluster.members]
    key = etcd_prefix + b"k"
    try:
        with Driver(kind, [p.endpoint for p in proxies], timeout=5, retry_backoff=(0.05, 0.5),
                    max_retries=10) as client:
            refusing = client.view(client.ordered())
            reported: List[StaleReadError] = []

            def report_then_refuse(error: StaleReadError) -> None:
                reported.append(error)
                if len(reported) >= 2:  # the first time: ask again; then refuse
                    raise error

            reporting = client.view(client.ordered(on_violation=report_then_refuse))
            client.put(key, b"old")
            behind = cluster.leader()
            others = [i for i in range(3) if i != behind]
            proxies[behind].reset()
            cluster.pause(behind)
            cluster.wait_for_leader(WAIT_S)
            new = client.put(key, b"new").header.revision
            for view in (refusing, reporting):
                assert view.get(key).kvs[0].value == b"new"
                assert view.revision >= new
            for i in others:
                proxies[i].reset()
                cluster.pause(i)
            cluster.resume(behind)
            proxies[behind].pass_through()
            # A plain client takes the stale answer as it is...
            stale = poll(lambda: client.get(key, serializable=True, timeout=2), lambda a: True,
                         errors=(Unavailable, Timeout))
            assert stale.header.revision < new and stale.kvs[0].value == b"old"
            # ...an ordered view never does.
            with pytest.raises(StaleReadError) as refused:
                refusing.get(key, serializable=True)
            assert refused.value.revision < refused.value.seen and refused.value.seen >= new
            with pytest.raises(StaleReadError):
                refusing.txn(success=[Op.get(key, serializable=True)])  # a read-only txn: served locally
            with pytest.raises(StaleReadError) as handled:
                reporting.get(key, serializable=True)
            assert handled.value is reported[-1]
            assert len(reported) == 2
            assert all(e.revision < e.seen and e.seen >= new for e in reported)
            assert refusing.revision >= new  # a refused read does not lower what was seen
    finally:
        for i in range(3):
            cluster.resume(i)
        for proxy in proxies:
            proxy.close()
        cluster.wait_for_leader(WAIT_S)


# -- require_leader, per call ------------------------------------------------------------


def test_require_leader_per_call_on_a_member_cut_off_from_its_leader(kind, cluster, etcd_prefix):
    isolated = cluster.members[0]
    key = etcd_prefix + b"k"
    with Driver(kind, isolated.endpoint, timeout=5) as client:  # the client's default: False
        client.put(key, b"1")
        try:
            for i in (1, 2):
                cluster.pause(i)
            # Once the member knows it has no leader, it refuses at once.
            error = poll(lambda: _raised(lambda: client.get(key, require_leader=True, timeout=1)),
                         lambda e: isinstance(e, NoLeaderError))
            assert isinstance(error, NoLeaderError)
            for call in (lambda: client.get_value(key, require_leader=True, timeout=2),
                         lambda: client.put(key, b"2", require_leader=True, timeout=2),
                         lambda: client.txn(success=[Op.get(key)], require_leader=True, timeout=2),
                         lambda: client.grant(10, require_leader=True, timeout=2)):
                with pytest.raises(NoLeaderError):
                    call()
            # Without it (the client's default) a serializable read is answered locally.
            assert client.get(key, serializable=True).kvs[0].value == b"1"
            with pytest.raises(NoLeaderError):
                watch = client.watch(key, require_leader=True)
                watch.get(timeout=10)
        finally:
            for i in (1, 2):
                cluster.resume(i)
            cluster.wait_for_leader(WAIT_S)
        # The same client works normally again.
        assert poll(lambda: client.get_value(key, require_leader=True), lambda v: v == b"1",
                    errors=(NoLeaderError, Timeout, Unavailable)) == b"1"


def _raised(call: Callable[[], Any]) -> Any:
    """What ``call`` raised (an EtcdError), or its answer."""
    try:
        return call()
    except (NoLeaderError, Timeout) as exc:
        return exc


# -- reject_old_cluster --------------------------------------------------------------------


@pytest.fixture(scope="module")
def old_etcd() -> Iterator[EtcdServer]:
    """Debian's etcd 3.4 (CI installs it; without it the test is skipped, except in CI)."""
    if not os.access(DEBIAN_ETCD, os.X_OK) or etcd_version(DEBIAN_ETCD)[:2] != (3, 4):
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Debian's etcd 3.4 at {DEBIAN_ETCD}")
        pytest.skip(f"no etcd 3.4 at {DEBIAN_ETCD}")
    with EtcdServer(DEBIAN_ETCD) as server:
        yield server


def test_reject_old_cluster(kind, old_etcd, cluster):
    with Driver(kind, old_etcd.endpoint, timeout=5, reject_old_cluster=(3, 5)) as client:
        with pytest.raises(OldClusterError) as refused:
            client.get("k")
        assert refused.value.version.startswith("3.4.")
        assert old_etcd.endpoint in refused.value.endpoint
        with pytest.raises(OldClusterError):  # still refused: the check is not skipped the next time
            client.put("k", "v")
    passing = ((old_etcd.endpoint, True), (cluster.endpoints, (3, 5)), (cluster.endpoints, True))
    for endpoints, reject in passing:
        with Driver(kind, endpoints, timeout=5, reject_old_cluster=reject) as client:
            assert client.get("/reject-old-cluster/k").kvs == []
    # One old endpoint among new ones is enough to refuse.
    with Driver(kind, [cluster.members[0].endpoint, old_etcd.endpoint], timeout=5,
                reject_old_cluster=(3, 5)) as client:
        with pytest.raises(OldClusterError):
            client.get("k")
