"""Reading a recording: fast on good files, forgiving and precise on damaged ones.

The gzip stream is inflated with ``zlib`` in a background thread (zlib releases the GIL, so
inflating overlaps with decoding on a second core), cut at line ends into large chunks, and
each chunk decoded in one ``msgspec`` call (``decode_lines``). Only a chunk that fails is
decoded again line by line, to count and name the bad lines. A gzip stream that simply stops
(a recorder killed between flushes) yields everything up to its last sync point and is
flagged ``truncated``; it is not an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import queue
import threading
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgspec

from replay.errors import RecordingError
from replay.recording import FORMAT, VERSION, Entry, Header
from wire import SCHEMA_VERSION

READ_BLOCK = 1 << 20  # compressed bytes per read
INFLATE_SLICE = 64 * 1024  # compressed bytes per inflate call
QUEUE_BLOCKS = 8  # inflated blocks the reader thread may run ahead
MAX_SAMPLES = 20  # bad lines named in the stats; the rest are only counted
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class ReadStats:
    """What reading found, beyond the entries themselves."""

    lines: int = 0  # message lines decoded
    bad_lines: int = 0
    samples: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    truncated: bool = False  # the gzip stream ended without its trailer
    damaged: str = ""  # why reading stopped early on corrupt data ("" if it did not)
    compressed_read: int = 0
    sha256: str = ""  # of the whole file, once read to the end

    def bad(self, line: int, why: str) -> None:
        self.bad_lines += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append((line, why))

    def warnings(self) -> list[str]:
        out = [f"line {n}: {why}" for n, why in self.samples]
        if self.bad_lines > len(self.samples):
            out.append(f"... {self.bad_lines - len(self.samples)} more bad lines")
        if self.truncated:
            out.append("the file ends without a gzip trailer (recorder killed?); read up to there")
        if self.damaged:
            out.append(f"stopped early: {self.damaged}")
        return out


class _Inflater:
    """Yields inflated blocks of a gzip file (several members allowed); counts and hashes."""

    def __init__(self, file: BinaryIO, stats: ReadStats, size: int) -> None:
        self._file = file
        self._stats = stats
        self._hash = hashlib.sha256()
        self._left = size  # bytes to read: what the file held when it was opened

    def __iter__(self) -> Generator[bytes, None, None]:
        d = zlib.decompressobj(31)
        fed = False
        while self._left > 0 and (data := self._file.read(min(READ_BLOCK, self._left))):
            self._left -= len(data)
            self._hash.update(data)
            view = memoryview(data)
            # inflate in slices: on corrupt data, what came before the damage is kept
            for start in range(0, len(view), INFLATE_SLICE):
                piece: bytes | memoryview = view[start : start + INFLATE_SLICE]
                self._stats.compressed_read += len(piece)
                while piece:
                    fed = True
                    try:
                        out = d.decompress(piece)
                    except zlib.error as err:
                        where = self._stats.compressed_read
                        self._stats.damaged = f"corrupt gzip data near byte {where}: {err}"
                        return
                    if out:
                        yield out
                    piece = b""
                    if d.eof:
                        piece, d, fed = d.unused_data, zlib.decompressobj(31), False
        if fed and not d.eof:
            self._stats.truncated = True
        self._stats.sha256 = self._hash.hexdigest()


def _in_thread(blocks: Iterator[bytes]) -> Generator[bytes, None, None]:
    """Run *blocks* in a daemon thread, a few blocks ahead of the consumer."""
    q: queue.Queue[bytes | BaseException | None] = queue.Queue(QUEUE_BLOCKS)
    stop = threading.Event()

    def pump() -> None:
        try:
            for block in blocks:
                if stop.is_set():
                    return
                q.put(block)
            q.put(None)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            q.put(err)

    thread = threading.Thread(target=pump, name="replay.inflate", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a pump waiting on a full queue
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)


class RecordingReader:
    """An open recording: ``header`` at once, then ``chunks()`` of entries in file order."""

    def __init__(self, path: Path, threaded: bool = True, size: int | None = None) -> None:
        """Open *path*; read its first *size* bytes (default: all it holds now — a recording
        still being written is read up to there, and flagged truncated)."""
        self.path = path
        self.stats = ReadStats()
        try:
            self._file: BinaryIO = path.open("rb")
            self.size = path.stat().st_size if size is None else size
        except OSError as err:
            raise RecordingError(f"{path}: cannot open: {err.strerror}") from err
        if self._file.read(2) != _GZIP_MAGIC:
            self._file.close()
            raise RecordingError(f"{path}: not a gzip file (a recording is gzip'd JSON lines)")
        self._file.seek(0)
        inflater = iter(_Inflater(self._file, self.stats, self.size))
        self._blocks: Generator[bytes, None, None] = _in_thread(inflater) if threaded else inflater
        self._decoder = msgspec.json.Decoder(Entry)
        self._rest = b""
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._blocks.close()  # stops the inflating thread
        self._file.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _read_header(self) -> Header:
        buf = b""
        for block in self._blocks:
            buf += block
            if b"\n" in buf:
                break
        if self.stats.damaged and not buf:
            raise RecordingError(f"{self.path}: {self.stats.damaged}")
        line, _, self._rest = buf.partition(b"\n")
        return parse_header(line, self.path)

    def chunks(self) -> Iterator[list[Entry]]:
        """Entries in file order, in large batches; bad lines are counted and skipped."""
        line_no = 1  # the header
        rest = b""
        for block in itertools.chain((self._rest,), self._blocks):
            buf = rest + block if rest else block
            cut = buf.rfind(b"\n") + 1
            if not cut:
                rest = buf
                continue
            chunk, rest = buf[:cut], buf[cut:]
            yield self._decode(chunk, line_no + 1)
            line_no += chunk.count(b"\n")
        if rest.strip():
            try:
                yield [self._decoder.decode(rest)]
                self.stats.lines += 1
            except msgspec.DecodeError:
                self.stats.bad(line_no + 1, "truncated last line")

    def entries(self) -> Iterator[Entry]:
        for chunk in self.chunks():
            yield from chunk

    def _decode(self, chunk: bytes, first_line: int) -> list[Entry]:
        try:
            entries = self._decoder.decode_lines(chunk)
        except msgspec.DecodeError:
            entries = self._decode_slowly(chunk, first_line)
        self.stats.lines += len(entries)
        return entries

    def _decode_slowly(self, chunk: bytes, first_line: int) -> list[Entry]:
        out = []
        for i, line in enumerate(chunk.split(b"\n")[:-1]):
            if not line.strip():
                continue
            try:
                out.append(self._decoder.decode(line))
            except msgspec.DecodeError as err:
                self.stats.bad(first_line + i, f"not a recording line: {err}")
        return out


def parse_header(line: bytes, path: Path | str) -> Header:
    """Decode and check line 1; raise RecordingError saying what is wrong."""
    try:
        raw = msgspec.json.decode(line)
    except msgspec.DecodeError:
        raise RecordingError(f"{path}: line 1 is not JSON: not a gridalarm recording") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise RecordingError(f"{path}: line 1 is not a {FORMAT} header")
    version = raw.get("version")
    if isinstance(version, int) and version > VERSION:
        raise RecordingError(
            f"{path}: recording format version {version} is newer than this tool ({VERSION})"
        )
    try:
        header = msgspec.convert(raw, Header)
    except msgspec.ValidationError as err:
        raise RecordingError(f"{path}: bad header: {err}") from None
    if header.schema != SCHEMA_VERSION:
        raise RecordingError(
            f"{path}: recorded with wire schema {header.schema}; this tool reads {SCHEMA_VERSION}"
        )
    return header
