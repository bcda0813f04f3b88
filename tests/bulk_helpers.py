"""Helpers shared by test_bulk.py and test_bulk_async.py."""

from __future__ import annotations

import itertools
from typing import List, Sequence

import pytest

from etcdfast.testing import EtcdBinaryNotFound, find_crash_safe_etcd_binary
from etcdfast.types import KeyValue


def revision_runs(kvs: Sequence[KeyValue]) -> List[int]:
    """Lengths of the runs of equal mod_revision, in key order."""
    return [len(list(group)) for _, group in itertools.groupby(kvs, key=lambda kv: kv.mod_revision)]


def crash_safe_etcd() -> str:
    """See etcdfast.testing.find_crash_safe_etcd_binary (CI installs Debian's 3.4)."""
    try:
        return find_crash_safe_etcd_binary()
    except EtcdBinaryNotFound as exc:
        pytest.skip(str(exc))
