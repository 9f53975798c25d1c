"""Serve the world in a browser: `worldmodel web` (a Gradio page on 127.0.0.1).

The Live tab, first on the page, plays the world in real time: the page starts the default scene on load,
clicking the view takes the keyboard and the mouse (Pointer Lock), and the frames stream over a WebSocket
at the model's frame rate while keys are held or not, as in a game (app/live.py, app/live_client.js). The
model, quant method, start scene or uploaded picture are Gradio components; their Start handler checks them
and hands the browser a ticket, with which the socket starts that browser's own Session. The Batch tab turns
a pasted or uploaded action script (our jsonl or MineRL/VPT dicts) into an H.264 mp4 to download.

Several people at once: each socket's Session lives in a SessionPool with a cap and idle expiry
(app/session_pool.py), with a seed of its own. Every input is checked (picture type, size and integrity;
script keys and numbers; socket messages) and a problem becomes a message on the page, never a crash of
the server. Frames never pass through Gradio's file cache: two players with byte-identical frames once
rewrote one cached picture while it was being sent.

`build_demo(session_factory, settings)` builds the page and imports Gradio only when called;
`WebApp` holds the handlers as plain methods, testable without a browser. No model logic here:
the page calls a Session.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.live import LOOPBACK_HOSTS, LiveServer, LiveSettings, Tickets
from app.scripts import ScriptError, parse_script_text, read_script
from app.session_pool import PoolFull, SessionPool
from app.worlds import (
    DEFAULT_MODEL,
    DEFAULT_SCENE,
    QUANTS,
    SIMULATOR,
    ImageLimits,
    SessionFactory,
    StartPoint,
    WorldFactory,
    default_model_available,
    image_start,
    model_label,
    roll_out,
    scene_names,
    scene_start,
    thread_count,
)
from data.actions import FPS

HERE = Path(__file__).resolve().parent
LIVE_VIEW_HTML = HERE / "live_view.html"
LIVE_CLIENT_JS = HERE / "live_client.js"
START_LIVE_JS = "(ticket) => { if (window.wmLive) { window.wmLive.start(ticket); } }"
# Torch threads per model pass. The live worlds' passes run side by side, one process per core
# (app/world_processes.py): at one thread each they beat one pass at every core's threads, whose threads stall
# whenever the server's own threads take a core (bench web on the 2-core EPYC: 16.7 against 12.2 frames/s for one
# player, int8).
WEB_THREADS = 1

CSS = """
#wm-view { width: 512px; height: 512px; image-rendering: pixelated; background: #000; cursor: crosshair;
           outline: none; touch-action: none; }
#wm-view:focus { box-shadow: 0 0 0 3px #f97316; }
#wm-live { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
#wm-live-info { display: flex; flex-direction: column; gap: 6px; min-width: 260px; max-width: 420px; }
#wm-rates { font-family: monospace; white-space: nowrap; }
#wm-record { padding: 4px 12px; border: 1px solid #888; border-radius: 6px; }
.wm-help { font-size: 0.9em; opacity: 0.8; }
#wm-preview video { image-rendering: pixelated; }
"""


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    models: tuple[str, ...] = (DEFAULT_MODEL, SIMULATOR)
    quants: tuple[str, ...] = QUANTS
    max_sessions: int = 16  # live worlds at once; idle ones make room for new ones
    idle_timeout_s: float = 600.0
    live: LiveSettings = LiveSettings()
    max_batch_frames: int = 1200  # actions one batch script may hold (a minute at 20 fps)
    max_upload_bytes: int = 10 * 2**20
    max_image_side: int = 4096
    concurrency: int = 4  # requests computed at once; the rest wait in the queue
    batch_concurrency: int = 2
    max_queue: int = 64
    video_scale: int = 4  # the preview video is scaled up so browsers show crisp pixels
    out_dir: Path | None = None  # batch results; None: a fresh temporary folder

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("at least one model is needed")
        unknown = set(self.quants) - set(QUANTS)
        if unknown or not self.quants:
            raise ValueError(f"quants must be a non-empty subset of {QUANTS}, got {self.quants}")
        for name in ("max_sessions", "max_batch_frames", "max_upload_bytes", "max_image_side", "concurrency",
                     "batch_concurrency", "max_queue", "video_scale"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s must be positive, got {self.idle_timeout_s}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour: every pixel becomes a scale x scale block (crisp, no blur)."""
    return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)


@dataclass
class WebApp:
    """The page's handlers as plain methods: values in, values (or a message) out."""

    factory: SessionFactory
    settings: WebSettings = field(default_factory=WebSettings)

    def __post_init__(self) -> None:
        self.pool = SessionPool(self.settings.max_sessions, self.settings.idle_timeout_s)
        self.limits = ImageLimits(self.settings.max_upload_bytes, self.settings.max_image_side)
        self.out_dir = self.settings.out_dir or Path(tempfile.mkdtemp(prefix="worldmodel-web-"))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.tickets = Tickets()
        self.live = LiveServer(self.factory, self.pool, self.tickets, self.out_dir, self.settings.live)
        self._batch_count = 0
        self._batch_lock = threading.Lock()

    # --- checks --------------------------------------------------------------------------

    def _choose(self, model: str, quant: str) -> None:
        if model not in self.settings.models:
            raise ValueError(f"unknown model {model!r}; this server offers {', '.join(self.settings.models)}")
        if quant not in self.settings.quants:
            raise ValueError(f"unknown quant method {quant!r}; this server offers {', '.join(self.settings.quants)}")

    def _start_point(self, model: str, scene: str | None, upload: str | None) -> StartPoint:
        if upload:
            start = image_start(upload, self.limits)
            if model == SIMULATOR:
                raise ValueError("the simulator starts only from a scene: clear the uploaded picture, or pick a model")
            return start
        if not scene:
            raise ValueError("pick a start scene or upload a picture")
        return scene_start(scene)

    # --- live play ------------------------------------------------------------------------

    def live_ticket(self, model: str, quant: str, scene: str | None, upload: str | None) -> tuple[str, str]:
        """Check a start choice and hand out a ticket the browser's socket starts from. -> (ticket, status)."""
        try:
            self._choose(model, quant)
            start = self._start_point(model, scene, upload)
            self.pool.check_room()  # say so now, rather than when the socket asks
        except (ValueError, PoolFull) as err:
            return "", f"**Cannot start:** {err}"
        except Exception as err:  # one visitor's failure must not take the page down
            traceback.print_exc()
            return "", f"**Cannot start:** internal error ({type(err).__name__}: {err})"
        ticket = self.tickets.issue(model, quant, start)
        return ticket, f"{model_label(model)} · {quant} · start {start.name}: click the view to play"

    # --- batch ---------------------------------------------------------------------------

    def batch(self, model: str, quant: str, scene: str | None, upload: str | None, text: str | None,
              script: str | None, on_frame: Callable[[int, int], None] | None = None
              ) -> tuple[str | None, str | None, str]:
        """Script -> (preview mp4, download mp4, status). The uploaded script wins over pasted text."""
        from data.video import write_mp4

        limit = self.settings.max_batch_frames
        try:
            self._choose(model, quant)
            if script:
                if Path(script).stat().st_size > self.settings.max_upload_bytes:
                    raise ScriptError(f"{Path(script).name}: larger than {self.settings.max_upload_bytes // 2**20} MiB")
                actions = read_script(script, limit, shown=Path(script).name)
            else:
                actions = parse_script_text(text or "", limit)
            start = self._start_point(model, scene, upload)
            session = self.factory(model, quant, start, 0)
            t0 = time.perf_counter()
            total = len(actions)
            frames = roll_out(session, start.image, actions,
                              on_frame=(lambda t: on_frame(t, total)) if on_frame else None)
            seconds = time.perf_counter() - t0
            self._forget_old_results()
            with self._batch_lock:
                self._batch_count += 1
                name = f"batch-{self._batch_count:05d}-{model_label(model)}-{quant}"
            download = self.out_dir / f"{name}.mp4"
            preview = self.out_dir / f"{name}-preview.mp4"
            write_mp4(download, frames, fps=FPS)
            write_mp4(preview, np.stack([upscale(f, self.settings.video_scale) for f in frames]), fps=FPS)
        except (ValueError, FileNotFoundError) as err:  # ScriptError, ImageError included
            return None, None, f"**Cannot generate:** {err}"
        except Exception as err:
            traceback.print_exc()
            return None, None, f"**Cannot generate:** internal error ({type(err).__name__}: {err})"
        status = (f"{len(actions)} actions → {len(frames)} frames from {start.name} with {model_label(model)} "
                  f"({quant}) in {seconds:.1f} s · the download is the native 64×64 H.264 mp4")
        return str(preview), str(download), status

    def _forget_old_results(self, max_age_s: float = 3600.0) -> None:
        now = time.time()
        for path in self.out_dir.glob("batch-*.mp4"):
            if now - path.stat().st_mtime > max_age_s:
                path.unlink(missing_ok=True)


# --- the page -------------------------------------------------------------------------------

def build_demo(session_factory: SessionFactory, settings: WebSettings = WebSettings()) -> Any:
    """The Gradio page (a gr.Blocks). Serve it with `serve(demo, settings)`."""
    import gradio as gr

    app = WebApp(session_factory, settings)
    scenes = scene_names()

    with gr.Blocks(title="worldmodel", delete_cache=(600, 3600)) as demo:
        demo.wm_app = app  # for tests and serve(): the handlers and their output folder
        with gr.Tab("Live"):
            gr.HTML(LIVE_VIEW_HTML.read_text(encoding="utf-8"), elem_id="wm-live-html")
            with gr.Row():
                model = gr.Dropdown(list(settings.models), value=settings.models[0], label="model")
                quant = gr.Dropdown(list(settings.quants), value=settings.quants[0], label="quant method")
                first = DEFAULT_SCENE if DEFAULT_SCENE in scenes else (scenes[0] if scenes else None)
                scene = gr.Dropdown(scenes, value=first, label="start scene")
                upload = gr.File(label=f"or upload a start picture (≤ {settings.max_upload_bytes / 2**20:g} MiB)",
                                 file_types=["image"], type="filepath", elem_id="wm-upload", height=130)
            with gr.Row():
                restart_btn = gr.Button("Restart", variant="primary", elem_id="wm-start", scale=0)
                status = gr.Markdown("Starting…", elem_id="wm-status")
            # The ticket goes from the Start handler to the page's script; never shown.
            ticket = gr.Textbox(visible=False, elem_id="wm-ticket")
        with gr.Tab("Batch"):
            gr.Markdown("A script of actions played from the model, quant method and start chosen on the Live tab.")
            with gr.Row():
                with gr.Column():
                    script_text = gr.Textbox(lines=8, label="action script: one JSON action per line "
                                             "(MineRL dicts or our VPT jsonl)", elem_id="wm-script",
                                             placeholder='{"forward": 1, "camera": [0, 0]}\n'
                                                         '{"forward": 1, "jump": 1, "camera": [0, 5]}')
                    script_file = gr.File(label="or upload a script (.jsonl / .json)", file_types=[".jsonl", ".json"],
                                          type="filepath", elem_id="wm-script-file")
                    generate_btn = gr.Button("Generate", variant="primary", elem_id="wm-generate")
                    batch_status = gr.Markdown(f"At most {settings.max_batch_frames} actions.",
                                               elem_id="wm-batch-status")
                with gr.Column():
                    preview = gr.Video(label="result", interactive=False, elem_id="wm-preview", autoplay=True,
                                       loop=True)
                    download = gr.File(label="download (H.264 mp4)", interactive=False, elem_id="wm-download")

        # Start on load, and again on Restart with whatever the pickers say now.
        pickers = [model, quant, scene, upload]
        demo.load(app.live_ticket, pickers, [ticket, status], api_name="live_ticket",
                  concurrency_limit=settings.concurrency, concurrency_id="play").then(
            None, [ticket], None, js=START_LIVE_JS)
        restart_btn.click(app.live_ticket, pickers, [ticket, status], api_name=False,
                          concurrency_limit=settings.concurrency, concurrency_id="play").then(
            None, [ticket], None, js=START_LIVE_JS)

        def run_batch(m: str, q: str, s: str | None, u: str | None, t: str | None, f: str | None,
                      progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, str]:  # noqa: B008 (Gradio fills it in per call)
            return app.batch(m, q, s, u, t, f, on_frame=lambda i, n: progress(i / n, desc="generating"))

        generate_btn.click(run_batch, [model, quant, scene, upload, script_text, script_file],
                           [preview, download, batch_status], api_name="generate",
                           concurrency_limit=settings.batch_concurrency, concurrency_id="batch")
    demo.queue(max_size=settings.max_queue, default_concurrency_limit=settings.concurrency)
    return demo


def serve(demo: Any, settings: WebSettings, block: bool = True) -> tuple[Any, str]:
    """Launch the page on settings.host:port; with block=False return (app, url) and keep serving in a thread."""
    app: WebApp = demo.wm_app
    _, url, _ = demo.launch(
        server_name=settings.host, server_port=settings.port, prevent_thread_lock=True, quiet=not block,
        show_error=False, css=CSS, allowed_paths=[str(app.out_dir)], ssr_mode=False, mcp_server=False,
        # A hard cap for every upload; the handlers check the exact (smaller) limit with a clearer message.
        max_file_size=4 * settings.max_upload_bytes,
        head=f"<script>{LIVE_CLIENT_JS.read_text(encoding='utf-8')}</script>",
    )
    app.live.mount(demo.server_app)  # the live socket on the same server (Gradio runs on FastAPI)
    if block:
        demo.block_thread()
    return app, url


def check_can_listen(host: str, port: int) -> None:
    """ValueError unless a server could listen on host:port now. Checked before anything loads: Gradio's own
    message for a port in use, or for an address that is no address, is "Cannot find empty port"."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        raise ValueError(f"--host {host!r} is not an address of this machine ({err})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as err:
            hint = "; another server is using it: pick another --port" if err.errno == errno.EADDRINUSE else ""
            raise ValueError(f"cannot listen on {host}:{port}: {err.strerror or err}{hint}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the network)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--model", action="append", default=None,
                        help=f"model(s) to offer: '{DEFAULT_MODEL}', a checkpoint folder, '{SIMULATOR}' "
                             f"(default: {DEFAULT_MODEL} when it exists, and {SIMULATOR})")
    parser.add_argument("--quant", action="append", choices=QUANTS, default=None,
                        help="quant method(s) to offer (default: all)")
    parser.add_argument("--max-sessions", type=int, default=16, help="live worlds at once")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="HOST",
                        help="a host name pages may open the live socket from, besides loopback "
                             "(with --host 0.0.0.0: the name or address people type)")
    parser.add_argument("--max-batch-frames", type=int, default=1200, help="actions one batch script may hold")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, help="largest upload accepted")
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    parser.add_argument("--threads", type=thread_count, default=WEB_THREADS,
                        help="CPU threads per model pass (default 1: the live worlds live in one process per core, "
                             "whose passes run side by side); 0: torch's default")


def main(args: argparse.Namespace) -> int:
    models = args.model
    if models is None:
        available, why = default_model_available()
        models = [DEFAULT_MODEL, SIMULATOR] if available else [SIMULATOR]
        if not available:
            print(f"note: {why}; serving the simulator only", file=sys.stderr)
    try:
        settings = WebSettings(host=args.host, port=args.port, models=tuple(models),
                               quants=tuple(args.quant or QUANTS), max_sessions=args.max_sessions,
                               live=LiveSettings(allowed_hosts=LOOPBACK_HOSTS + tuple(args.allow_origin)),
                               max_batch_frames=args.max_batch_frames,
                               max_upload_bytes=int(args.max_upload_mb * 2**20))
        check_can_listen(settings.host, settings.port)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    factory = WorldFactory(args.device, args.threads or None)
    for model in settings.models:  # load now, so the first visitor does not wait and a bad path fails here
        if model != SIMULATOR:
            try:
                factory.pipeline(model, settings.quants[0])
            except (FileNotFoundError, ValueError, RuntimeError, ImportError) as err:
                print(f"error: cannot load model {model!r}: {err}", file=sys.stderr)
                return 1
    demo = build_demo(factory, settings)
    demo.wm_app.live.warm([(model, settings.quants[0]) for model in settings.models])
    try:
        serve(demo, settings, block=False)
        print(f"serving on http://{settings.host}:{settings.port} (Ctrl+C stops)", flush=True)
        # Set after launch, so no server code replaces it: a plain kill also cleans up the results folder.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
        demo.wm_app.live.close()
        if settings.out_dir is None:
            shutil.rmtree(demo.wm_app.out_dir, ignore_errors=True)
    return 0
