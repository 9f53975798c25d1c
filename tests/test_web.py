"""The Gradio page: its handlers directly (fast), then end to end in headless Chromium and under load (slow)."""

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from small_worlds import SeedScene

from app.session_pool import PoolFull, SessionPool, WorldExpired
from app.web import WebApp, WebSettings, build_demo, serve
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


def test_the_start_handler_checks_the_choice_and_hands_out_a_ticket(tmp_path, scenes):
    app = make_app(tmp_path, max_sessions=1)
    ticket, status = app.live_ticket(SIMULATOR, "fp32", "seed-3", None)
    chosen = app.tickets.get(ticket)
    assert chosen.model == SIMULATOR and chosen.start.name == "seed-3" and chosen.start.image.shape == (64, 64, 3)
    assert "seed-3" in status and app.tickets.get(ticket) is chosen  # a ticket serves again (reconnect, restart)
    assert "unknown model" in app.live_ticket("gpt", "fp32", "seed-3", None)[1]
    assert "unknown quant" in app.live_ticket(SIMULATOR, "int2", "seed-3", None)[1]
    assert "pick a start scene" in app.live_ticket(SIMULATOR, "fp32", None, None)[1]
    app.pool.add("someone's world", "label")
    ticket, status = app.live_ticket(SIMULATOR, "fp32", "seed-3", None)
    assert ticket == "" and "server is full: 1 worlds" in status


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
        ticket, status = app.live_ticket(SIMULATOR, "fp32", "seed-3", str(path))
        assert ticket == "" and reason in status, status
    assert "simulator starts only from a scene" in app.live_ticket(SIMULATOR, "fp32", "seed-3", str(good))[1]


def test_an_uploaded_picture_is_the_start_of_a_model_world(tmp_path, scenes):
    picture = tmp_path / "p.jpg"
    Image.fromarray(np.full((300, 200, 3), (200, 40, 40), np.uint8)).save(picture)
    app = WebApp(WorldFactory("cpu"), WebSettings(models=("default",), out_dir=tmp_path / "r"))
    ticket, status = app.live_ticket("default", "int8", None, str(picture))
    chosen = app.tickets.get(ticket)
    assert (chosen.model, chosen.quant, chosen.start.name) == ("default", "int8", "p.jpg") and "p.jpg" in status
    assert np.abs(chosen.start.image.astype(int) - [200, 40, 40]).max() <= 3  # decoded, cropped, resized to 64x64


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
        page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:", server.replace("http", "ws")))
                else elsewhere.append(r.url))
        page.goto(server)
        page.wait_for_function("() => window.wmLive && window.wmLive.frames > 0", timeout=30_000)  # live on load
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

        page.get_by_role("tab", name="Live").click()
        fake = tmp_path / "holiday.png"
        fake.write_text("this is not a picture")
        page.locator("#wm-upload input[type=file]").set_input_files(str(fake))
        page.wait_for_selector("#wm-upload >> text=holiday.png", timeout=30_000)
        page.locator("#wm-start").click()
        page.wait_for_function("() => /holiday.png: not an image/.test("
                               "document.querySelector('#wm-status').innerText)", timeout=30_000)
        browser.close()
    assert not elsewhere, elsewhere[:5]
