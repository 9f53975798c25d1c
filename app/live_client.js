// The live view's client: held keys and mouse motion go up a WebSocket, frames come down and are drawn as they
// arrive. No libraries and nothing from outside the server: the page works offline. The protocol is described
// at the top of app/live.py. window.wmLive.start(ticket) is called by the page's Start/Restart handler.
(() => {
  if (window.wmLive) { return; }
  // KeyboardEvent.code (the key's place, whatever the layout) -> action key. Ctrl is sneak, as C is, and
  // shift sprints: a browser owns Ctrl+W (closes the tab), so ctrl cannot be the key held while walking.
  const KEYMAP = {
    KeyW: "forward", KeyS: "back", KeyA: "left", KeyD: "right", Space: "jump",
    ShiftLeft: "sprint", ShiftRight: "sprint", KeyC: "sneak", ControlLeft: "sneak", ControlRight: "sneak",
  };
  const MOUSE_BUTTONS = { 0: "attack", 2: "use" };
  const HEADER_BYTES = 12;  // <III: message number, input seq seen, world frame index
  const live = {
    socket: null, ticket: null, engaged: false, recording: false,
    keys: new Set(), buttons: new Set(), camera: [0, 0], flushTimer: null,
    seq: 0, sentAt: new Map(), latencies: [], shownAt: [], frames: 0,
    sensitivity: Number(localStorage.getItem("wm-sensitivity")) || 0.15,  // degrees per pixel of mouse motion
    drawing: Promise.resolve(),
  };
  window.wmLive = live;
  const $ = (id) => document.getElementById(id);
  const view = () => $("wm-view");
  const say = (text) => { const s = $("wm-live-state"); if (s) { s.textContent = text; } };

  function held() {
    const names = new Set();
    live.keys.forEach((code) => names.add(KEYMAP[code]));
    live.buttons.forEach((b) => names.add(MOUSE_BUTTONS[b]));
    return [...names].sort();
  }

  function sendInput() {
    clearTimeout(live.flushTimer);
    live.flushTimer = null;
    if (!live.socket || live.socket.readyState !== WebSocket.OPEN) { return; }
    live.seq += 1;
    live.sentAt.set(live.seq, performance.now());
    const camera = [live.camera[0], live.camera[1]].map((v) => Math.max(-180, Math.min(180, v)));
    live.camera = [0, 0];
    live.socket.send(JSON.stringify({ type: "input", seq: live.seq, keys: held(), camera: camera }));
    const h = $("wm-held");
    if (h) { h.textContent = held().join(" ") || "-"; }
  }

  function connect() {
    if (live.socket && live.socket.readyState <= WebSocket.OPEN) { return; }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/live/socket`);
    socket.binaryType = "arraybuffer";
    live.socket = socket;
    say("connecting…");
    socket.onopen = () => {
      if (live.ticket) { socket.send(JSON.stringify({ type: "start", ticket: live.ticket })); }
      sendInput();
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") { onStatus(JSON.parse(event.data)); } else { onFrame(event.data, socket); }
    };
    socket.onclose = (event) => {
      if (live.socket === socket) { live.socket = null; }
      live.recording = false;
      showRecording();
      say(`disconnected${event.reason ? ": " + event.reason : ""}; click the view to play again`);
    };
  }

  function onStatus(message) {
    if (message.type === "started") { say(message.label); }
    else if (message.type === "error") { say(`cannot start: ${message.message}`); }
    else if (message.type === "recording") { live.recording = message.on; showRecording(); }
    else if (message.type === "saved") { live.recording = false; showRecording(); download(message); }
  }

  function onFrame(data, socket) {
    const header = new DataView(data, 0, HEADER_BYTES);
    const n = header.getUint32(0, true), seq = header.getUint32(4, true), index = header.getUint32(8, true);
    const arrived = performance.now();
    if (seq > 0 && live.sentAt.has(seq)) {  // the first frame that has seen input `seq`
      live.latencies.push(arrived - live.sentAt.get(seq));
      live.latencies = live.latencies.slice(-40);
      for (const s of live.sentAt.keys()) { if (s <= seq) { live.sentAt.delete(s); } }
    }
    const blob = new Blob([new Uint8Array(data, HEADER_BYTES)], { type: "image/png" });
    live.drawing = live.drawing.then(() => createImageBitmap(blob)).then((bitmap) => {
      const canvas = view();
      if (canvas) {
        const ctx = canvas.getContext("2d");
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      }
      bitmap.close();
      live.frames += 1;
      live.shownAt.push(performance.now());
      if (socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify({ type: "ack", n: n })); }
      if (canvas) { canvas.dispatchEvent(new CustomEvent("wmframe", { detail: { n, seq, index } })); }
      showRates(index);
    }).catch(() => {});
  }

  function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
  }

  function showRates(index) {
    const now = performance.now();
    live.shownAt = live.shownAt.filter((t) => now - t < 2000);
    const fps = live.shownAt.length / 2;
    const latency = median(live.latencies);
    const rates = $("wm-rates");
    if (rates) {
      rates.textContent = `${fps.toFixed(1)} frames/s · input-to-frame ${isNaN(latency) ? "–" : latency.toFixed(0)} ms · frame ${index}`;
    }
  }

  function showRecording() {
    const button = $("wm-record");
    if (button) { button.textContent = live.recording ? "■ Stop and download" : "● Record"; }
  }

  function download(saved) {
    const links = $("wm-record-links");
    if (links) {
      links.innerHTML = "";
      for (const [label, href] of [["mp4", saved.mp4], ["actions jsonl", saved.jsonl]]) {
        const a = document.createElement("a");
        a.href = href; a.download = href.split("/").pop(); a.textContent = label;
        links.append(a, " ");
      }
      links.querySelectorAll("a").forEach((a) => a.click());
    }
  }

  // --- input ----------------------------------------------------------------------------------

  function release() {
    live.keys.clear();
    live.buttons.clear();
    live.engaged = false;
    sendInput();
  }

  function engage() {
    const canvas = view();
    canvas.focus();
    live.engaged = true;
    if (!live.socket && live.ticket) { connect(); }
    try {
      const asked = canvas.requestPointerLock();
      if (asked && asked.catch) { asked.catch(() => {}); }
    } catch (err) { /* no pointer lock here: the keys still work */ }
  }

  document.addEventListener("mousedown", (event) => {
    const canvas = view();
    if (!canvas || event.target !== canvas) { return; }
    event.preventDefault();
    if (!live.engaged || document.activeElement !== canvas) { engage(); return; }  // the first click takes the keys
    if (document.pointerLockElement !== canvas) { engage(); }
    if (event.button in MOUSE_BUTTONS) { live.buttons.add(event.button); sendInput(); }
  });
  document.addEventListener("mouseup", (event) => {
    if (live.buttons.delete(event.button)) { sendInput(); }
  });
  document.addEventListener("contextmenu", (event) => { if (event.target === view()) { event.preventDefault(); } });
  document.addEventListener("mousemove", (event) => {
    const canvas = view();
    if (!canvas || document.pointerLockElement !== canvas) { return; }
    // Screen y grows downwards: moving the mouse up looks up (+pitch); right turns right (+yaw).
    live.camera[0] -= event.movementY * live.sensitivity;
    live.camera[1] += event.movementX * live.sensitivity;
    if (!live.flushTimer) { live.flushTimer = setTimeout(sendInput, 15); }  // at most one message per ~15 ms
  });
  document.addEventListener("keydown", (event) => {
    const canvas = view();
    if (!canvas || document.activeElement !== canvas || !(event.code in KEYMAP)) { return; }
    event.preventDefault();  // no page scrolling on space
    if (!live.keys.has(event.code)) { live.keys.add(event.code); sendInput(); }
  });
  document.addEventListener("keyup", (event) => {
    if (live.keys.delete(event.code)) { event.preventDefault(); sendInput(); }
  });
  document.addEventListener("focusout", (event) => { if (event.target === view()) { release(); } });
  window.addEventListener("blur", () => { if (live.keys.size || live.buttons.size) { release(); } });

  document.addEventListener("click", (event) => {
    if (event.target && event.target.id === "wm-record" && live.socket && live.socket.readyState === WebSocket.OPEN) {
      live.socket.send(JSON.stringify({ type: "record", on: !live.recording }));
    }
  });
  document.addEventListener("input", (event) => {
    if (event.target && event.target.id === "wm-sensitivity") {
      live.sensitivity = Number(event.target.value);
      localStorage.setItem("wm-sensitivity", String(live.sensitivity));
      const shown = $("wm-sensitivity-value");
      if (shown) { shown.textContent = live.sensitivity.toFixed(2); }
    }
  });

  live.start = (ticket) => {
    if (!ticket) { return; }
    live.ticket = ticket;
    const slider = $("wm-sensitivity");
    if (slider) { slider.value = String(live.sensitivity); $("wm-sensitivity-value").textContent = live.sensitivity.toFixed(2); }
    if (live.socket && live.socket.readyState === WebSocket.OPEN) {
      live.socket.send(JSON.stringify({ type: "start", ticket: ticket }));
    } else {
      connect();
    }
  };
})();
