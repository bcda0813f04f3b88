"""Helpers shared by test_bulk.py and test_bulk_async.py."""

from __future__ import annotations

import itertools
from typing import List, Sequence

from conftest import crash_safe_etcd_binary

from etcdfast.types import KeyValue


def revision_runs(kvs: Sequence[KeyValue]) -> List[int]:
    """Lengths of the runs of equal mod_revision, in key order."""
    return [len(list(group)) for _, group in itertools.groupby(kvs, key=lambda kv: kv.mod_revision)]


def crash_safe_etcd() -> str:
    """See conftest.crash_safe_etcd_binary."""
    return crash_safe_etcd_binary()
