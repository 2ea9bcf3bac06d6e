// One video's page: the video with boxes and skeletons drawn from the per-frame data, per person
// a category heat map and V/A/D curves with a playhead, and the table rows of the current frame.
(function () {
  const D = window.BEENET, SP = D.subpixel, NC = D.categories.length, fps = D.fps;
  const duration = D.num_frames / fps;
  const VADC = ["rgb(46,160,67)", "rgb(230,126,34)", "rgb(52,120,200)"];
  const W = D.windows;
  const people = D.people.map((p) => ({
    ...p, fr: B.i32(p.frames), bx: B.i16(p.box), cf: B.u8(p.conf), ip: B.u8(p.interp), wi: B.i32(p.win),
    sn: B.i32(p.seen), kf: p.kp ? B.i32(p.kp.frames) : null, kxy: p.kp ? B.i16(p.kp.xy) : null, kc: p.kp ? B.u8(p.kp.c) : null,
    on: true, panel: null, head: null,
  }));
  const state = { frame: -1, solo: null };
  window.__beenetDrawn = [];

  // ---- layout --------------------------------------------------------------------------------
  const m = D.meta || {};
  const src = D.video ? ((location.protocol.startsWith("http") && D.video.media) ? "/" + D.video.media : D.video.file) : null;
  const header = B.el("header", {},
    B.el("a", { href: D.home || "index.html", text: "\u2190 all videos" }),
    B.el("h1", { text: D.name }),
    B.el("span", { class: "meta", text: [`${D.width}\u00d7${D.height}`, `${B.f(fps, 2)} fps`, `${D.num_frames} frames (${B.time(duration)})`,
      m.model ? `model ${m.model}` : null, `data: ${[D.sources.windows, D.sources.frames, D.sources.keypoints].filter(Boolean).join(", ")}`]
      .filter(Boolean).join(" \u00b7 ") }));
  const video = src ? B.el("video", { src, preload: "auto", playsinline: true, muted: true, id: "video" }) : null;
  const overlay = B.el("canvas", { id: "overlay" });
  const stage = B.el("div", { class: "stage", style: `--ar: ${D.width} / ${D.height}` },
    video || B.el("div", { class: "placeholder" }), overlay);
  const clock = B.el("span", { class: "clock" });
  const play = B.el("button", { text: "\u25b6 play", onclick: () => toggle() });
  const scrub = B.el("input", { type: "range", class: "scrub", min: 0, max: Math.max(0, D.num_frames - 1), step: 1, value: 0,
    oninput: (e) => seekFrame(+e.target.value) });
  const controls = B.el("div", { class: "controls" }, play,
    B.el("button", { text: "\u2190 frame", title: "previous frame (\u2190)", onclick: () => step(-1) }),
    B.el("button", { text: "frame \u2192", title: "next frame (\u2192)", onclick: () => step(1) }), scrub, clock);
  const keys = B.el("div", { class: "keys" }, B.el("kbd", { text: "space" }), " play/pause \u00b7 ", B.el("kbd", { text: "\u2190" }), " ",
    B.el("kbd", { text: "\u2192" }), " one frame (", B.el("kbd", { text: "shift" }), " 1 s) \u00b7 ", B.el("kbd", { text: "0" }), "\u2013",
    B.el("kbd", { text: "9" }), " only that person (again: everyone), ", B.el("kbd", { text: "esc" }), " everyone \u00b7 click a timeline to seek");
  const filter = B.el("div", { id: "filter" });
  const rowsBody = B.el("tbody");
  const rowsCard = B.el("div", { class: "card" }, B.el("h2", { id: "rows-title", text: "Table rows at this frame" }),
    B.el("div", { class: "rows" }, B.el("table", { id: "rows" }, B.el("thead", {}, B.el("tr", {},
      ...["person", "conf.", "box x, y, w, h", "window", "top emotions", "V / A / D"]
        .map((h, i) => B.el("th", { class: i === 1 ? "num" : null, text: h })))), rowsBody)));
  const right = B.el("div", { class: "right", id: "people" });
  const left = B.el("div", { class: "left" }, stage, controls, B.el("div", { class: "card" }, B.el("h2", { text: "People" }), filter, keys), rowsCard);
  const main = B.el("main", {});
  if (m.trained_on && m.trained_on.kind === "synthetic")
    main.append(B.el("div", { class: "note synthetic", text: "This model was trained on synthetic stick figures " +
      "(beenet synth): its scores on real video are not meaningful. Use it to try the pipeline; for real " +
      "results use a model trained on BoLD." }));
  if (D.note) main.append(B.el("div", { class: "note", text: D.note }));
  if (!people.length) {
    main.append(B.el("div", { class: "empty", id: "empty" },
      B.el("strong", { text: "Nobody was found in this video." }),
      ` The pose backend detected no person in its ${D.num_frames} frames, so ${D.sources.windows} has no rows and there is nothing to draw.` +
      " If people are visible, they may be too small or cut off; see docs/predict.md for the pose options."));
  }
  main.append(B.el("div", { class: "layout" }, left, right));
  document.body.append(header, main);

  // ---- per person panels ---------------------------------------------------------------------
  let TW = 900;
  const ROW = 9, HM_H = NC * ROW, PRES_H = 6, VAD_H = 64, LABEL_W = 108;
  function windowAt(p, frame) {
    // The person's window row shown at a frame: the per-frame link where there is one, else the covering window with the closest centre.
    const i = B.lower(p.fr, frame);
    if (i < p.fr.length && p.fr[i] === frame && p.wi[i] >= 0) return p.wi[i];
    let best = -1, dist = Infinity;
    for (let r = 0; r < W.person.length; r++) {
      if (W.person[r] !== p.id || frame < W.start[r] || frame > W.end[r] || W.start[r] === W.end[r]) continue;
      const d = Math.abs(frame - (W.start[r] + W.end[r]) / 2);
      if (d < dist) { dist = d; best = r; }
    }
    return best;
  }
  function panel(p) {
    const scored = W.person.includes(p.id);
    if (!scored) {
      const el = B.el("div", { class: "card person unscored", style: `--pc: ${p.colour}`, id: `person-${p.id}` },
        B.el("h3", {}, B.el("span", { text: `person ${p.id}` }),
          B.el("span", { class: "top", text: `seen in ${p.n} frame${p.n === 1 ? "" : "s"} (${B.time(p.fr[0] / fps)}–${B.time(p.fr[p.fr.length - 1] / fps)}); ` +
            "not scored: not present long enough in any window" })));
      p.panel = el;
      return el;
    }
    const c = B.el("canvas", { height: HM_H + PRES_H + 4 + VAD_H + 16 });
    const head = B.el("div", { class: "playhead" });
    const track = B.el("div", { class: "track", "data-person": p.id }, c, head);
    track.addEventListener("click", (e) => {
      const r = c.getBoundingClientRect(), x = (e.clientX - r.left) / r.width * TW;
      if (x < LABEL_W) return;
      seekFrame(Math.floor((x - LABEL_W) / (TW - LABEL_W) * D.num_frames));
    });
    const el = B.el("div", { class: "card person", style: `--pc: ${p.colour}`, id: `person-${p.id}` },
      B.el("h3", {}, B.el("span", { text: `person ${p.id}` }),
        B.el("span", { class: "top", text: p.top.length ? "on average: " + p.top.map(([n, v]) => `${n} ${B.f(v)}`).join(", ") : "no window scored" }),
        B.el("span", { class: "top", text: `seen in ${p.n} frame${p.n === 1 ? "" : "s"}` })),
      track,
      B.el("div", { class: "legend" }, B.el("span", { text: "heat map: category score 0 \u2192 1 (dark \u2192 yellow), grey where the person was not seen" }),
        B.el("span", { text: "thin bar: frames where the person was seen" }),
        ...D.vad_names.map((n, k) => B.el("span", {}, B.el("span", { class: "swatch", style: `background:${VADC[k]}` }), n))));
    p.panel = el; p.head = head; p.track = track; p.canvas = c;
    return el;
  }
  function drawPanel(p) {
    const c = p.canvas, dpr = window.devicePixelRatio || 1, cssH = HM_H + PRES_H + 4 + VAD_H + 16;
    TW = Math.max(LABEL_W + 100, Math.round(p.track.clientWidth || 900));
    c.width = TW * dpr; c.height = cssH * dpr; c.style.height = cssH + "px";
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const plotW = TW - LABEL_W;
    g.fillStyle = "#fff"; g.fillRect(0, 0, TW, cssH);
    g.font = "9px system-ui, sans-serif"; g.textBaseline = "middle"; g.fillStyle = "#5b6475"; g.textAlign = "right";
    D.categories.forEach((n, k) => g.fillText(n, LABEL_W - 4, k * ROW + ROW / 2));
    // Per pixel column, the window shown: only where the person was seen in the column's frames
    // (p.seen spans), so a window that began before they appeared is not drawn from its start.
    const img = new ImageData(plotW, NC), cols = new Int32Array(plotW), N = D.num_frames, sp = p.sn;
    for (let x = 0, j = 0; x < plotW; x++) {
      const a = Math.floor(x / plotW * N), b = Math.max(a, Math.ceil((x + 1) / plotW * N) - 1);
      while (j < sp.length / 2 && sp[2 * j + 1] < a) j++;
      if (j >= sp.length / 2 || sp[2 * j] > b) { cols[x] = -1; continue; }
      const lo = Math.max(a, sp[2 * j]), hi = Math.min(b, sp[2 * j + 1]);
      cols[x] = windowAt(p, Math.min(hi, Math.max(lo, Math.floor((x + 0.5) / plotW * N))));
    }
    for (let x = 0; x < plotW; x++) {
      const r = cols[x];
      for (let k = 0; k < NC; k++) {
        const rgb = r < 0 ? [240, 241, 244] : B.ramp(W.cat[r * NC + k]);
        const o = (k * plotW + x) * 4;
        img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2]; img.data[o + 3] = 255;
      }
    }
    const off = document.createElement("canvas");
    off.width = plotW; off.height = NC; off.getContext("2d").putImageData(img, 0, 0);
    g.imageSmoothingEnabled = false;
    g.drawImage(off, LABEL_W, 0, plotW, HM_H);
    // presence strip
    g.fillStyle = p.colour;
    const y0 = HM_H + 2;
    for (let i = 0; i < p.fr.length; i++) g.fillRect(LABEL_W + p.fr[i] / D.num_frames * plotW, y0, Math.max(1, plotW / D.num_frames), PRES_H);
    // VAD
    const vy = y0 + PRES_H + 4, yOf = (v) => vy + VAD_H - (Math.min(10, Math.max(1, v)) - 1) / 9 * VAD_H;
    g.strokeStyle = "#e5e7eb"; g.lineWidth = 1;
    for (const v of [1, 5.5, 10]) { g.beginPath(); g.moveTo(LABEL_W, yOf(v) + 0.5); g.lineTo(TW, yOf(v) + 0.5); g.stroke(); }
    g.fillStyle = "#5b6475"; g.fillText("V/A/D 10", LABEL_W - 4, yOf(10) + 4); g.fillText("5.5", LABEL_W - 4, yOf(5.5)); g.fillText("1", LABEL_W - 4, yOf(1) - 3);
    for (let k = 0; k < 3; k++) {
      g.strokeStyle = VADC[k]; g.lineWidth = 1.6; g.beginPath();
      let pen = false;
      for (let x = 0; x < plotW; x++) {
        const r = cols[x];
        if (r < 0) { pen = false; continue; }
        const y = yOf(W.vad[r * 3 + k]);
        if (pen) g.lineTo(LABEL_W + x, y); else g.moveTo(LABEL_W + x, y);
        pen = true;
      }
      g.stroke();
    }
    g.fillStyle = "#5b6475"; g.textAlign = "left";
    const axisY = vy + VAD_H + 9;
    const stepS = [1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => duration / s <= 10) || 600;
    for (let t = 0; t <= duration - 0.45 * stepS; t += stepS) {
      const x = LABEL_W + t / duration * plotW;
      g.fillRect(x, axisY - 8, 1, 4); g.fillText(B.time(t).replace(/\.00$/, ""), Math.min(x + 2, TW - 30), axisY + 1);
    }
  }
  people.forEach((p, i) => {
    right.append(panel(p));
    const chip = B.el("label", { class: "chip", "data-person": p.id, title: p.id < 10 ? `key ${p.id}: only this person` : null },
      B.el("input", { type: "checkbox", checked: true, onchange: (e) => { p.on = e.target.checked; state.solo = null; syncFilter(); } }),
      B.el("span", { class: "swatch", style: `background:${p.colour}` }), `${p.id}`);
    p.chip = chip;
    filter.append(chip);
  });
  const drawPanels = () => people.forEach((p) => p.canvas && drawPanel(p));
  drawPanels();
  let resizeTimer = null;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { drawPanels(); draw(true); }, 150); });
  function syncFilter() {
    for (const p of people) {
      p.chip.classList.toggle("off", !p.on);
      p.chip.querySelector("input").checked = p.on;
      p.panel.style.display = p.on ? "" : "none";
      if (p.on && p.canvas && p.canvas.width !== Math.round(p.track.clientWidth * (window.devicePixelRatio || 1))) drawPanel(p);
    }
    draw(true);
  }
  function solo(i) {
    if (i === null || state.solo === i) { state.solo = null; people.forEach((p) => (p.on = true)); }
    else { state.solo = i; people.forEach((p, k) => (p.on = k === i)); }
    syncFilter();
  }

  // ---- time ----------------------------------------------------------------------------------
  function frameNow() {
    const t = video ? video.currentTime : state.t || 0;
    return Math.max(0, Math.min(D.num_frames - 1, Math.floor(t * fps + 1e-4)));
  }
  function seekFrame(f) {
    f = Math.max(0, Math.min(D.num_frames - 1, f));
    const t = (f + 0.5) / fps;
    if (video) video.currentTime = t; else state.t = t;
    draw(true);
  }
  function step(n) { if (video) video.pause(); seekFrame(frameNow() + n); }
  function toggle() {
    if (!video) return;
    if (!video.paused) { video.pause(); return; }
    // play() answers with a promise that a pause() before playback starts rejects (AbortError):
    // that is the user's own toggle, not an error.
    const started = video.play();
    if (started && started.catch) started.catch((e) => { if (!e || e.name !== "AbortError") console.error(e); });
  }
  if (video) {
    video.addEventListener("play", () => (play.textContent = "\u275a\u275a pause"));
    video.addEventListener("pause", () => (play.textContent = "\u25b6 play"));
    for (const ev of ["seeked", "loadedmetadata", "timeupdate"]) video.addEventListener(ev, () => draw(true));
    video.addEventListener("error", () => main.prepend(B.el("div", { class: "note", text:
      `The browser cannot play ${D.video.name} (${src}); the boxes and timelines below still work with the slider.` })));
  }
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type !== "checkbox" && e.target.type !== "range") return;
    if (e.key === " ") { e.preventDefault(); toggle(); }
    else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      step((e.key === "ArrowRight" ? 1 : -1) * (e.shiftKey ? Math.round(fps) : 1));
    } else if (/^[0-9]$/.test(e.key)) {
      const i = people.findIndex((p) => p.id === +e.key);
      if (i >= 0) solo(i);
    } else if (e.key === "Escape") solo(null);
  });

  // ---- drawing -------------------------------------------------------------------------------
  function top3(r) {
    const s = Array.from({ length: NC }, (_, k) => [D.categories[k], W.cat[r * NC + k]]);
    return s.sort((a, b) => b[1] - a[1]).slice(0, 3);
  }
  function draw(force) {
    const f = frameNow();
    if (!force && f === state.frame) return;
    state.frame = f;
    const rect = stage.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    const cw = Math.round(rect.width * dpr), ch = Math.round(rect.height * dpr);
    if (overlay.width !== cw || overlay.height !== ch) { overlay.width = cw; overlay.height = ch; }
    const g = overlay.getContext("2d"), sx = cw / D.width, sy = ch / D.height;
    g.clearRect(0, 0, cw, ch);
    const drawn = [], rows = [];
    const lw = Math.max(2, Math.round(2 * dpr)), font = Math.max(11, Math.round(Math.min(13, D.height / 28) * dpr));
    for (const p of people) {
      const i = B.lower(p.fr, f);
      const here = i < p.fr.length && p.fr[i] === f;
      if (!here) continue;
      const x = p.bx[4 * i] / SP, y = p.bx[4 * i + 1] / SP, w = p.bx[4 * i + 2] / SP, h = p.bx[4 * i + 3] / SP;
      const r = p.wi[i] >= 0 ? p.wi[i] : windowAt(p, f);
      rows.push({ p, i, x, y, w, h, r });
      if (!p.on) continue;
      // skeleton
      if (p.kf) {
        const j = B.lower(p.kf, f);
        if (j < p.kf.length && p.kf[j] === f) {
          g.strokeStyle = p.colour; g.lineWidth = lw; g.lineCap = "round";
          const pt = (k) => (p.kc[j * 18 + k] >= 25 ? [p.kxy[(j * 18 + k) * 2] / SP * sx, p.kxy[(j * 18 + k) * 2 + 1] / SP * sy] : null);
          for (const [a, b] of D.edges) {
            const A = pt(a), Bp = pt(b);
            if (!A || !Bp) continue;
            g.beginPath(); g.moveTo(A[0], A[1]); g.lineTo(Bp[0], Bp[1]); g.stroke();
          }
          g.fillStyle = "#fff";
          for (let k = 0; k < 18; k++) { const P = pt(k); if (P) { g.beginPath(); g.arc(P[0], P[1], lw * 0.9, 0, 7); g.fill(); } }
        }
      }
      // box (the stroke straddles the box edge)
      const cx = x * sx, cy = y * sy, cwb = w * sx, chb = h * sy;
      g.strokeStyle = p.colour; g.lineWidth = lw; g.setLineDash(p.ip[i] ? [6 * dpr, 4 * dpr] : []);
      g.strokeRect(cx, cy, cwb, chb); g.setLineDash([]);
      // label: id and top-3 of the window at this frame
      const label = [`${p.id}`, ...(r >= 0 ? top3(r).map(([n, v]) => `${n} ${v.toFixed(2)}`) : ["not scored (too brief)"])];
      g.font = `600 ${font}px system-ui, sans-serif`;
      const lh = font * 1.25, tw = Math.max(...label.map((s) => g.measureText(s).width)) + 8;
      let ly = cy - lh * label.length - 2;
      if (ly < 0) ly = Math.min(ch - lh * label.length, cy + chb + 2);
      const lx = Math.min(Math.max(0, cx), cw - tw);
      g.fillStyle = "rgba(20,24,33,0.72)"; g.fillRect(lx, ly, tw, lh * label.length);
      g.fillStyle = p.colour; g.fillRect(lx, ly, 3 * dpr, lh * label.length);
      g.textBaseline = "top";
      label.forEach((s, k) => { g.fillStyle = k === 0 ? "#fff" : "#e5e7eb"; g.fillText(s, lx + 5, ly + k * lh + 1); });
      drawn.push({ person: p.id, frame: f, x, y, w, h, canvas: { x: cx / dpr, y: cy / dpr, w: cwb / dpr, h: chb / dpr, lineWidth: lw / dpr } });
    }
    window.__beenetDrawn = drawn;
    overlay.dataset.frame = f;
    // playheads, clock, rows
    const frac = (f + 0.5) / D.num_frames;
    for (const p of people) if (p.head) p.head.style.left = `${LABEL_W + frac * (TW - LABEL_W) - 1}px`;
    clock.textContent = `${B.time(f / fps)} / ${B.time(duration)} \u00b7 frame ${f}`;
    scrub.value = f;
    rowsBody.replaceChildren(...rows.map(({ p, i, x, y, w, h, r }) => B.el("tr", { class: p.on ? null : "dim", "data-person": p.id },
      B.el("td", {}, B.el("span", { class: "swatch", style: `background:${p.colour}` }), `${p.id}`),
      B.el("td", { class: "num", text: p.cf[i] === 255 ? "-" : (p.cf[i] / 254).toFixed(2) + (p.ip[i] ? " (interp.)" : "") }),
      B.el("td", { class: "nowrap", text: [x, y, w, h].map((v) => v.toFixed(1)).join(", ") }),
      B.el("td", { class: "nowrap", text: r >= 0 ? `${W.start[r]}\u2013${W.end[r]}` : "-" }),
      B.el("td", {}, ...(r >= 0 ? top3(r).map(([n, v]) => B.el("span", { class: "emo", text: `${n} ${v.toFixed(2)}` })) : ["-"])),
      B.el("td", { class: "nowrap", text: r >= 0 ? [0, 1, 2].map((k) => B.f(W.vad[r * 3 + k])).join(" / ") : "-" }))));
    document.getElementById("rows-title").textContent = rows.length
      ? `Table rows at frame ${f}, ${B.time(f / fps)} (${D.sources.frames || D.sources.windows + ", window boxes"})`
      : `No table rows at frame ${f}: nobody was seen in this frame`;
  }
  function loop() { draw(false); requestAnimationFrame(loop); }
  window.__beenetSeekFrame = seekFrame;
  draw(true);
  requestAnimationFrame(loop);
})();
