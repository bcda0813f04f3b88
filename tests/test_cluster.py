"""Cluster membership against real etcd servers, through both clients.

Membership changes run on servers these tests start themselves, never on the
session's shared server. The full learner story (add, start, promote, update,
move the leader, remove) runs a real second member.
"""

from __future__ import annotations

import inspect
import time
from typing import Callable, Iterator, TypeVar

import pytest
from client_drivers import Driver

import etcdfast
from etcdfast import Member, MemberAddResult, MemberListResult
from etcdfast.errors import (
    BadLeaderTransfereeError,
    InvalidArgumentError,
    LearnerNotReadyError,
    MemberBadURLsError,
    MemberNotFoundError,
    MemberNotLearnerError,
    NotLeaderError,
    UnhealthyClusterError,
)
from etcdfast.testing import EtcdServer, free_port

T = TypeVar("T")

UNKNOWN_ID = 0x0BAD_0000_0000_0001


@pytest.fixture(scope="module")
def server() -> Iterator[EtcdServer]:
    """A single-member server of this module's own (membership is changed here)."""
    with EtcdServer(name="solo") as s:
        yield s


@pytest.fixture(params=["sync", "async"])
def cli(request: pytest.FixtureRequest, server: EtcdServer) -> Iterator[Driver]:
    with Driver(request.param, server.endpoint, timeout=10) as driver:
        yield driver


def retry(call: Callable[[], T], errors: tuple, *, seconds: float, pause: float = 0.2) -> T:
    """``call()`` until it stops raising one of ``errors``; at most ``seconds`` long."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except errors:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)


def test_member_list_of_a_single_server(cli: Driver, server: EtcdServer) -> None:
    for linearizable in (False, True):
        result = cli.member_list(linearizable=linearizable)
        assert isinstance(result, MemberListResult)
        [member] = result.members
        assert isinstance(member, Member)
        assert member.name == "solo" and member.started
        assert member.peer_urls == [server.peer_url]
        assert member.client_urls == [server.client_url]
        assert member.is_learner is False
        assert member.id == result.header.member_id == cli.status().header.member_id
        assert result.get(member.id) == member and result.get(UNKNOWN_ID) is None
        assert repr(member).startswith(f"Member(id={member.id:#x}, name='solo'")


def test_add_an_unstarted_learner_then_remove_it(cli: Driver, server: EtcdServer) -> None:
    peer = f"http://127.0.0.1:{free_port()}"
    added = cli.member_add([peer], is_learner=True)
    try:
        assert isinstance(added, MemberAddResult)
        assert added.member.is_learner and added.member.peer_urls == [peer]
        assert not added.member.started and added.member.client_urls == []
        assert {m.id for m in added.members} == {added.member.id, added.header.member_id}
        listed = cli.member_list(linearizable=True)
        assert listed.get(added.member.id) == added.member
        # A learner does not vote: the one voting member still has quorum.
        assert cli.status().leader == listed.header.member_id
        assert cli.put(b"/cluster-test/learner-pending", b"ok").header.revision > 0
    finally:
        remaining = cli.member_remove(added.member)  # a Member works as well as an ID
    assert [m.name for m in remaining.members] == ["solo"]
    assert cli.member_list().get(added.member.id) is None


def test_unknown_member_is_member_not_found(cli: Driver) -> None:
    with pytest.raises(MemberNotFoundError):
        cli.member_remove(UNKNOWN_ID)
    with pytest.raises(MemberNotFoundError):
        cli.member_update(UNKNOWN_ID, ["http://127.0.0.1:1"])
    with pytest.raises(MemberNotFoundError):
        cli.member_promote(UNKNOWN_ID)


def test_bad_peer_urls_are_typed_errors(cli: Driver) -> None:
    for bad in (["not a url"], ["ftp://127.0.0.1:2380"], ["http://127.0.0.1"]):
        with pytest.raises(MemberBadURLsError):
            cli.member_add(bad, is_learner=True)
    # Refused before sending: no URL, a non-string, a zero or non-int ID.
    with pytest.raises(InvalidArgumentError):
        cli.member_add([], is_learner=True)
    with pytest.raises(TypeError):
        cli.member_add([b"http://127.0.0.1:1"], is_learner=True)
    with pytest.raises(InvalidArgumentError):
        cli.member_remove(0)
    with pytest.raises(TypeError):
        cli.member_remove("1")
    assert len(cli.member_list().members) == 1


def test_promoting_a_voting_member_is_refused(cli: Driver) -> None:
    own_id = cli.status().header.member_id
    with pytest.raises(MemberNotLearnerError):
        cli.member_promote(own_id)
    with pytest.raises(BadLeaderTransfereeError):
        cli.move_leader(UNKNOWN_ID)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_learner_joins_is_promoted_updated_leads_and_is_removed(kind: str) -> None:
    """A real second member: learner -> voter -> leader -> follower -> removed (< 30 s)."""
    started = time.monotonic()
    with EtcdServer(name="m1") as first, Driver(kind, first.endpoint, timeout=10) as c1:
        first_id = c1.status().header.member_id
        client_port, peer_port = free_port(), free_port()
        peer = f"http://127.0.0.1:{peer_port}"
        added = c1.member_add(peer, is_learner=True)  # one URL as a plain str
        learner_id = added.member.id
        second = EtcdServer(
            name="m2", client_port=client_port, peer_port=peer_port,
            extra_args=["--initial-cluster", f"m1={first.peer_url},m2={peer}",
                        "--initial-cluster-state", "existing"],
        )
        try:
            second.start()
            with Driver(kind, second.endpoint, timeout=10) as c2:
                # It joined, as a learner that follows the leader.
                joined = c1.member_list(linearizable=True).get(learner_id)
                assert joined is not None and joined.name == "m2" and joined.is_learner
                assert joined.client_urls == [second.client_url]
                status2 = c2.status()
                assert status2.is_learner and status2.leader == first_id
                with pytest.raises(BadLeaderTransfereeError):
                    c1.move_leader(learner_id)  # a learner cannot lead

                promoted = retry(lambda: c1.member_promote(learner_id), (LearnerNotReadyError,),
                                 seconds=10)
                member = promoted.get(learner_id)
                assert member is not None and not member.is_learner
                # etcd checks "caught up" before "is a learner": while the
                # promotion itself replicates it may still say not ready.
                with pytest.raises(MemberNotLearnerError):
                    retry(lambda: c1.member_promote(learner_id), (LearnerNotReadyError,), seconds=10)

                updated = c1.member_update(learner_id, [peer])
                assert updated.get(learner_id).peer_urls == [peer]  # type: ignore[union-attr]

                # Both members hold the same data at the same revision.
                c1.put(b"/cluster-test/two", b"members")
                revision = c1.status().header.revision
                retry(lambda: _same_hash(c1, c2, revision), (AssertionError,), seconds=5)

                with pytest.raises(NotLeaderError):
                    c2.move_leader(first_id)  # only the leader can hand over
                c1.move_leader(learner_id)
                assert c1.status().leader == learner_id and c2.status().is_leader
                c2.move_leader(first_id)
                assert c1.status().is_leader

                # Removal waits until the leader has seen m2 connected for
                # etcd's health interval (5 s): UnhealthyClusterError until then.
                remaining = retry(lambda: c1.member_remove(learner_id), (UnhealthyClusterError,),
                                  seconds=15, pause=0.5)
                assert [m.id for m in remaining.members] == [first_id]
        finally:
            second.close()
        assert [m.id for m in c1.member_list(linearizable=True).members] == [first_id]
        assert c1.put(b"/cluster-test/alone", b"again").header.revision > 0
    assert time.monotonic() - started < 30


def _same_hash(c1: Driver, c2: Driver, revision: int) -> None:
    assert c1.hash_kv(revision).hash == c2.hash_kv(revision).hash


def test_methods_show_the_builders_signatures_and_docs() -> None:
    for cls in (etcdfast.Client, etcdfast.AsyncClient):
        assert list(inspect.signature(cls.member_add).parameters) == [
            "self", "peer_urls", "is_learner", "timeout"]
        for name in ("member_list", "member_add", "member_remove", "member_update", "member_promote"):
            assert getattr(cls, name).__doc__
