"""Live play: the socket's checks (fast), then the socket served on loopback with the simulator, then the live
view in headless Chromium with the shipped model (slow)."""

import base64
import io
import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from small_worlds import SeedScene

from app import worlds
from app.live import FRAME_HEADER, Closing, HeldInput, LiveServer, LiveSettings, RateLimit, Recording, parse_message
from app.session_pool import SessionPool
from app.web import WebSettings, build_demo, serve
from app.worlds import DEFAULT_MODEL, SIMULATOR, WorldFactory, default_model_available
from data.actions import Action
from data.clips import decode_mp4, read_action_log

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
LOAD_MODEL = DEFAULT_MODEL if default_model_available()[0] else SIMULATOR


# --- the checks, without a server ----------------------------------------------------------------

def test_good_messages_parse():
    assert parse_message('{"type": "input", "seq": 3, "keys": ["forward", "jump"], "camera": [-1.5, 2]}')["seq"] == 3
    assert parse_message('{"type": "ack", "n": 0}')["n"] == 0
    assert parse_message('{"type": "start", "ticket": "0123abcd0123abcd"}')["ticket"] == "0123abcd0123abcd"
    assert parse_message('{"type": "record", "on": false}')["on"] is False


@pytest.mark.parametrize("text,reason", [
    ("forward", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "fly"}', "unknown message type"),
    ('{"type": "ack", "n": 1, "extra": 2}', "exactly the fields"),
    ('{"type": "ack", "n": -1}', "whole number"),
    ('{"type": "ack", "n": true}', "whole number"),
    ('{"type": "ack", "n": 1.5}', "whole number"),
    ('{"type": "start", "ticket": "../../etc"}', "hex"),
    ('{"type": "record", "on": 1}', "true or false"),
    ('{"type": "input", "seq": 1, "keys": ["fly"], "camera": [0, 0]}', "names from"),
    ('{"type": "input", "seq": 1, "keys": "forward", "camera": [0, 0]}', "names from"),
    ('{"type": "input", "seq": 1, "keys": [1], "camera": [0, 0]}', "names from"),
    ('{"type": "input", "seq": 1, "keys": [], "camera": [0, NaN]}', "not a number"),
    ('{"type": "input", "seq": 1, "keys": [], "camera": [0, 1e9]}', "within"),
    ('{"type": "input", "seq": 1, "keys": [], "camera": [0]}', "two finite numbers"),
    ('{"type": "input", "seq": 1, "keys": [], "camera": ["0", 0]}', "two finite numbers"),
])
def test_malformed_messages_are_refused_with_a_reason(text, reason):
    with pytest.raises(Closing) as caught:
        parse_message(text)
    assert caught.value.code == 1008 and reason in caught.value.reason


def test_turns_add_up_between_frames_and_keys_are_the_latest():
    held = HeldInput()
    held.update({"seq": 1, "keys": ["forward"], "camera": [1.0, 2.0]})
    held.update({"seq": 2, "keys": ["forward", "jump"], "camera": [0.5, 3.0]})
    act, seq = held.take_action()
    assert act == Action({"forward", "jump"}, (1.5, 5.0)) and seq == 2
    assert held.take_action()[0] == Action({"forward", "jump"})  # the turn is taken once; the keys stay held


def test_the_rate_limit_allows_a_burst_then_refuses():
    now = [0.0]
    limit = RateLimit(10, clock=lambda: now[0])
    assert all(limit.allow() for _ in range(10)) and not limit.allow()
    now[0] = 0.5
    assert sum(limit.allow() for _ in range(10)) == 5


def test_only_loopback_origins_by_default(tmp_path):
    server = LiveServer(None, SessionPool(1, 1.0), None, tmp_path, LiveSettings(workers=1))
    assert server.origin_allowed("http://127.0.0.1:7860") and server.origin_allowed("http://localhost")
    assert server.origin_allowed("http://[::1]:80")
    for origin in (None, "", "null", "http://example.com", "http://127.0.0.1.example.com:7860"):
        assert not server.origin_allowed(origin), origin
    server.close()


def test_a_recording_is_saved_in_the_clip_format(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    recording = Recording(frames[0], max_frames=10)
    acts = [Action({"forward"}), Action(camera=(0.0, 3.0)), Action({"jump"})]
    for act, frame in zip(acts, frames[1:]):
        assert recording.add(act, frame)
    mp4, jsonl = recording.save(tmp_path, "live-0123456789abcdef-001")
    read, _ = read_action_log(jsonl, strict=True)
    assert decode_mp4(mp4)[0].shape == (4, 64, 64, 3) and read == acts + [Action()]  # a line per frame, a no-op pad


# --- the socket on loopback, with the simulator ---------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory):
    pytest.importorskip("gradio")
    pytest.importorskip("websockets")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("app.worlds.scenes", lambda: [SeedScene(3), SeedScene(4)])
        settings = WebSettings(models=(SIMULATOR,), port=free_port(), out_dir=tmp_path_factory.mktemp("live"),
                               max_sessions=6, live=LiveSettings(max_messages_per_s=60, max_message_bytes=512))
        demo = build_demo(WorldFactory("cpu"), settings)
        app, url = serve(demo, settings, block=False)
        yield app, url
        demo.close()
        app.live.close()


class Player:
    """A loopback client of the socket: what a browser tab does, by hand."""

    def __init__(self, url: str, origin: str | None = None) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url.replace("http", "ws").rstrip("/") + "/live/socket", origin=origin or url.rstrip("/"),
                          open_timeout=10).__enter__()  # closed by the test, or by the server
        self.seq = 0
        self.statuses: list[dict] = []

    def send(self, **message) -> None:
        self.ws.send(json.dumps(message))

    def start(self, ticket: str) -> dict:
        self.send(type="start", ticket=ticket)
        return self.status()

    def status(self) -> dict:
        while True:
            message = self.ws.recv(timeout=30)
            if isinstance(message, str):
                self.statuses.append(json.loads(message))
                return self.statuses[-1]

    def frame(self, ack: bool = True, timeout: float = 30) -> tuple[int, int, int, np.ndarray]:
        while True:
            message = self.ws.recv(timeout=timeout)
            if isinstance(message, str):
                self.statuses.append(json.loads(message))
                continue
            n, seq, index = FRAME_HEADER.unpack(message[:FRAME_HEADER.size])
            if ack:
                self.send(type="ack", n=n)
            return n, seq, index, np.asarray(Image.open(io.BytesIO(message[FRAME_HEADER.size:])).convert("RGB"))

    def hold(self, keys=(), camera=(0.0, 0.0)) -> int:
        self.seq += 1
        self.send(type="input", seq=self.seq, keys=list(keys), camera=list(camera))
        return self.seq

    def closed_with(self) -> tuple[int, str]:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                self.ws.recv(timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason


def test_a_socket_plays_at_most_the_game_rate_follows_the_keys_and_records(sim_server):
    app, url = sim_server
    ticket, _ = app.live_ticket(SIMULATOR, "fp32", "seed-3", None)
    player = Player(url)
    started = player.start(ticket)
    assert started["type"] == "started" and "seed-3" in started["label"]
    world = next(iter(app.pool._worlds.values()))
    start_pose = world.session.game.pose
    first = player.frame()[3]
    player.send(type="record", on=True)
    seq = player.hold(["forward"], (0.0, 10.0))
    t0 = time.perf_counter()
    seen = [player.frame() for _ in range(20)]
    rate = 20 / (time.perf_counter() - t0)
    assert rate <= 21, f"{rate:.1f} frames/s: faster than the game's 20"
    assert seen[-1][1] == seq and seen[-1][2] == seen[0][2] + 19  # the input seen, the world's frame index
    pose = world.session.game.pose
    assert pose.yaw == pytest.approx(start_pose.yaw + 10.0) and np.abs(seen[-1][3].astype(int) - first).mean() > 5
    assert np.hypot(pose.x - start_pose.x, pose.z - start_pose.z) > 1.0  # walked
    player.hold()
    player.send(type="record", on=False)
    while not any(s["type"] == "saved" for s in player.statuses):
        player.frame()
    saved = next(s for s in player.statuses if s["type"] == "saved")
    mp4, jsonl = Path(app.out_dir) / "dl.mp4", Path(app.out_dir) / "dl.jsonl"
    for name, path in (("mp4", mp4), ("jsonl", jsonl)):
        with urllib.request.urlopen(url.rstrip("/") + saved[name], timeout=10) as response:
            assert "attachment" in response.headers["Content-Disposition"]
            path.write_bytes(response.read())
    frames, _ = decode_mp4(mp4)
    actions, _ = read_action_log(jsonl)
    assert len(frames) == len(actions) == saved["frames"] >= 20
    assert sum(a.camera[1] for a in actions) == pytest.approx(10.0)  # one turn, taken by one step
    # A frame may be stepped between the record message and the held key: the recording may open with a no-op.
    assert all(a.keys <= {"forward"} for a in actions) and sum(a.keys == {"forward"} for a in actions) >= 18
    assert actions[-1] == Action()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url.rstrip("/") + "/live/recording/..%2Fsecret.mp4", timeout=10)
    player.ws.close()


def test_a_client_that_does_not_acknowledge_gets_no_queue(sim_server):
    app, url = sim_server
    player = Player(url)
    player.start(app.live_ticket(SIMULATOR, "fp32", "seed-4", None)[0])
    got = [player.frame(ack=False)]
    got.append(player.frame(ack=False))  # two in flight at most
    with pytest.raises(TimeoutError):
        player.frame(ack=False, timeout=0.6)
    player.send(type="ack", n=got[-1][0])  # caught up: the next frames come, and they are the newest
    n, _, index, _ = player.frame()
    assert n == 3 and index == got[-1][2] + 1
    player.ws.close()


def flood(player: Player) -> None:
    """200 inputs as fast as they go; the server may close the socket before the last is sent."""
    from websockets.exceptions import ConnectionClosed

    try:
        for i in range(200):
            player.send(type="input", seq=i, keys=[], camera=[0, 0])
    except ConnectionClosed:
        pass


def wait_for_empty_pool(app, seconds: float = 20.0) -> None:  # noqa: ANN001 (a WebApp)
    """Worlds close with their connections, asynchronously: on a busy machine an earlier test's may linger."""
    deadline = time.monotonic() + seconds
    while len(app.live.pool) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_hostile_messages_close_only_their_own_connection(sim_server):
    app, url = sim_server
    ticket = app.live_ticket(SIMULATOR, "fp32", "seed-3", None)[0]
    playing = Player(url)
    playing.start(ticket)
    cases = [
        (lambda p: None, "http://evil.example", 1008, "origin"),
        (lambda p: p.ws.send(b"\x00\x01"), None, 1008, "binary"),
        (lambda p: p.ws.send("x" * 600), None, 1009, "larger than 512"),
        (lambda p: p.ws.send("{nope"), None, 1008, "not JSON"),
        (lambda p: p.send(type="input", seq=1, keys=["forward"], camera=[0, "left"]), None, 1008, "camera"),
        (lambda p: p.send(type="ack", n=99), None, 1008, "only 0 were sent"),
        (flood, None, 1008, "messages a second"),
    ]
    for attack, origin, code, reason in cases:
        frames_before = playing.frame()[2]
        hostile = Player(url, origin=origin)
        attack(hostile)
        closed = hostile.closed_with()
        assert closed[0] == code and reason in closed[1], (reason, closed)
        assert playing.frame()[2] > frames_before  # the other player plays on
    assert app.live.errors == 0
    playing.ws.close()


def test_players_with_identical_frames_each_get_their_own_world(sim_server):
    app, url = sim_server
    ticket = app.live_ticket(SIMULATOR, "fp32", "seed-3", None)[0]
    results, errors = {}, []

    def play(i: int) -> None:
        try:
            player = Player(url)
            seed = player.start(ticket)["seed"]
            frames = [player.frame() for _ in range(15)]
            results[i] = (seed, [f[3] for f in frames])
            player.ws.close()
        except Exception as err:
            errors.append(repr(err))

    def browse() -> None:  # the page itself, fetched meanwhile: Gradio's HTTP side must not suffer either
        for _ in range(5):
            with urllib.request.urlopen(url, timeout=30) as response:
                assert response.status == 200 and len(response.read()) > 1000

    threads = [threading.Thread(target=play, args=(i,)) for i in range(4)] + [threading.Thread(target=browse)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len({seed for seed, _ in results.values()}) == 4  # each connection its own seed
    first = results[0][1]
    for _, frames in results.values():  # the simulator is deterministic: the same bytes for everyone, all delivered
        assert all(np.array_equal(a, b) for a, b in zip(frames, first))
    assert app.live.errors == 0


def test_a_full_server_says_so_and_the_others_play_on(sim_server):
    app, url = sim_server
    ticket = app.live_ticket(SIMULATOR, "fp32", "seed-4", None)[0]
    wait_for_empty_pool(app)
    players = [Player(url) for _ in range(app.settings.max_sessions)]
    for player in players:
        assert player.start(ticket)["type"] == "started"
    late = Player(url)
    refused = late.start(ticket)
    assert refused["type"] == "error" and "server is full" in refused["message"]
    assert players[0].frame()[2] >= 0
    players[0].ws.close()
    time.sleep(0.5)  # its world is closed with its connection, which makes room
    assert late.start(ticket)["type"] == "started"
    for player in players[1:] + [late]:
        player.ws.close()


# --- the live view in headless Chromium, with the shipped model ------------------------------------

@pytest.fixture
def model_server(tmp_path):
    pytest.importorskip("gradio")
    settings = WebSettings(models=tuple(dict.fromkeys((LOAD_MODEL, SIMULATOR))), port=free_port(),
                           out_dir=tmp_path / "results", max_sessions=4)
    demo = build_demo(WorldFactory("cpu", threads=1), settings)
    app, url = serve(demo, settings, block=False)
    yield app, url
    demo.close()
    app.live.close()


def test_a_world_whose_process_stops_closes_its_connection_with_what_to_do(model_server):
    web, url = model_server
    if LOAD_MODEL == SIMULATOR or web.live.processes is None:
        pytest.skip("needs the shipped model, whose worlds live in worker processes")
    player = Player(url)
    scene = worlds.scenes()[0].name  # the simulator server of this module may have put in its own scenes
    assert player.start(web.live_ticket(LOAD_MODEL, "fp32", scene, None)[0])["type"] == "started"
    player.frame()
    player.hold(["forward"])
    player.frame()
    for worker in web.live.processes.workers:
        worker.process.kill()
    code, reason = player.closed_with()
    assert code == 1011 and "press Restart" in reason


SHOWN = """() => {
  window.wmShown = [];
  document.getElementById("wm-view").addEventListener("wmframe", (event) => {
    window.wmShown.push([performance.now(), event.target.toDataURL("image/png")]);
  });
  return performance.now();
}"""


def shown_since(page, t0: float, t1: float) -> list[np.ndarray]:
    """The frames the view drew between page times t0 and t1 (ms), decoded from the canvas."""
    shots = page.evaluate("([a, b]) => window.wmShown.filter(([t]) => t >= a && t < b).map(([, d]) => d)", [t0, t1])
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(d.split(",", 1)[1]))).convert("RGB")) for d in shots]


def now_ms(page) -> float:
    return page.evaluate("() => performance.now()")


@pytest.mark.slow
def test_live_play_in_headless_chromium(model_server, tmp_path):
    """Open /, click the view, hold W 3 s, release, turn with the mouse: the view walks, stops and turns."""
    from eval.flow import radial_flow
    from eval.pose import camera_turn

    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    app, url = model_server
    downloads = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.on("download", lambda download: downloads.append(download))
        page.goto(url)
        page.wait_for_function("() => window.wmLive && window.wmLive.frames > 0", timeout=60_000)  # starts on load
        page.evaluate(SHOWN)
        view = page.locator("#wm-view").bounding_box()
        x, y = view["x"] + view["width"] / 2, view["y"] + view["height"] / 2
        page.mouse.click(x, y)  # takes the keyboard and the mouse
        # Headless Chromium grants Pointer Lock to a click, so the mouse moves below are real pointer-locked moves.
        page.wait_for_function("() => document.pointerLockElement && document.pointerLockElement.id == 'wm-view'",
                               timeout=10_000)
        page.evaluate("() => window.wmLive.socket.send(JSON.stringify({type: 'record', on: true}))")
        time.sleep(0.5)
        t_still = now_ms(page)
        time.sleep(1.5)
        t_walk = now_ms(page)
        page.keyboard.down("w")
        time.sleep(3.0)
        page.keyboard.up("w")
        t_release = now_ms(page)
        time.sleep(2.5)
        t_turn = now_ms(page)
        for step in range(1, 11):  # +200 px to the right, as a hand moves a mouse
            page.mouse.move(x + 20 * step, y)
            time.sleep(0.05)
        time.sleep(1.5)
        t_end = now_ms(page)
        rates = page.locator("#wm-rates").inner_text()
        page.screenshot(path=str(tmp_path / "live.png"))
        still = shown_since(page, t_still, t_walk)
        walk = shown_since(page, t_walk, t_release)
        stopped = shown_since(page, t_release + 1000, t_turn)  # the walk's momentum and the frames in flight first
        turn = shown_since(page, t_turn, t_end)
        # Free the mouse so the page's buttons can be clicked. A person presses Esc, which the browser itself
        # handles; a synthetic Esc from Playwright does not reach that code, so the page's API does it here.
        page.evaluate("() => document.exitPointerLock()")
        page.wait_for_function("() => !document.pointerLockElement", timeout=10_000)
        page.locator("#wm-record").click()  # stop: the mp4 and the jsonl download
        page.wait_for_function("() => document.querySelectorAll('#wm-record-links a').length == 2", timeout=30_000)
        deadline = time.time() + 30
        while len(downloads) < 2 and time.time() < deadline:
            page.wait_for_timeout(100)
        saved = {}
        for download in downloads:
            path = tmp_path / download.suggested_filename
            download.save_as(path)
            saved[path.suffix] = path
        browser.close()

    def mean_flow(frames):
        return float(np.nanmean([radial_flow(a, b) for a, b in zip(frames, frames[1:])]))

    distinct = len({f.tobytes() for f in walk})
    flow_still, flow_walk, flow_stopped = mean_flow(still), mean_flow(walk), mean_flow(stopped)
    yaw_seen = float(np.nansum([camera_turn(a, b)[1] for a, b in zip(turn, turn[1:])]))
    summary = (f"{distinct} distinct frames shown in 3 s of W; outward flow still {flow_still:+.3f}, walking "
               f"{flow_walk:+.3f}, released {flow_stopped:+.3f} px/frame; yaw read back {yaw_seen:+.1f} deg "
               f"over {len(turn)} frames; page: {rates}")
    print(summary)
    assert distinct >= 15, summary
    assert flow_walk > flow_still + 0.1 and flow_walk > flow_stopped + 0.1, summary
    assert yaw_seen > 10, summary  # 200 px at 0.15 deg/px asks for 30 deg

    # The recording holds exactly what was sent: W, released, then the turn.
    assert set(saved) == {".mp4", ".jsonl"}, downloads
    frames, _ = decode_mp4(saved[".mp4"])
    actions, _ = read_action_log(saved[".jsonl"])
    yaw_sent = sum(a.camera[1] for a in actions)
    assert len(frames) == len(actions) >= 60 and actions[-1] == Action()
    assert set().union(*(a.keys for a in actions)) == {"forward"}
    assert sum(a.keys == {"forward"} for a in actions) >= 15 and yaw_sent == pytest.approx(30.0, abs=0.5), yaw_sent
