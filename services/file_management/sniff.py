"""Content type from the first bytes of a file, never from its name or the client's header."""

from __future__ import annotations

# The shortest prefix that tells each allowed type apart.
SNIFF_BYTES = 12


def sniff(head: bytes) -> str | None:
    """The MIME type of an allowed format starting with ``head``, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


ALLOWED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
