"""The bulk-load batch packer (``_codec.batch``), on both twins and against each other.

``item_size`` must be exactly what a put adds to the TxnRequest, so that the
packer cuts a batch at ``max_batch_bytes`` and not a byte later or earlier;
every payload is the wire twin's ``encode_put_txn`` of the batch's items. The
twins must cut at the same items, order batches the same way (``after``) and
refuse the same bad items with the same exception type *and message*, leaving
a refused item untaken.
"""

from __future__ import annotations

import collections

import pytest
from codec_helpers import same
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from etcdfast.errors import EmptyKeyError, InvalidArgumentError, RequestTooLargeError

# Lengths around every varint boundary a field can cross (1, 2, 3 and 4 bytes).
LENGTH = st.one_of(
    st.integers(min_value=0, max_value=300),
    st.sampled_from([0x3F, 0x7E, 0x7F, 0x80, 0x3FFB, 0x3FFF, 0x4000, 0x1FFFFF, 0x200000]),
)
LEASE = st.sampled_from([0, 1, 0x7F, 0x80, 2**40, 2**63 - 1])


def state(batch):
    """Everything a batch is, comparable across twins (``None``: no batch)."""
    if batch is None:
        return None
    return (batch.seq, batch.start, batch.stop, batch.payload, batch.items, batch.after)


def attempt(call, *args):
    """``(what the call returned, None)`` or ``(None, (exception type, message))``."""
    try:
        return call(*args), None
    except Exception as exc:  # type and message are both part of the contract
        return None, (type(exc), str(exc))


def both(twins, *args):
    """A packer from each twin, built with the same arguments."""
    return twins.fast.batch.BatchPacker(*args), twins.pure.batch.BatchPacker(*args)


def test_twins_share_batch_and_the_fast_packer_is_compiled(twins):
    assert twins.fast.batch.Batch is twins.pure.batch.Batch
    assert twins.fast.batch.__file__.endswith((".so", ".pyd"))
    batch = twins.pure.batch.Batch(3, 10, 20, b"xyz", [], -1)
    assert repr(batch) == "<Batch 3 items [10, 20) 3 bytes>"


# -- sizes --------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key_len=LENGTH, value_len=LENGTH, lease=LEASE)
def test_item_size_is_what_encode_put_txn_writes(twins, key_len, value_len, lease):
    key, value = b"k" * key_len, b"v" * value_len
    written = len(twins.fast.wire.encode_put_txn([(key, value)], lease))
    for twin in (twins.fast, twins.pure):
        assert twin.batch.BatchPacker(1, 1, lease).item_size(key, value) == written


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.lists(st.tuples(st.binary(min_size=1, max_size=200), st.binary(max_size=300)),
                   min_size=1, max_size=40, unique_by=lambda item: item[0]),
    lease=LEASE,
    batch_ops=st.integers(min_value=1, max_value=8),
    max_batch_bytes=st.integers(min_value=700, max_value=3000),
)
def test_payloads_are_the_encoded_items_and_cuts_are_tight(twins, items, lease, batch_ops, max_batch_bytes):
    # Distinct keys, so only batch_ops and max_batch_bytes cut: each batch is
    # full, in ops or in bytes (the next item would not have fitted).
    for twin in (twins.fast, twins.pure):
        packer = twin.batch.BatchPacker(batch_ops, max_batch_bytes, lease)
        batches = [b for b in map(packer.add, items) if b is not None] + [packer.flush()]
        assert [b.start for b in batches[1:]] == [b.stop for b in batches[:-1]]
        assert batches[0].start == 0 and batches[-1].stop == len(items) == packer.index
        for batch, following in zip(batches, batches[1:] + [None]):
            assert batch.items == items[batch.start:batch.stop]
            assert batch.payload == twin.wire.encode_put_txn(batch.items, lease)
            assert len(batch.items) <= batch_ops and len(batch.payload) <= max_batch_bytes
            if following is not None:
                grown = len(batch.payload) + packer.item_size(*items[batch.stop])
                assert len(batch.items) == batch_ops or grown > max_batch_bytes


def test_cut_at_batch_ops(codec):
    packer = codec.batch.BatchPacker(3, 1 << 20, 0)
    out = [packer.add((b"k%d" % i, b"v")) for i in range(7)]
    assert [i for i, b in enumerate(out) if b is not None] == [3, 6]  # the item that did not fit
    assert [(b.start, b.stop) for b in (out[3], out[6], packer.flush())] == [(0, 3), (3, 6), (6, 7)]
    assert packer.flush() is None


@pytest.mark.parametrize("lease", [0, 2**40])
def test_cut_at_max_batch_bytes_to_the_byte(codec, lease):
    items = [(b"key%d" % i, b"v" * 100) for i in range(7)]
    size = codec.batch.BatchPacker(1, 1, lease).item_size(*items[0])
    for max_batch_bytes, per_batch in [(3 * size, 3), (3 * size - 1, 2), (3 * size + 1, 3), (size, 1)]:
        packer = codec.batch.BatchPacker(100, max_batch_bytes, lease)
        first = next(b for b in map(packer.add, items) if b is not None)
        assert len(first.items) == per_batch and len(first.payload) == per_batch * size, max_batch_bytes
    # One item of exactly max_batch_bytes fits alone; one byte more is refused.
    assert codec.batch.BatchPacker(8, size, lease).add(items[0]) is None
    with pytest.raises(RequestTooLargeError):
        codec.batch.BatchPacker(8, size - 1, lease).add(items[0])


# -- keys written twice -------------------------------------------------------


def test_repeated_key_starts_a_new_batch_that_waits(codec):
    packer = codec.batch.BatchPacker(100, 1 << 20, 0)
    assert packer.add((b"a", b"1")) is None
    assert packer.add((b"b", b"1")) is None
    first = packer.add((b"a", b"2"))  # etcd refuses a Txn that writes a key twice
    assert (first.seq, first.start, first.stop, first.after) == (0, 0, 2, -1)
    assert packer.add((b"b", b"2")) is None  # b is in batch 0, not in the one being filled
    second = packer.add((b"a", b"3"))
    assert (second.seq, second.start, second.stop, second.after) == (1, 2, 4, 0)
    third = packer.flush()
    assert (third.seq, third.start, third.stop, third.after) == (2, 4, 5, 1)  # the latest writer


def test_key_of_an_unfinished_earlier_batch_sets_after(codec):
    packer = codec.batch.BatchPacker(2, 1 << 20, 0)
    packer.add((b"a", b"1"))
    packer.add((b"b", b"1"))
    zero = packer.add((b"c", b"1"))
    packer.add((b"d", b"1"))
    one = packer.add((b"a", b"2"))  # a: batch 0, still unfinished
    assert (zero.after, one.after) == (-1, -1)
    packer.add((b"c", b"2"))  # c: batch 1 ... and batch 0 holds a
    two = packer.flush()
    assert (two.seq, two.items, two.after) == (2, [(b"a", b"2"), (b"c", b"2")], 1)


def test_release_forgets_only_the_batchs_own_keys(codec):
    packer = codec.batch.BatchPacker(1, 1 << 20, 0)
    packer.add((b"a", b"1"))
    zero = packer.add((b"a", b"2"))
    one = packer.add((b"b", b"1"))
    assert (zero.items, one.items, one.after) == ([(b"a", b"1")], [(b"a", b"2")], 0)
    packer.release(zero)  # b"a" now belongs to batch 1: it must stay indexed
    assert zero.items is None
    packer.release(zero)  # twice: nothing left to forget
    two = packer.add((b"a", b"3"))
    assert two.items == [(b"b", b"1")]
    assert packer.flush().after == 1
    packer.release(two)
    packer.add((b"b", b"2"))  # batch 2 finished: nothing to wait for
    assert packer.flush().after == -1
    made_elsewhere = codec.batch.Batch(9, 0, 1, b"", [(b"zz", b"")], -1)
    packer.release(made_elsewhere)  # holds no key of ours: nothing happens
    assert made_elsewhere.items is None


# -- item types ----------------------------------------------------------------

Pair = collections.namedtuple("Pair", "key value")


class Key(bytes):
    pass


GOOD_ITEMS = [
    ((b"k", b"v"), (b"k", b"v")),
    (("k", "v"), (b"k", b"v")),
    (("kl\u00e9", "\u20ac"), ("kl\u00e9".encode(), "\u20ac".encode())),
    ((Key(b"sub"), Key(b"class")), (b"sub", b"class")),  # stored as plain bytes
    ([b"list", b"pair"], (b"list", b"pair")),
    (Pair(b"named", b"tuple"), (b"named", b"tuple")),
    ("ab", (b"a", b"b")),  # any iterable of two: a 2-character str too
    ((b"k", b""), (b"k", b"")),
]


@pytest.mark.parametrize(("item", "stored"), GOOD_ITEMS)
def test_keys_and_values_are_stored_as_bytes(twins, item, stored):
    batches = []
    for packer in both(twins, 8, 1 << 20, 0):
        packer.add(item)
        batch = packer.flush()
        assert batch.items == [stored] and type(batch.items[0][0]) is bytes
        assert type(batch.items[0][1]) is bytes
        batches.append(state(batch))
    assert same(*batches)


# name -> (item maker, the error): makers, because one twin would use up an iterator.
BAD_ITEMS = {
    "None": (lambda: None, TypeError),
    "int": (lambda: 42, TypeError),
    "one value": (lambda: (b"k",), ValueError),
    "three values": (lambda: (b"k", b"v", b"x"), ValueError),
    "empty tuple": (lambda: (), ValueError),
    "list of three": (lambda: [b"k", b"v", b"x"], ValueError),
    "str of three": (lambda: "abc", ValueError),
    "iterator of one": (lambda: iter([b"k"]), ValueError),
    "iterator of three": (lambda: iter([b"k", b"v", b"x"]), ValueError),
    "int key": (lambda: (1, b"v"), TypeError),
    "None value": (lambda: (b"k", None), TypeError),
    "bytearray key": (lambda: (bytearray(b"k"), b"v"), TypeError),
    "bytearray value": (lambda: (b"k", bytearray(b"v")), TypeError),
    "memoryview key": (lambda: (memoryview(b"k"), b"v"), TypeError),
    "memoryview value": (lambda: (b"k", memoryview(b"v")), TypeError),
    "empty key": (lambda: (b"", b"v"), EmptyKeyError),
    "empty str key": (lambda: ("", "v"), EmptyKeyError),
    "empty key, huge value": (lambda: (b"", b"v" * 1000), EmptyKeyError),
    "huge value": (lambda: (b"k", b"v" * 1000), RequestTooLargeError),
    "huge key": (lambda: (b"\xff" * 1000, b""), RequestTooLargeError),
    "unpaired surrogate": (lambda: ("\ud800", b"v"), UnicodeEncodeError),
}


@pytest.mark.parametrize("name", sorted(BAD_ITEMS))
def test_bad_item_same_error_and_not_taken(twins, name):
    make, error = BAD_ITEMS[name]
    outcomes = []
    for packer in both(twins, 8, 500, 7):
        packer.add((b"a", b"1"))
        packer.add((b"b", b"1"))
        with pytest.raises(error) as info:
            packer.add(make())
        assert type(info.value) is error or error is UnicodeEncodeError
        outcomes.append((type(info.value), str(info.value)))
        assert packer.index == 2  # not taken...
        assert packer.add((b"c", b"1")) is None and packer.index == 3  # ...and the packer goes on
        batch = packer.flush()
        assert batch.items == [(b"a", b"1"), (b"b", b"1"), (b"c", b"1")]
        assert batch.payload == twins.pure.wire.encode_put_txn(batch.items, 7)
    assert outcomes[0] == outcomes[1]
    if name not in CONVERSION_ERRORS:
        assert outcomes[0][1].startswith("item 2: ") or outcomes[0][1].startswith("item 2 (key ")


# Raised by the keys twin's to_bytes, which knows nothing of items.
CONVERSION_ERRORS = {name for name, (_, error) in BAD_ITEMS.items() if error is UnicodeEncodeError} | {
    name for name in BAD_ITEMS if name.endswith(("key", "value")) and BAD_ITEMS[name][1] is TypeError
}


def test_fill_stops_at_the_first_batch_and_at_a_failing_source(codec):
    packer = codec.batch.BatchPacker(2, 500, 0)
    source = iter([(b"a", b"1"), (b"b", b"1"), (b"c", b"1"), (b"d", b"1")])
    batch = packer.fill(source)
    assert batch.items == [(b"a", b"1"), (b"b", b"1")] and packer.index == 3
    assert next(source) == (b"d", b"1")  # nothing read past the item that cut the batch
    assert packer.fill(iter([])) is None and packer.index == 3

    def failing():
        yield (b"e", b"1")
        raise OSError("input broke")

    with pytest.raises(OSError, match="input broke"):
        packer.fill(failing())
    assert packer.index == 4  # the items before the failure are taken
    with pytest.raises(EmptyKeyError):
        packer.fill(iter([(b"", b"x")]))
    assert packer.index == 4
    assert packer.flush().items == [(b"c", b"1"), (b"e", b"1")]


def test_bad_pair_keeps_the_original_error_as_cause(codec):
    with pytest.raises(ValueError) as info:
        codec.batch.BatchPacker(8, 500, 0).add((b"k",))
    assert str(info.value) == "item 0: expected a (key, value) pair, got tuple of length 1"
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((128, 1 << 20, 2**63), InvalidArgumentError),
        ((128, 1 << 20, -1), InvalidArgumentError),
        ((0, 1 << 20, 0), InvalidArgumentError),
        ((128, 0, 0), InvalidArgumentError),
        ((2**63, 1, 0), InvalidArgumentError),
        ((128, 2**70, 0), InvalidArgumentError),
        ((1.5, 1 << 20, 0), TypeError),
        ((128, "1024", 0), TypeError),
        ((128, 1 << 20, None), TypeError),
    ],
)
def test_bad_packer_arguments(twins, args, error):
    (_, fast), (_, pure) = (attempt(twin.batch.BatchPacker, *args) for twin in (twins.fast, twins.pure))
    assert fast == pure and fast[0] is error, (fast, pure)


def test_largest_arguments(twins):
    largest = 2**63 - 1
    for packer in both(twins, largest, largest, largest):
        assert (packer.batch_ops, packer.max_batch_bytes, packer.lease, packer.index) == (largest,) * 3 + (0,)
        packer.add((b"k", b"v"))
        assert packer.flush().payload == twins.pure.wire.encode_put_txn([(b"k", b"v")], largest)


def test_settings_are_read_only(codec):
    packer = codec.batch.BatchPacker(8, 500, 0)
    for name in ("batch_ops", "max_batch_bytes", "lease", "index"):
        with pytest.raises(AttributeError):
            setattr(packer, name, 5)


# -- the twins side by side ----------------------------------------------------

KEY = st.sampled_from([b"a", b"b", b"c", "c", "\u00e9", Key(b"a"), b"\x00" * 130])
VALUE = st.one_of(st.binary(max_size=90), st.sampled_from(["", "v", b"v" * 200]))
ITEM = st.one_of(
    st.tuples(KEY, VALUE),
    st.lists(KEY, min_size=1, max_size=3),
    st.sampled_from([None, 7, (b"", b"v"), (b"k", 1), (bytearray(b"k"), b"v"), (b"k", b"v" * 5000)]),
)


class PackersAgree(RuleBasedStateMachine):
    """Random adds, flushes and releases on both twins' packers: same batches,
    same errors, same index, and the batches keep the packer's promises."""

    twins = None  # set by the test below

    @initialize(batch_ops=st.integers(min_value=1, max_value=4),
                max_batch_bytes=st.integers(min_value=120, max_value=700), lease=LEASE)
    def start(self, batch_ops, max_batch_bytes, lease):
        self.fast, self.pure = both(self.twins, batch_ops, max_batch_bytes, lease)
        self.lease = lease
        self.unfinished = []  # (fast batch, pure batch)
        self.keys_of = {}  # seq -> the keys the batch writes

    def check(self, fast, pure):
        assert same(state(fast), state(pure)), (state(fast), state(pure))
        if pure is None:
            return
        keys = [k for k, _ in pure.items]
        assert len(set(keys)) == len(keys)  # never a key twice in one Txn
        assert 0 < len(keys) <= self.pure.batch_ops
        assert len(pure.payload) <= self.pure.max_batch_bytes
        assert pure.payload == self.twins.pure.wire.encode_put_txn(pure.items, self.lease)
        assert pure.after == -1 or (pure.after < pure.seq and set(keys) & self.keys_of[pure.after])
        self.keys_of[pure.seq] = set(keys)
        self.unfinished.append((fast, pure))

    @rule(item=ITEM)
    def add(self, item):
        (fast, fast_error), (pure, pure_error) = attempt(self.fast.add, item), attempt(self.pure.add, item)
        assert fast_error == pure_error, (item, fast_error, pure_error)
        self.check(fast, pure)

    @rule(items=st.lists(ITEM, max_size=6))
    def fill(self, items):
        # fill() is add() in a loop that stops at the first batch or error:
        # both twins must stop at the same item, leaving the rest unread.
        sources = iter(items), iter(items)
        (fast, fast_error), (pure, pure_error) = (
            attempt(self.fast.fill, sources[0]), attempt(self.pure.fill, sources[1])
        )
        assert fast_error == pure_error, (items, fast_error, pure_error)
        assert list(sources[0]) == list(sources[1])
        self.check(fast, pure)

    @rule()
    def flush(self):
        self.check(self.fast.flush(), self.pure.flush())

    @precondition(lambda self: self.unfinished)
    @rule(data=st.data())
    def release(self, data):
        fast, pure = self.unfinished.pop(data.draw(st.integers(0, len(self.unfinished) - 1)))
        self.fast.release(fast)
        self.pure.release(pure)

    @invariant()
    def same_index(self):
        if hasattr(self, "fast"):
            assert self.fast.index == self.pure.index


def test_packers_agree(twins):
    PackersAgree.twins = twins
    PackersAgree.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
    PackersAgree.TestCase().runTest()
