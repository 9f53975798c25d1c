"""The Gradio page: its handlers directly (fast), then end to end in headless Chromium and under load (slow)."""

import json
import os
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from small_worlds import SeedScene

from app.session_pool import PoolFull, SessionPool, WorldExpired
from app.web import BUTTONS, WebApp, WebSettings, build_demo, serve
from app.worlds import DEFAULT_MODEL, SIMULATOR, WorldFactory, default_model_available
from data.actions import Action, to_minerl, write_actions
from data.clips import decode_mp4

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]




@pytest.fixture
def scenes(monkeypatch):
    monkeypatch.setattr("app.worlds.scenes", lambda: [SeedScene(3), SeedScene(4)])


def make_app(tmp_path, **overrides) -> WebApp:
    settings = WebSettings(models=(SIMULATOR,), out_dir=tmp_path / "results", **overrides)
    return WebApp(WorldFactory("cpu"), settings)


def play(app, handle, button, frames):
    return list(app.step(handle, button, frames))


def test_start_then_buttons_stream_frames_that_follow_the_actions(tmp_path, scenes):
    app = make_app(tmp_path)
    handle, frame, status = app.start(None, SIMULATOR, "fp32", "seed-3", None)
    assert frame.shape == (384, 384, 3) and "seed-3" in status and "frame 0" in status
    out = play(app, handle, "forward", 3)
    assert len(out) == 3 and "frame 3" in out[-1][1]
    assert np.abs(out[-1][0].astype(int) - frame.astype(int)).mean() > 1.0
    turned = play(app, handle, "turn-right", 1)[0][0]
    assert np.abs(turned.astype(int) - out[-1][0].astype(int)).mean() > 5.0
    assert app.pool.get(handle).session.game.pose.yaw == pytest.approx(
        SeedScene(3).game(64).start_pose.yaw + BUTTONS["turn-right"][2].camera[1])
    # Restarting replaces the world and starts over from the same picture.
    handle2, again, _ = app.start(handle, SIMULATOR, "fp32", "seed-3", None)
    assert np.array_equal(again, frame) and len(app.pool) == 1


def test_requests_past_the_limits_get_messages(tmp_path, scenes):
    app = make_app(tmp_path, max_frames_per_request=5, max_sessions=2)
    handle, _, _ = app.start(None, SIMULATOR, "fp32", "seed-3", None)
    assert "between 1 and 5" in play(app, handle, "forward", 6)[0][1]
    assert "whole number" in play(app, handle, "forward", "lots")[0][1]
    assert "unknown button" in play(app, handle, "fly", 1)[0][1]
    assert "expired" in play(app, "no-such-world", "forward", 1)[0][1]
    assert "unknown model" in app.start(None, "gpt", "fp32", "seed-3", None)[2]
    assert "unknown quant" in app.start(None, SIMULATOR, "int2", "seed-3", None)[2]
    other, _, _ = app.start(None, SIMULATOR, "fp32", "seed-4", None)
    full = app.start(None, SIMULATOR, "fp32", "seed-4", None)
    assert full[1] is None and "server is full: 2 worlds" in full[2]
    assert len(play(app, handle, "forward", 2)) == 2 and len(play(app, other, "back", 1)) == 1  # the others play on


def test_bad_uploads_are_refused_with_a_reason(tmp_path, scenes):
    app = make_app(tmp_path, max_upload_bytes=200_000, max_image_side=1000)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1200, 10)).save(wide)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:2000])
    heavy = tmp_path / "heavy.bmp"
    Image.new("RGB", (300, 300)).save(heavy)  # 270 kB uncompressed
    for path, reason in [(text, "not an image"), (wide, "1200x10 pixels; the limit is 1000"),
                         (cut, "corrupt or truncated"), (heavy, "264 KiB; the limit is 195 KiB")]:
        handle, frame, status = app.start(None, SIMULATOR, "fp32", "seed-3", str(path))
        assert frame is None and reason in status, status
    assert "simulator starts only from a scene" in app.start(None, SIMULATOR, "fp32", "seed-3", str(good))[2]


def test_an_uploaded_picture_starts_a_model_world(tmp_path, scenes):
    seen = []

    def factory(model, quant, start, seed):  # a stand-in model that shows its start picture
        seen.append((model, quant, start.image.shape))
        return type("Still", (), {"start": lambda self, image: image, "step": lambda self, act: start.image})()

    picture = tmp_path / "p.jpg"
    Image.fromarray(np.full((300, 200, 3), (200, 40, 40), np.uint8)).save(picture)
    app = WebApp(factory, WebSettings(models=("default",), out_dir=tmp_path / "r"))
    handle, frame, status = app.start(None, "default", "int8", None, str(picture))
    assert seen == [("default", "int8", (64, 64, 3))] and "p.jpg" in status
    assert np.abs(frame.astype(int) - [200, 40, 40]).max() <= 3  # decoded, cropped, resized to 64x64


def test_batch_scripts_make_an_mp4_and_bad_ones_a_message(tmp_path, scenes):
    app = make_app(tmp_path, max_batch_frames=30)
    script = "\n".join(json.dumps(to_minerl(Action({"forward"}, (0.0, 2.0)))) for _ in range(12))
    preview, download, status = app.batch(SIMULATOR, "fp32", "seed-3", None, script, None)
    frames, fps = decode_mp4(Path(download))
    assert frames.shape == (13, 64, 64, 3) and fps == 20 and "12 actions" in status
    assert decode_mp4(Path(preview))[0].shape == (13, 256, 256, 3)
    vpt = tmp_path / "walk.jsonl"
    write_actions(vpt, [Action({"jump"})] * 4)
    assert decode_mp4(Path(app.batch(SIMULATOR, "fp32", "seed-4", None, "", str(vpt))[1]))[0].shape[0] == 5
    bad = [
        ('{"forward": 1}\n{"forwrd": 1}', "pasted script:2: unknown key(s) ['forwrd']"),
        ('{"forward": 1, "camera": [NaN, 0]}', "NaN"),
        ('{"forward": 1, "camera": [0, 500]}', "exceeds the 180.0 deg limit"),
        ("\n".join(['{"back": 1}'] * 31), "31 actions; the limit is 30"),
        ("", "empty"),
        ("forward forward", "bad JSON"),
    ]
    for text, message in bad:
        preview, download, status = app.batch(SIMULATOR, "fp32", "seed-3", None, text, None)
        assert download is None and message in status, status


def test_idle_worlds_make_room_for_new_ones():
    now = [0.0]
    pool = SessionPool(max_sessions=2, idle_timeout_s=60, clock=lambda: now[0])
    a = pool.add("world a", "a")
    now[0] = 50.0
    b = pool.add("world b", "b")
    with pytest.raises(PoolFull):
        pool.add("world c", "c")
    now[0] = 70.0  # a has been idle 70 s, b only 20 s
    c = pool.add("world c", "c")
    assert pool.get(b).session == "world b" and pool.get(c).session == "world c"
    with pytest.raises(WorldExpired):
        pool.get(a)
    pool.close(c)
    assert len(pool) == 1


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_sessions"):
        WebSettings(max_sessions=0)
    with pytest.raises(ValueError, match="quants"):
        WebSettings(quants=("int2",))


# --- the real page: Gradio served on loopback, Chromium and many clients ---------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The shipped model when it is there (the load test then measures it), and the simulator.
LOAD_MODEL = DEFAULT_MODEL if default_model_available()[0] else SIMULATOR


@pytest.fixture
def server(tmp_path, scenes):
    pytest.importorskip("gradio")
    settings = WebSettings(models=tuple(dict.fromkeys((SIMULATOR, LOAD_MODEL))), port=free_port(),
                           out_dir=tmp_path / "results", max_sessions=12, concurrency=4)
    demo = build_demo(WorldFactory("cpu"), settings)
    _, url = serve(demo, settings, block=False)
    yield url
    demo.close()


def frame_src(page) -> str:
    return page.locator("#wm-frame img").get_attribute("src") or ""


# Gradio's own queue code trips pandas deprecation warnings; they are not ours to fix.
@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
@pytest.mark.slow
def test_the_page_in_headless_chromium(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        elsewhere = []  # the page must work offline: nothing may be fetched from anywhere but the server
        page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else elsewhere.append(r.url))
        page.goto(server)
        page.locator("#wm-start").click()
        page.wait_for_selector("#wm-frame img", timeout=30_000)
        first = frame_src(page)
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("w")  # the keydown handler clicks the W button
        page.wait_for_function("s => { const i = document.querySelector('#wm-frame img');"
                               " return i && i.src !== s; }", arg=first, timeout=30_000)
        page.wait_for_function("() => /frame 4/.test(document.querySelector('#wm-status').innerText)",
                               timeout=30_000)
        moved = frame_src(page)
        page.locator("#wm-turn-right").click()
        page.wait_for_function("() => /frame 8/.test(document.querySelector('#wm-status').innerText)",
                               timeout=30_000)
        assert frame_src(page) != moved
        page.screenshot(path=str(tmp_path / "web.png"))

        page.get_by_role("tab", name="Batch").click()
        script = "\n".join(json.dumps(to_minerl(Action({"forward"}, (0.0, 3.0)))) for _ in range(10))
        page.locator("#wm-script textarea").fill(script)
        page.locator("#wm-generate").click()
        page.wait_for_function("() => /10 actions/.test(document.querySelector('#wm-batch-status').innerText)",
                               timeout=60_000)
        with page.expect_download(timeout=30_000) as info:
            page.locator("#wm-download a").first.click()
        saved = tmp_path / "download.mp4"
        info.value.save_as(saved)
        frames, _ = decode_mp4(saved)
        assert frames.shape == (11, 64, 64, 3)

        page.locator("#wm-script textarea").fill('{"forward": 1, "camera": [NaN, 0]}')
        page.locator("#wm-generate").click()
        page.wait_for_function("() => /NaN/.test(document.querySelector('#wm-batch-status').innerText)",
                               timeout=30_000)

        page.get_by_role("tab", name="Play").click()
        fake = tmp_path / "holiday.png"
        fake.write_text("this is not a picture")
        page.locator("#wm-upload input[type=file]").set_input_files(str(fake))
        page.wait_for_selector("#wm-upload >> text=holiday.png", timeout=30_000)
        page.locator("#wm-start").click()
        page.wait_for_function("() => /holiday.png: not an image/.test("
                               "document.querySelector('#wm-status').innerText)", timeout=30_000)
        browser.close()
    assert not elsewhere, elsewhere[:5]


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
@pytest.mark.slow
def test_eight_concurrent_sessions_on_loopback(server):
    client_module = pytest.importorskip("gradio_client")
    steps, latencies, errors = 10, [], []

    def visitor(i: int) -> None:
        client = client_module.Client(server, verbose=False, analytics_enabled=False, download_files=False)
        t0 = time.perf_counter()
        status = client.predict(LOAD_MODEL, "fp32", f"seed-{3 + i % 2}", None, api_name="/start")[1]
        latencies.append(time.perf_counter() - t0)
        if "frame 0" not in status:
            errors.append(status)
        for k in range(steps):
            t0 = time.perf_counter()
            status = client.predict(2, api_name="/step_forward" if k % 2 else "/step_turn_left")[1]
            latencies.append(time.perf_counter() - t0)
            if f"frame {2 * (k + 1)}" not in status:
                errors.append(status)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(visitor, i) for i in range(8)]:
            future.result()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    print(f"\n{LOAD_MODEL}: 8 sessions x {steps + 1} requests in {wall:.1f} s: latency p50 {q[49] * 1000:.0f} ms, "
          f"p90 {q[89] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    assert not errors, errors[:3]
    assert len(latencies) == 8 * (steps + 1)
