"""A connection's bounded queue of pending updates, coalesced per vendor.

A client that reads slowly only ever holds the latest position of each vendor it follows; when even
that exceeds the bound, the outbox reports overflow and the connection is closed, so one slow
client never holds memory or time that the others need.
"""

from __future__ import annotations

import asyncio


class Outbox:
    def __init__(self, max_pending: int) -> None:
        self._max = max_pending
        self._pending: dict[str, bytes] = {}
        self._control: list[str] = []
        self._ready = asyncio.Event()
        self.overflowed = False
        self.coalesced = 0

    def put(self, vendor_id: str, encoded: bytes, *, wake: bool = True) -> None:
        """Queue the vendor's newest update; ``wake=False`` leaves the writer asleep until ``wake()``
        (the hub's send tick), so updates arriving in between go out as one frame."""
        if vendor_id in self._pending:
            # Keep the vendor's place in line but only its newest position.
            self._pending[vendor_id] = encoded
            self.coalesced += 1
        elif len(self._pending) >= self._max:
            self.overflowed = True
        else:
            self._pending[vendor_id] = encoded
        if wake or self.overflowed:
            self._ready.set()

    def wake(self) -> None:
        if self._pending or self._control or self.overflowed:
            self._ready.set()

    def put_control(self, frame: str) -> None:
        """A reply to the client's own message; the connection's one writer sends it before updates."""
        self._control.append(frame)
        self._ready.set()

    def take_control(self) -> list[str]:
        frames, self._control = self._control, []
        return frames

    def take(self) -> list[bytes]:
        items = list(self._pending.values())
        self._pending.clear()
        if not self._control:  # a reply queued while we were sending still needs a wake-up
            self._ready.clear()
        return items

    def __len__(self) -> int:
        return len(self._pending)

    async def wait(self) -> None:
        """Until something is pending (or the outbox overflowed)."""
        await self._ready.wait()
