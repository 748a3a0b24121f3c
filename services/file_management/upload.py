"""Streams one multipart upload into a storage write, checking type and size as the bytes arrive.

Nothing is buffered whole: the size limit stops the upload at the first byte over it, and the content
type is decided from the first bytes, before the rest is even read.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header

from services.common.inputs import NUL, NUL_REASON
from services.file_management.sniff import ALLOWED_TYPES, SNIFF_BYTES, sniff
from services.file_management.storage import PendingWrite

FILE_FIELD = "file"
_MAX_FILENAME = 255


class UploadRejected(Exception):
    def __init__(self, status: int, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after  # seconds, for a 429


@dataclass(frozen=True)
class Received:
    filename: str
    content_type: str
    size: int
    sha256: str


def boundary_of(content_type: str | None) -> bytes:
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadRejected(415, "upload must be multipart/form-data with a boundary")
    return params[b"boundary"]


class _FilePart:
    """Collects the one ``file`` part; the parser's callbacks only record, this class decides."""

    def __init__(self, sink: PendingWrite, max_bytes: int, too_large: UploadRejected | None) -> None:
        self.sink = sink
        self.max_bytes = max_bytes
        self.too_large = too_large or UploadRejected(413, f"file exceeds the limit of {max_bytes} bytes")
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.content_type: str | None = None
        self.filename: str | None = None
        self.seen = False
        self.done = False

    def begin(self, disposition: bytes) -> bool:
        """True when this part is the file; a second file part is refused."""
        _, params = parse_options_header(disposition)
        if params.get(b"name") != FILE_FIELD.encode():
            return False
        if self.seen:
            raise UploadRejected(400, f"only one {FILE_FIELD!r} part is accepted")
        self.seen = True
        raw_name = params.get(b"filename", b"").decode("utf-8", "replace")
        if NUL in raw_name:
            raise UploadRejected(422, f"filename: {NUL_REASON}")
        self.filename = raw_name.replace("\\", "/").rsplit("/", 1)[-1][:_MAX_FILENAME] or "upload"
        return True

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise self.too_large
        self.hash.update(data)
        if self.content_type is None:
            self.head += data
            if len(self.head) < SNIFF_BYTES:
                return
            self._decide_type()
            data, self.head = self.head, b""
        self.sink.write(data)

    def _decide_type(self) -> None:
        self.content_type = sniff(self.head)
        if self.content_type is None:
            raise UploadRejected(415, f"content is not one of: {', '.join(ALLOWED_TYPES)}")

    def finish(self) -> None:
        if self.content_type is None:  # shorter than the sniffing prefix
            self._decide_type()
            self.sink.write(self.head)
        self.done = True


async def receive(
    body: AsyncIterator[bytes],
    content_type: str | None,
    sink: PendingWrite,
    max_bytes: int,
    too_large: UploadRejected | None = None,
) -> Received:
    """Stream the request body into ``sink``; raises UploadRejected (``too_large`` past ``max_bytes``)
    and leaves ``sink`` to the caller."""
    part = _FilePart(sink, max_bytes, too_large)
    events: list[tuple[str, bytes]] = []
    header = {"field": b"", "value": b""}
    disposition = [b""]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        if header["field"].lower() == b"content-disposition":
            disposition[0] = header["value"]
        header["field"] = header["value"] = b""

    callbacks = {
        "on_part_begin": lambda: disposition.__setitem__(0, b""),
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": lambda: events.append(("begin", disposition[0])),
        "on_part_data": lambda data, start, end: events.append(("data", bytes(data[start:end]))),
        "on_part_end": lambda: events.append(("end", b"")),
        "on_end": lambda: events.append(("complete", b"")),
    }
    parser = MultipartParser(boundary_of(content_type), callbacks)  # type: ignore[arg-type]
    in_file = complete = False
    async for chunk in body:
        parser.write(chunk)
        for kind, data in events:
            if kind == "begin":
                in_file = part.begin(data)
            elif kind == "data" and in_file:
                part.feed(data)
            elif kind == "end" and in_file:
                part.finish()
                in_file = False
            elif kind == "complete":
                complete = True
        events.clear()
    if not complete:
        raise UploadRejected(400, "upload ended before the multipart body was complete")
    if not part.done or part.content_type is None or part.filename is None:
        raise UploadRejected(422, f"multipart body has no {FILE_FIELD!r} part")
    return Received(part.filename, part.content_type, part.size, part.hash.hexdigest())
