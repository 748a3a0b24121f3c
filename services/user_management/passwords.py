"""argon2id hashing off the event loop (each hash takes tens of milliseconds of CPU by design)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool


class Passwords:
    def __init__(self, memory_kib: int, time_cost: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verified against when the e-mail is unknown, so both failures take the same time.
        self._dummy = self._hasher.hash("not-a-real-password")

    async def hash(self, password: str) -> str:
        return await run_in_threadpool(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
            except (VerificationError, InvalidHashError):
                return False

        return await run_in_threadpool(check)
