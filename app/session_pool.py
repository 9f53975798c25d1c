"""The web server's live worlds: one Session per browser, a cap on how many, and idle expiry.

A browser holds only a handle (a random id in its gr.State); the session itself stays here,
so the cap on concurrent worlds is enforced in one place. When the pool is full, worlds
idle for longer than `idle_timeout_s` are closed to make room; if none is idle the new
one is refused with a message, and everyone already playing keeps playing. Each world
has a lock so two clicks from one browser never step the same session at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class PoolFull(RuntimeError):
    """Every world slot is taken by someone active."""


class WorldExpired(KeyError):
    """The handle names no live world (closed, expired, or from before a restart)."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is read by people
        return "your world has expired (idle too long, or the server restarted); press Start to begin a new one"


@dataclass
class World:
    session: Any
    label: str  # model, quant and start, for the status line
    lock: threading.Lock = field(default_factory=threading.Lock)
    frames: int = 0  # steps taken since start
    last_used: float = 0.0


class SessionPool:
    def __init__(self, max_sessions: int, idle_timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        if idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s must be positive, got {idle_timeout_s}")
        self.max_sessions, self.idle_timeout_s, self.clock = max_sessions, idle_timeout_s, clock
        self._worlds: dict[str, World] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._worlds)

    def _evict_idle(self) -> None:
        now = self.clock()
        for handle, world in list(self._worlds.items()):
            if now - world.last_used > self.idle_timeout_s and not world.lock.locked():
                del self._worlds[handle]

    def check_room(self, replace: str | None = None) -> None:
        """Raise PoolFull before a new world is built, rather than after (add checks again)."""
        with self._lock:
            taken = len(self._worlds) - (1 if (replace or "") in self._worlds else 0)
            if taken >= self.max_sessions:
                self._evict_idle()
                taken = len(self._worlds) - (1 if (replace or "") in self._worlds else 0)
            if taken >= self.max_sessions:
                raise PoolFull(f"the server is full: {self.max_sessions} worlds are in use; try again in a minute")

    def add(self, session: Any, label: str, replace: str | None = None) -> str:
        """Store a started session; `replace` is the caller's previous handle, whose slot it takes."""
        with self._lock:
            self._worlds.pop(replace or "", None)
            if len(self._worlds) >= self.max_sessions:
                self._evict_idle()
            if len(self._worlds) >= self.max_sessions:
                raise PoolFull(f"the server is full: {self.max_sessions} worlds are in use; "
                               "try again in a minute")
            handle = secrets.token_hex(8)
            self._worlds[handle] = World(session, label, last_used=self.clock())
            return handle

    def get(self, handle: str | None) -> World:
        with self._lock:
            world = self._worlds.get(handle or "")
            if world is None:
                raise WorldExpired(handle)
            world.last_used = self.clock()
            return world

    def close(self, handle: str | None) -> None:
        with self._lock:
            self._worlds.pop(handle or "", None)
