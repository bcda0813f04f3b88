"""``load`` and ``dump``: many keys in and out, fast, with a progress bar.

``load`` streams records into ``Client.put_many`` (batched Txns, several in
flight); ``dump`` streams a prefix out of ``Client.iter_range_pages`` (one
consistent revision, constant memory). Formats are described in
:mod:`etcdfast.cli.formats`; ``dump`` followed by ``load`` restores every key
and value byte for byte.

What a failed or interrupted ``load`` leaves behind is always stated as a
number of input records: every record before it is committed, so
``--skip N`` resumes exactly there (records written twice on resume get the
same value again). A bad record stops the load before anything after it is
written (exit 2, with its line number); a server error exits 1; Ctrl-C 130.
"""

from __future__ import annotations

import itertools
import os
import stat
from typing import IO, Any, Dict, Iterator, Optional, Tuple

from .._progress import ProgressBar
from ..api import bulk as _bulk
from ..errors import BulkWriteError, EtcdError
from ._context import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_IO,
    EXIT_OK,
    CliError,
    Commands,
    Context,
)
from ._flags import ArgError, Args
from .formats import FORMATS, InputError, RecordReader, format_for_path, open_reader, open_writer
from .formats import __doc__ as FORMATS_DOC
from .kv import parse_lease, to_bytes
from .output import dumps, header_json

__all__ = ["register"]

# Room for the protobuf framing of one put inside a Txn (tags and lengths).
_ITEM_OVERHEAD = 32


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ArgError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise ArgError(f"must be > 0, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ArgError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise ArgError(f"must be >= 0, got {value}")
    return value


def _input(ctx: Context, path: str) -> Tuple[IO[bytes], str, Optional[int]]:
    """The binary input stream, its name for messages, and its size if a regular file."""
    if path == "-":
        stream = getattr(ctx.stdin, "buffer", None)
        if stream is None:
            raise CliError("load: stdin is not a binary stream")
        return stream, "stdin", None
    try:
        stream = open(path, "rb")
        info = os.fstat(stream.fileno())
    except OSError as exc:
        raise CliError(f"load: cannot read {path}: {exc.strerror or exc}", EXIT_IO) from None
    if stat.S_ISDIR(info.st_mode):
        stream.close()
        raise CliError(f"load: {path} is a directory", EXIT_IO)
    return stream, path, info.st_size if stat.S_ISREG(info.st_mode) else None


def _resume_hint(ctx: Context, args: Args, done: int) -> str:
    return f"resume with: etcdfast load {args.file} --skip {done}" + (
        f" --format {args.format}" if args.format else "")


def run_load(ctx: Context, args: Args) -> int:
    max_batch_bytes = args.max_batch_bytes or _bulk.DEFAULT_MAX_BATCH_BYTES
    fmt = args.format or (format_for_path(args.file) if args.file != "-" else None)
    stream, name, size = _input(ctx, args.file)
    try:
        return _load(ctx, args, stream, name, size, fmt, max_batch_bytes)
    finally:
        if stream is not getattr(ctx.stdin, "buffer", None):
            stream.close()


def _load(ctx: Context, args: Args, stream: IO[bytes], name: str, size: Optional[int],
          fmt: Optional[str], max_batch_bytes: int) -> int:
    prefix = to_bytes(args.prefix)
    try:
        reader = open_reader(stream, fmt, prefix=prefix, max_item_bytes=max_batch_bytes - _ITEM_OVERHEAD)
    except InputError as exc:
        raise CliError(f"load: {name}: {exc}; nothing was written", EXIT_INVALID_INPUT) from None
    skip = args.skip
    items: Iterator[Tuple[bytes, bytes]] = itertools.islice(iter(reader), skip, None)

    if args.dry_run:
        try:
            count = sum(1 for _ in items)
        except InputError as exc:
            raise CliError(f"load: {name}: {exc} ({reader.records} good records before it)",
                           EXIT_INVALID_INPUT) from None
        _report(ctx, {"records": count, "skipped": min(skip, reader.records), "format": reader.format},
                f"{count} records OK ({reader.format}), nothing written (--dry-run)")
        return EXIT_OK

    client = ctx.client()
    total = reader.total - skip if reader.total is not None else None
    bar = ProgressBar(max(total, 0) if total is not None else None, label="load", unit="keys",
                      stream=ctx.stderr, enabled=ctx.progress_enabled())
    committed = [0]

    def progress(n: int) -> None:
        committed[0] = n
        if size and reader.total is None and reader.bytes_read:
            # Records in the whole file, estimated from how far the reader is.
            estimate = int(reader.records * size / reader.bytes_read) - skip
            bar.total = max(estimate, n)
        bar.update(n)

    try:
        result = client.put_many(
            items, batch_ops=args.batch_ops, max_batch_bytes=max_batch_bytes,
            concurrency=args.concurrency, lease=args.lease, progress=progress,
        )
    except KeyboardInterrupt:
        bar.close()
        done = skip + committed[0]
        raise CliError(
            f"load interrupted: {_first(done, name)} committed; "
            + _resume_hint(ctx, args, done), EXIT_INTERRUPTED,
        ) from None
    except BulkWriteError as exc:
        bar.close()
        raise _load_failure(ctx, args, name, reader, skip, exc) from None
    bar.close()
    rate = result.keys / result.elapsed if result.elapsed > 0 else 0.0
    _report(
        ctx,
        {"keys": result.keys, "batches": result.batches, "first_revision": result.first_revision,
         "last_revision": result.last_revision, "elapsed": round(result.elapsed, 6),
         "skipped": skip},
        f"loaded {result.keys} keys in {result.batches} batches "
        f"(revisions {result.first_revision}..{result.last_revision}) "
        f"in {result.elapsed:.2f}s, {rate:,.0f} keys/s",
    )
    return EXIT_OK


def _first(n: int, name: str) -> str:
    if n == 0:
        return f"no record of {name} is"
    return f"the first record of {name} is" if n == 1 else f"the first {n} records of {name} are"


def _before(n: int) -> str:
    return ("no record before it is" if n == 0 else "the record before it is" if n == 1
            else f"the {n} records before it are")


def _load_failure(ctx: Context, args: Args, name: str, reader: RecordReader, skip: int,
                  exc: BulkWriteError) -> CliError:
    cause = exc.cause
    if isinstance(cause, InputError):
        # Everything before the bad record is committed (or was, in an earlier
        # run, when it lies inside the --skip range); nothing after it is written.
        done = min(skip + exc.committed, reader.records)
        return CliError(
            f"load: {name}: {cause}; {_before(done)} committed and nothing after "
            f"it was written; fix it, then " + _resume_hint(ctx, args, done), EXIT_INVALID_INPUT,
        )
    if isinstance(cause, OSError):
        done = skip + exc.committed
        return CliError(f"load: reading {name} failed: {cause}; {_first(done, name)} committed; "
                        + _resume_hint(ctx, args, done), EXIT_INVALID_INPUT)
    done = skip + exc.committed
    message = (f"load: {type(cause).__name__}: {cause}; {_first(done, name)} "
               f"committed; " + _resume_hint(ctx, args, done))
    if exc.uncertain or exc.committed_after:
        message += " (some later records may already be written; resuming writes them again)"
    code = EXIT_ERROR if isinstance(cause, EtcdError) or cause is None else EXIT_INVALID_INPUT
    return CliError(message, code)


def _report(ctx: Context, fields: Dict[str, Any], text: str) -> None:
    if ctx.write_out == "json":
        ctx.out.line(dumps(fields))
    else:
        ctx.out.line(text)


# -- dump ------------------------------------------------------------------------


def run_dump(ctx: Context, args: Args) -> int:
    fmt = args.format or (format_for_path(args.output) if args.output else None) or "jsonl"
    key = to_bytes(args.prefix)
    where: Dict[str, Any] = {"from_key": True} if args.from_key else {"prefix": True}
    client = ctx.client()
    head = client.get(key, count_only=True, revision=args.rev, **where)
    revision = args.rev or head.header.revision
    to_stdout = args.output in (None, "-")
    if to_stdout:
        stream = getattr(ctx.stdout, "buffer", None)
        if stream is None:
            raise CliError("dump: stdout is not a binary stream")
        ctx.stdout.flush()
    else:
        try:
            stream = open(args.output, "wb")
        except OSError as exc:
            raise CliError(f"dump: cannot write {args.output}: {exc.strerror or exc}", EXIT_IO) from None
    bar = ProgressBar(head.count, label="dump", unit="keys", stream=ctx.stderr,
                      enabled=ctx.progress_enabled())
    strip = key if args.strip_prefix else b""
    writer = open_writer(stream, fmt, strip=strip, header=header_json(head.header))
    written = 0
    try:
        # page_size None: pages sized by bytes (etcdfast.bulk.PAGE_BYTES).
        for page in client.iter_range_pages(key, revision=revision, page_size=args.page_size,
                                            **where):
            for kv in page:
                writer.write(kv)
            written += len(page)
            bar.update(written)
        writer.close()
    except KeyboardInterrupt:
        bar.close()
        raise CliError(f"dump interrupted after {written} keys; the output is incomplete",
                       EXIT_INTERRUPTED) from None
    finally:
        bar.close()
        if not to_stdout:
            stream.close()
    summary = f"dumped {written} keys at revision {revision}"
    if not to_stdout:
        _report(ctx, {"keys": written, "revision": revision, "file": args.output, "format": fmt},
                f"{summary} to {args.output} ({fmt})")
    elif bar.enabled:
        ctx.note(summary)
    return EXIT_OK


def register(commands: Commands) -> None:
    p = commands.add(
        "load", run_load, help="write many keys from a file (JSON Lines, CSV, etcdctl JSON)",
        description=__doc__, epilog=FORMATS_DOC,
    )
    p.add_argument("file", metavar="FILE|-", help="input file, or - for stdin")
    p.add_argument("--format", choices=FORMATS, help="input format (default: from the file name, or sniffed)")
    p.add_argument("--prefix", default="", help="prepend this to every key")
    p.add_argument("--skip", type=_non_negative, default=0, metavar="N",
                   help="skip the first N records (to resume an interrupted load)")
    p.add_argument("--lease", type=parse_lease, default=0, help="attach every key to this lease (hex ID)")
    p.add_argument("--batch-ops", type=_positive, default=None, metavar="N",
                   help=f"puts per Txn (default {_bulk.DEFAULT_BATCH_OPS}, etcd's --max-txn-ops)")
    p.add_argument("--max-batch-bytes", type=_positive, default=None, metavar="BYTES",
                   help=f"bytes per Txn (default {_bulk.DEFAULT_MAX_BATCH_BYTES})")
    p.add_argument("--concurrency", type=_positive, default=None, metavar="N",
                   help=f"Txns in flight (default {_bulk.DEFAULT_CONCURRENCY})")
    p.add_argument("--dry-run", action="store_true", help="only read and check the input")

    p = commands.add(
        "dump", run_dump, help="write every key under a prefix to a file or stdout",
        description="Write every key (and value) under PREFIX, read at one revision, "
                    "in a format `load` reads back.", epilog=FORMATS_DOC,
    )
    p.add_argument("prefix", metavar="PREFIX", help="key prefix ('' for the whole keyspace)")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from -o's name, else jsonl)")
    p.add_argument("--from-key", action="store_true", help="every key >= PREFIX instead of the prefix")
    p.add_argument("--strip-prefix", action="store_true", help="write keys without PREFIX")
    p.add_argument("--rev", type=_non_negative, default=0, help="read at this revision (default: now)")
    p.add_argument("--page-size", type=_positive, default=None, metavar="N",
                   help="keys per range request (default: about 8 MiB of keys and values each)")

