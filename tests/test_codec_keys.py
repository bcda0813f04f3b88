"""Key normalisation and range arithmetic, on both twins."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etcdfast.errors import EmptyKeyError, InvalidArgumentError

# Go clientv3's getPrefix on these inputs (op.go): increment the last byte
# below 0xff and cut after it; no such byte means "all keys" (b"\0").
PREFIX_TABLE = [
    (b"a", b"b"),
    (b"a\xff", b"b"),
    (b"ab\xff\xff", b"ac"),
    (b"a\xfe\xff", b"a\xff"),
    (b"\xff", b"\x00"),
    (b"\xff\xff", b"\x00"),
    (b"", b"\x00"),
    (b"/app/", b"/app0"),
    (b"\x00", b"\x01"),
]


@pytest.mark.parametrize(("prefix", "end"), PREFIX_TABLE)
def test_prefix_range_end(codec, prefix, end):
    assert codec.keys.prefix_range_end(prefix) == end


def test_prefix_range_end_never_mutates_shared_bytes(codec):
    # CPython shares one-byte bytes objects; a result must be a fresh object.
    assert codec.keys.prefix_range_end(b"a") == b"b"
    assert b"a" == bytes([97]) and b"b" == bytes([98])


@pytest.mark.parametrize("value", [None, 1, 1.5, bytearray(b"x"), memoryview(b"x"), ["a"]])
def test_to_bytes_rejects_other_types(codec, value):
    with pytest.raises(TypeError):
        codec.keys.to_bytes(value)


def test_to_bytes(codec):
    assert codec.keys.to_bytes("clé") == "clé".encode()
    assert codec.keys.to_bytes(b"\xff\x00") == b"\xff\x00"
    with pytest.raises(UnicodeEncodeError):
        codec.keys.to_bytes("\udc80")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("k", None, False, False), (b"k", b"")),
        (("k", "m", False, False), (b"k", b"m")),
        (("k", None, True, False), (b"k", b"l")),
        (("", None, True, False), (b"\x00", b"\x00")),
        (("k", None, False, True), (b"k", b"\x00")),
        (("", None, False, True), (b"\x00", b"\x00")),
        ((b"\xff", None, True, False), (b"\xff", b"\x00")),
    ],
)
def test_resolve_range(codec, args, expected):
    assert codec.keys.resolve_range(*args) == expected


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("", None, False, False), EmptyKeyError),
        ((b"", "z", False, False), EmptyKeyError),
        (("k", "z", True, False), InvalidArgumentError),
        (("k", "z", False, True), InvalidArgumentError),
        (("k", None, True, True), InvalidArgumentError),
        ((5, None, False, False), TypeError),
    ],
)
def test_resolve_range_errors(codec, args, error):
    with pytest.raises(error):
        codec.keys.resolve_range(*args)


def test_empty_key_error_is_a_value_error():
    assert issubclass(EmptyKeyError, ValueError)


@settings(max_examples=300, deadline=None)
@given(
    key=st.one_of(st.binary(max_size=12), st.text(max_size=6)),
    end=st.one_of(st.none(), st.binary(max_size=6)),
    prefix=st.booleans(),
    from_key=st.booleans(),
)
def test_twins_agree_on_ranges(twins, key, end, prefix, from_key):
    def outcome(keys):
        try:
            return keys.resolve_range(key, end, prefix, from_key)
        except Exception as exc:  # the exception type is part of the contract
            return type(exc)

    assert outcome(twins.fast.keys) == outcome(twins.pure.keys)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=16))
def test_prefix_end_is_the_least_upper_bound(twins, prefix):
    end = twins.fast.keys.prefix_range_end(prefix)
    assert end == twins.pure.keys.prefix_range_end(prefix)
    if end == b"\x00":
        assert prefix.rstrip(b"\xff") == b""
    else:
        # Every key with the prefix sorts below end; end itself lacks the prefix.
        assert prefix + b"\xff" * 4 < end and not end.startswith(prefix)
