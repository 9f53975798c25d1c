"""Live play in the browser: a WebSocket per browser tab, stepping its own Session at the model's frame rate.

Why a WebSocket (and not WebRTC through fastrtc): the frames are 64x64 pictures of a few kilobytes, made one
at a time on the server, and the inputs are a few bytes of held keys and mouse motion. A WebSocket carries
both in order over the page's own HTTP port, mounted on the FastAPI app Gradio already runs, with no STUN/TURN,
no video encoder, and nothing loaded from outside. A video codec would add its own buffering (latency) for
pictures this small, and WebRTC's extra machinery buys nothing on loopback or a LAN.

The protocol (client -> server, JSON text, each at most `max_message_bytes`):
    {"type": "start",  "ticket": HEX}                     start (or restart) from a ticket the page got from
                                                          its Gradio Start handler (model, quant, start picture)
    {"type": "input",  "seq": N, "keys": [...], "camera": [pitch, yaw]}
                                                          the keys held now (names from data.actions.KEYS) and
                                                          the camera turn in degrees since the last input message
    {"type": "ack",    "n": N}                            frame message N has arrived
    {"type": "record", "on": true | false}                start recording / stop and save mp4 + jsonl
server -> client: each frame as one binary message, a 12-byte header `<III` (message number, the newest input
seq the frame has seen, the world's frame index) and then the PNG; everything else is JSON text with a "type".

Backpressure: a connection steps its world only while fewer than `max_in_flight` frames are unacknowledged,
so a slow client gets fewer but always the newest frames and no queue grows anywhere. Stepping: every
connection hands its steps to one BatchStepper (app/stepper.py), which steps the worlds waiting together in
batched passes, one per core, each world one frame a round; so the event loop never waits on the model, and no player waits
behind another's queue. Starting a world, encoding a frame and saving a recording run in a small thread pool.

Hostile input: the origin must be a loopback host (or one the server was told to allow), and every message
is checked for size, rate and field types. A bad message closes that one connection with a reason
(code 1008, or 1009 for size); the server and the other players carry on.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import secrets
import struct
import threading
import time
import traceback
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from app.session_pool import PoolFull, SessionPool, World, WorldExpired
from app.stepper import BatchStepper
from app.world_processes import WorkerGone, WorldProcesses
from app.worlds import SIMULATOR, SessionFactory, StartPoint, WorldFactory, model_label
from data.actions import FPS, KEYS, MAX_CAMERA_DEG, NOOP, Action, reject_constant

SOCKET_PATH = "/live/socket"
RECORDING_PATH = "/live/recording"
FRAME_HEADER = struct.Struct("<III")  # message number, input seq seen, world frame index
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def worker_count() -> int:
    """One model step at a time per core: more threads would only take turns on the same cores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class LiveSettings:
    max_in_flight: int = 2  # frames sent but not yet acknowledged, per connection
    max_fps: float = 20.0  # the game's own rate: a fast model does not run the world faster than that
    max_message_bytes: int = 4096
    max_messages_per_s: float = 200.0  # sustained; bursts up to one second's worth
    idle_close_s: float = 600.0  # no key or mouse input for this long: the connection is closed
    record_max_frames: int = 2400  # two minutes at 20 frames/s (12 KB a frame in memory)
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # hosts an Origin header may name
    workers: int = 0  # threads that start worlds, encode frames and save recordings; 0: one per core
    step_workers: int = 0  # model passes side by side in a round (app/stepper.py); 0: one per core
    step_in_processes: bool = True  # model worlds in step_workers processes (app/world_processes.py), not threads

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.max_fps <= 0 or self.max_message_bytes < 64:
            raise ValueError(f"bad live settings: {self}")
        if self.max_messages_per_s <= 0 or self.idle_close_s <= 0 or self.record_max_frames < 2:
            raise ValueError(f"bad live settings: {self}")


class Closing(Exception):
    """Close this connection with a WebSocket close code and a reason the client shows."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason[:120]  # a close reason must fit in 123 bytes


def gone(err: Exception) -> bool:
    """Whether an exception only says the client has left (Starlette's, uvicorn's or websockets' way of saying it)."""
    names = {type(e).__name__ for e in (err, err.__cause__, err.__context__) if e is not None}
    return bool(names & {"WebSocketDisconnect", "ClientDisconnected", "ConnectionClosed", "ConnectionClosedOK",
                         "ConnectionClosedError"}) or "close message has been sent" in str(err)


def bad(reason: str) -> Closing:
    return Closing(1008, reason)


# --- messages ---------------------------------------------------------------------------------

MESSAGE_FIELDS: dict[str, set[str]] = {
    "start": {"type", "ticket"},
    "input": {"type", "seq", "keys", "camera"},
    "ack": {"type", "n"},
    "record": {"type", "on"},
}
TICKET_PATTERN = re.compile(r"[0-9a-f]{8,64}")
MAX_SEQ = 2**53  # what a JavaScript number counts to exactly


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise bad(f"{what} must be a whole number in 0..2^53")
    return value


def parse_message(text: str) -> dict[str, Any]:
    """One client message, checked field by field; anything else raises Closing."""
    try:
        message = json.loads(text, parse_constant=reject_constant)
    except ValueError as err:
        raise bad(f"not JSON: {str(err)[:60]}") from None
    if not isinstance(message, dict):
        raise bad("a message must be a JSON object")
    kind = message.get("type")
    if kind not in MESSAGE_FIELDS:
        raise bad(f"unknown message type {str(kind)[:20]!r}")
    if set(message) != MESSAGE_FIELDS[kind]:
        raise bad(f"{kind} takes exactly the fields {sorted(MESSAGE_FIELDS[kind])}")
    if kind == "start" and not (isinstance(message["ticket"], str) and TICKET_PATTERN.fullmatch(message["ticket"])):
        raise bad("ticket must be a hex string")
    if kind == "ack":
        _whole(message["n"], "n")
    if kind == "record" and not isinstance(message["on"], bool):
        raise bad("on must be true or false")
    if kind == "input":
        _whole(message["seq"], "seq")
        keys, camera = message["keys"], message["camera"]
        if not isinstance(keys, list) or len(keys) > len(KEYS) or not all(k in KEYS for k in keys if isinstance(k, str)) \
                or not all(isinstance(k, str) for k in keys):
            raise bad(f"keys must be a list of names from {', '.join(KEYS)}")
        if not (isinstance(camera, list) and len(camera) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                        and abs(v) <= MAX_CAMERA_DEG for v in camera)):
            raise bad(f"camera must be [pitch, yaw], two finite numbers of degrees within ±{MAX_CAMERA_DEG:g}")
    return message


class RateLimit:
    """A token bucket: `rate` messages a second on average, bursts up to one second's worth."""

    def __init__(self, rate: float, clock: Any = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.last = rate, clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class HeldInput:
    """What the browser holds now; camera turns add up between frames and are taken once, by the next step."""

    def __init__(self) -> None:
        self.keys: frozenset[str] = frozenset()
        self.camera = [0.0, 0.0]
        self.seq = 0
        self.last_input = time.monotonic()

    def update(self, message: dict[str, Any]) -> None:
        self.keys = frozenset(message["keys"])
        self.camera[0] += float(message["camera"][0])
        self.camera[1] += float(message["camera"][1])
        self.seq = max(self.seq, message["seq"])
        self.last_input = time.monotonic()

    def take_action(self) -> tuple[Action, int]:
        pitch, yaw = (float(np.clip(v, -MAX_CAMERA_DEG, MAX_CAMERA_DEG)) for v in self.camera)
        self.camera = [0.0, 0.0]
        return Action(self.keys, (pitch, yaw)), self.seq


def encode_png(frame: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="PNG", compress_level=1)  # lossless; 64x64 encodes in well under 1 ms
    return out.getvalue()


# --- tickets: what the page's Start handler chose, for the socket to start from ----------------

@dataclass(frozen=True)
class Ticket:
    model: str
    quant: str
    start: StartPoint
    made: float


class Tickets:
    """Start choices by random id. A ticket may be used again (reconnect, restart) until it is an hour old."""

    def __init__(self, max_tickets: int = 1024, max_age_s: float = 3600.0) -> None:
        self.max_tickets, self.max_age_s = max_tickets, max_age_s
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, model: str, quant: str, start: StartPoint) -> str:
        token = secrets.token_hex(16)
        with self._lock:
            self._tickets[token] = Ticket(model, quant, start, time.monotonic())
            while len(self._tickets) > self.max_tickets:
                self._tickets.popitem(last=False)
        return token

    def get(self, token: str) -> Ticket | None:
        with self._lock:
            ticket = self._tickets.get(token)
            if ticket is not None and time.monotonic() - ticket.made > self.max_age_s:
                del self._tickets[token]
                return None
            return ticket


# --- recordings ---------------------------------------------------------------------------------

class Recording:
    """frames[t] was shown while actions[t] was held (the project's time alignment); saved by data.record's writer."""

    def __init__(self, first: np.ndarray, max_frames: int) -> None:
        self.frames, self.actions, self.max_frames = [first], [], max_frames

    def add(self, act: Action, frame: np.ndarray) -> bool:
        """Record one step; False once full (the recording then stops)."""
        self.actions.append(act)
        self.frames.append(frame)
        return len(self.frames) < self.max_frames

    def save(self, folder: Path, name: str) -> tuple[Path, Path]:
        from data.actions import write_actions
        from data.video import write_mp4

        folder.mkdir(parents=True, exist_ok=True)
        mp4, jsonl = folder / f"{name}.mp4", folder / f"{name}.jsonl"
        write_mp4(mp4, np.stack(self.frames), fps=FPS)
        write_actions(jsonl, self.actions + [NOOP])  # one line per frame: the last action is a no-op pad
        return mp4, jsonl


RECORDING_NAME = re.compile(r"live-[0-9a-f]{16}-\d{3}\.(mp4|jsonl)")


# --- the server -----------------------------------------------------------------------------------

class LiveServer:
    """The socket endpoint: one Connection per browser tab, each with its own world in the shared pool."""

    def __init__(self, factory: SessionFactory, pool: SessionPool, tickets: Tickets, out_dir: Path,
                 settings: LiveSettings = LiveSettings()) -> None:
        self.factory, self.pool, self.tickets, self.settings = factory, pool, tickets, settings
        self.recordings = out_dir / "recordings"
        self.executor = ThreadPoolExecutor(settings.workers or worker_count(), thread_name_prefix="live-work")
        steppers = settings.step_workers or min(worker_count(), pool.max_sessions)
        self.stepper = BatchStepper(workers=steppers)
        # Model worlds in worker processes; the simulator's stay here (no model), and so do a GPU's (one process's
        # batched passes keep it busy; each process would hold a CUDA context of its own).
        in_processes = (settings.step_in_processes and isinstance(factory, WorldFactory)
                        and factory.resolved_device() == "cpu")  # fmt: skip
        self.processes = WorldProcesses(steppers, factory.device, factory.threads) if in_processes else None
        self.connections = 0
        self.errors = 0  # internal errors (a model step that raised), for the bench and the tests

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False  # browsers always send one; a tool can send its own
        host = urlsplit(origin).hostname
        return host is not None and host in self.settings.allowed_hosts

    def mount(self, app: Any) -> None:
        """Add the socket and the recording downloads to a running FastAPI app (Gradio's)."""
        from fastapi.responses import FileResponse, PlainTextResponse

        async def socket(websocket: Any) -> None:
            await Connection(self, websocket).run()

        async def recording(name: str) -> Any:
            path = self.recordings / name
            if not RECORDING_NAME.fullmatch(name) or not path.is_file():
                return PlainTextResponse("no such recording", status_code=404)
            return FileResponse(path, filename=name)  # Content-Disposition: attachment

        app.router.add_websocket_route(SOCKET_PATH, socket)  # Starlette's: the handler gets the WebSocket as is
        app.add_api_route(RECORDING_PATH + "/{name}", recording, methods=["GET"])

    def warm(self, pipelines: list[tuple[str, str]], wait: bool = False) -> None:
        """Start the worker processes now, each loading these (model, quant) pipelines: a first world then waits
        for neither (`wait`: return once they have)."""
        if self.processes is not None:
            self.processes.start(tuple((m, q) for m, q in pipelines if m != SIMULATOR), wait=wait)

    def new_session(self, model: str, quant: str, start: StartPoint, seed: int) -> Any:
        """An unstarted session for a live world: in a worker process when there are some, else here."""
        make = self.processes if self.processes is not None and model != SIMULATOR else self.factory
        return make(model, quant, start, seed)

    def close(self) -> None:
        self.stepper.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.processes is not None:
            self.processes.close()


class Connection:
    def __init__(self, server: LiveServer, websocket: Any) -> None:
        self.server, self.ws, self.settings = server, websocket, server.settings
        self.id = secrets.token_hex(8)
        self.input = HeldInput()
        self.rate = RateLimit(self.settings.max_messages_per_s)
        self.handle: str | None = None
        self.world: World | None = None
        self.frame: np.ndarray | None = None
        self.ticket: str | None = None  # a start asked for and not yet done
        self.recording: Recording | None = None
        self.saves = 0
        self.sent = 0  # frame messages sent
        self.acked = 0  # the highest frame message the client has acknowledged
        self.wake = asyncio.Event()
        self.send_lock = asyncio.Lock()

    async def send_json(self, **message: Any) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(message))

    async def run(self) -> None:
        await self.ws.accept()
        self.server.connections += 1
        tasks: list[asyncio.Task] = []
        try:
            if not self.server.origin_allowed(self.ws.headers.get("origin")):
                raise bad(f"origin {str(self.ws.headers.get('origin'))[:60]!r} is not allowed here")
            tasks = [asyncio.create_task(self.read()), asyncio.create_task(self.play())]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a Closing from either side ends up below
        except Closing as closing:
            await self._close(closing.code, closing.reason)
        except Exception as err:  # one connection's failure must not reach the others
            if not gone(err):
                self.server.errors += 1
                traceback.print_exc()
                await self._close(1011, f"internal error: {type(err).__name__}")
        finally:
            for task in tasks:
                task.cancel()
            self.server.pool.close(self.handle)
            self.server.connections -= 1

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with self.send_lock:
                await self.ws.close(code=code, reason=reason)
        except Exception:  # already gone
            pass

    # --- what the client says ----------------------------------------------------------------

    async def read(self) -> None:
        while True:
            event = await self.ws.receive()
            if event["type"] == "websocket.disconnect":
                return
            if not self.rate.allow():
                raise bad(f"more than {self.settings.max_messages_per_s:g} messages a second")
            text = event.get("text")
            if text is None:
                raise bad("binary messages are not accepted")
            if len(text.encode()) > self.settings.max_message_bytes:
                raise Closing(1009, f"message larger than {self.settings.max_message_bytes} bytes")
            message = parse_message(text)
            kind = message["type"]
            if kind == "input":
                self.input.update(message)
            elif kind == "ack":
                if message["n"] > self.sent:
                    raise bad(f"ack for frame {message['n']}, but only {self.sent} were sent")
                self.acked = max(self.acked, message["n"])
            elif kind == "start":
                self.ticket = message["ticket"]
                self.input.last_input = time.monotonic()
            elif kind == "record":
                await self.toggle_recording(message["on"])
            self.wake.set()

    async def toggle_recording(self, on: bool) -> None:
        if on and self.recording is None and self.frame is not None:
            self.recording = Recording(self.frame, self.settings.record_max_frames)
            await self.send_json(type="recording", on=True)
        elif not on and self.recording is not None:
            await self.save_recording()

    async def save_recording(self) -> None:
        recording, self.recording = self.recording, None
        self.saves += 1
        name = f"live-{self.id}-{self.saves:03d}"
        loop = asyncio.get_running_loop()
        mp4, jsonl = await loop.run_in_executor(self.server.executor, recording.save, self.server.recordings, name)
        await self.send_json(type="saved", frames=len(recording.frames),
                             mp4=f"{RECORDING_PATH}/{mp4.name}", jsonl=f"{RECORDING_PATH}/{jsonl.name}")

    # --- the world ---------------------------------------------------------------------------

    async def play(self) -> None:
        loop = asyncio.get_running_loop()
        next_step = 0.0
        while True:
            if self.ticket is not None:
                await self.start(self.ticket)
                continue
            if self.world is None or self.sent - self.acked >= self.settings.max_in_flight:
                self.wake.clear()
                await self.wake.wait()
                continue
            if time.monotonic() - self.input.last_input > self.settings.idle_close_s:
                raise Closing(1000, f"idle for {self.settings.idle_close_s:g} s; click the view to play again")
            wait = next_step - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            next_step = loop.time() + 1.0 / self.settings.max_fps
            act, seq = self.input.take_action()
            world = self.world
            try:
                self.server.pool.get(self.handle)  # keeps the world from idle expiry; raises WorldExpired if it is gone
            except WorldExpired as err:
                raise Closing(1000, str(err)[:120]) from None
            try:
                frame = await asyncio.wrap_future(self.server.stepper.submit(world, act))
            except WorkerGone as err:  # its process stopped: say so, and what to do (the others play on)
                self.server.errors += 1
                raise Closing(1011, str(err)) from None
            png = await loop.run_in_executor(self.server.executor, encode_png, frame)
            if world is not self.world:
                continue  # restarted meanwhile: this frame belongs to the old world
            self.frame = frame
            if self.recording is not None and not self.recording.add(act, frame):
                await self.save_recording()
            await self.send_frame(png, seq, world.frames)

    def _start(self, token: str) -> tuple[str, np.ndarray, bytes, str, int]:
        """In a worker thread: a new world from a ticket, in this connection's pool slot. -> handle, frame, png, label, seed."""
        ticket = self.server.tickets.get(token)
        if ticket is None:
            raise ValueError("this start has expired; press Restart")
        self.server.pool.check_room(replace=self.handle)
        seed = secrets.randbelow(2**31)  # every connection its own sampling noise
        session = self.server.new_session(ticket.model, ticket.quant, ticket.start, seed)
        frame = session.start(ticket.start.image)
        label = f"{model_label(ticket.model)} · {ticket.quant} · start {ticket.start.name} · seed {seed}"
        handle = self.server.pool.add(session, label, replace=self.handle)
        return handle, frame, encode_png(frame), label, seed

    async def start(self, token: str) -> None:
        self.ticket = None
        if self.recording is not None:
            await self.save_recording()  # a restart ends the recording: what was played so far is kept
        loop = asyncio.get_running_loop()
        try:
            handle, frame, png, label, seed = await loop.run_in_executor(self.server.executor, self._start, token)
        except (ValueError, PoolFull) as err:
            await self.send_json(type="error", message=str(err))
            return
        self.handle, self.world, self.frame = handle, self.server.pool.get(handle), frame
        self.input.camera = [0.0, 0.0]  # keys still held carry over into the new world; old turns do not
        await self.send_json(type="started", label=label, seed=seed)
        await self.send_frame(png, 0, 0)

    async def send_frame(self, png: bytes, seq: int, index: int) -> None:
        self.sent += 1
        async with self.send_lock:
            await self.ws.send_bytes(FRAME_HEADER.pack(self.sent, seq, index) + png)
