"""A small, fast Server-Sent Events parser working on raw bytes, with a size cap.

Why not ``httpx.Response.iter_lines``: it decodes every byte to ``str`` and runs a
generic line splitter, and the benchmark needs to parse tens of thousands of chunks
per second without its own CPU time leaking into the timings it measures. This parser
works on the bytes exactly as they come off the socket: it splits on ``b"\\n"`` and
only touches ``data:`` and ``event:`` fields. JSON decoding is left to the caller,
which only decodes data payloads.

Framing follows the WHATWG SSE rules that matter for LLM APIs:
- an event is dispatched on a blank line; several ``data:`` lines are joined by ``\\n``;
- one space after the colon is dropped (``data: x`` and ``data:x`` are the same);
- lines starting with ``:`` are comments (keep-alives) and are ignored;
- ``\\r\\n`` line endings are accepted (the ``\\r`` is stripped). Bare ``\\r`` line
  endings, which no LLM API uses, are not supported;
- ``id:`` and ``retry:`` fields are ignored (we never reconnect);
- a trailing event with no blank line after it is flushed by :meth:`SSEParser.close`.

Bounded, because the bytes come from endpoints users name: an incomplete line held
between feeds, and the data of one event, may each grow to ``max_event_bytes``; past
that :class:`SSELimitExceeded` is raised instead of allocating more. Parsing is linear
in the bytes fed however they are sliced: an incomplete line is kept as a list of
pieces and joined once, when its newline arrives (re-joining a growing tail on every
feed would copy it again each time, quadratic in the line's length).
"""

from __future__ import annotations

from typing import Iterable, Iterator

__all__ = ["MAX_EVENT_BYTES", "SSEEvent", "SSELimitExceeded", "SSEParser", "iter_events"]

#: ``(event name or None, data payload)``; a tuple because it is the cheapest object
#: Python can make, and one is made per chunk on the hot path.
SSEEvent = tuple[bytes | None, bytes]

#: Default cap of one line and of one event's data (1 MiB): LLM chunks are a few
#: hundred bytes; the largest real ones (a long tool-call argument) stay far below.
MAX_EVENT_BYTES = 1 << 20

_DATA = b"data:"
_EVENT = b"event:"


class SSELimitExceeded(Exception):
    """A line or an event outgrew the parser's cap; the stream cannot be trusted further."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"an SSE {what} longer than {limit} bytes")
        self.what = what
        self.limit = limit


class SSEParser:
    """Incremental SSE parser: ``feed`` bytes in any slicing, get complete events out."""

    __slots__ = ("_pieces", "_held", "_data", "_size", "_event", "_max")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._pieces: list[bytes] = []  # an incomplete line, not yet joined
        self._held = 0  # bytes in _pieces
        self._data: list[bytes] = []
        self._size = 0  # bytes in _data, plus one per line for the joining newline
        self._event: bytes | None = None
        self._max = max_event_bytes

    def _hold(self, piece: bytes) -> None:
        self._held += len(piece)
        if self._held > self._max:
            raise SSELimitExceeded("line", self._max)
        self._pieces.append(piece)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse ``chunk`` and return the events it completes (possibly none).

        Raises :class:`SSELimitExceeded` when a line or an event outgrows the cap.
        """
        if self._pieces:
            cut = chunk.find(b"\n")
            if cut < 0:
                self._hold(chunk)
                return []
            self._pieces.append(chunk[:cut])
            head = b"".join(self._pieces)
            self._pieces, self._held = [], 0
            lines = chunk[cut + 1 :].split(b"\n")
            lines.insert(0, head)
        else:
            lines = chunk.split(b"\n")
        tail = lines.pop()
        if tail:
            self._hold(tail)
        out: list[SSEEvent] = []
        data = self._data
        size = self._size
        limit = self._max
        for line in lines:
            if line and line[-1] == 13:  # b"\r"
                line = line[:-1]
            if not line:
                if data:
                    out.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    data = self._data = []
                    size = 0
                self._event = None
            elif line.startswith(_DATA):
                value = line[5:]
                if value[:1] == b" ":
                    value = value[1:]
                size += len(value) + 1
                if size > limit:
                    raise SSELimitExceeded("event", limit)
                data.append(value)
            elif line.startswith(_EVENT):
                value = line[6:]
                self._event = value[1:] if value[:1] == b" " else value
            elif line == b"data":  # a field with no colon has an empty value
                size += 1
                if size > limit:
                    raise SSELimitExceeded("event", limit)
                data.append(b"")
            # comments (b":...") and other fields are ignored
        self._size = size
        return out

    def close(self) -> list[SSEEvent]:
        """Flush what is left at end of stream (an event lacking its blank line)."""
        out: list[SSEEvent] = []
        if self._pieces:
            out = self.feed(b"\n")
        if self._data:
            data = self._data
            out.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
        self._pieces, self._held, self._data, self._size, self._event = [], 0, [], 0, None
        return out


def iter_events(chunks: Iterable[bytes], max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[SSEEvent]:
    """Convenience generator over an iterable of byte chunks (tests, tools)."""
    parser = SSEParser(max_event_bytes)
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()
