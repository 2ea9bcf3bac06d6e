"use strict";
// beenet label: play each video with pass 1's people drawn, label a person over a span of frames.
// Every change is sent to the local server (POST /api/save), which rewrites the labels file
// atomically; on load the page reads the rows back (GET /api/rows). No network beyond that server.
(function () {
  const D = window.BEENET, NC = D.categories.length;
  const st = { vi: 0, person: null, start: null, end: null, cats: new Array(NC).fill(0), vad: [5, 5, 5],
               form: { editing: null }, rows: [], queue: Promise.resolve(), pending: 0 };
  // st.form is the span on the form: its key once saved (form.editing). A new span is a new object,
  // so a save still on its way records its key on the span it saved, not on the next one.
  const $ = (id) => document.getElementById(id);
  const V = () => D.videos[st.vi];

  // ---- layout ----------------------------------------------------------------------------------
  const keys = [["space", "play / pause"], ["\u2190 \u2192", "previous / next frame"], ["n / p", "next / previous person"],
    ["[ / ]", "span starts / ends at this frame"], ["enter", "save, then a new span"], ["s / S", "next / previous saved span"],
    ["click", "a box: that person"]];
  const videoSel = B.el("select", { id: "videoSel", onchange: (e) => loadVideo(+e.target.value) },
    D.videos.map((v, k) => B.el("option", { value: k, text: v.name })));
  document.body.append(
    B.el("header", {}, B.el("h1", { text: "beenet label" }), videoSel,
      B.el("span", { class: "meta", text: `labels go to ${D.labels}` + (D.pose ? ` \u00b7 people: pass 1 of beenet predict (pose ${D.pose})` : "") })),
    B.el("main", {},
      ...D.notes.map((n) => B.el("div", { class: "note", text: n })),
      B.el("div", { class: "layout" },
        B.el("div", { class: "left" },
          B.el("div", { class: "stage" }, B.el("video", { id: "video", muted: true, playsinline: true, preload: "auto" }),
            B.el("canvas", { id: "overlay" })),
          B.el("div", { class: "controls" },
            B.el("button", { id: "play", text: "\u25b6 play", onclick: toggle }),
            B.el("button", { text: "\u2190", title: "previous frame", onclick: () => step(-1) }),
            B.el("button", { text: "\u2192", title: "next frame", onclick: () => step(1) }),
            B.el("input", { id: "scrub", class: "scrub", type: "range", min: 0, value: 0, step: 1, oninput: (e) => seekFrame(+e.target.value) }),
            B.el("span", { id: "clock", class: "clock" })),
          B.el("div", { class: "keys", id: "keys" }, keys.map(([k, w]) => B.el("span", { class: "key" }, B.el("kbd", { text: k }), ` ${w}`))),
          B.el("div", { id: "status", class: "status", "data-state": "idle" })),
        B.el("div", { class: "right" },
          B.el("div", { class: "card" }, B.el("label", {}, "Annotator ",
            B.el("input", { id: "annotator", type: "text", value: D.annotator || localStorage.getItem("beenet-annotator") || "",
              placeholder: "your name", onchange: annotatorChanged }))),
          spanCard(),
          B.el("div", { class: "card" }, B.el("h2", { text: "Saved spans of this video" }),
            B.el("table", { id: "spans" }, B.el("thead", {}, B.el("tr", {}, ["person", "frames", "annotator", "categories", "V / A / D"].map((h) => B.el("th", { text: h })))),
              B.el("tbody", {})))))));
  function spanCard() {
    const cats = D.categories.map((c, k) => B.el("label", { class: "cat" },
      B.el("input", { type: "checkbox", "data-k": k, onchange: (e) => { st.cats[k] = e.target.checked ? 1 : 0; changed(); } }), ` ${c}`));
    const sliders = D.vad_names.map((n, k) => B.el("label", { class: "vad" }, `${n} `,
      B.el("input", { type: "range", min: 1, max: 10, step: 1, value: 5, id: `vad-${n}`,
        oninput: (e) => { st.vad[k] = +e.target.value; $(`vad-${n}-v`).textContent = e.target.value; },
        onchange: (e) => { st.vad[k] = +e.target.value; changed(); } }),
      B.el("output", { id: `vad-${n}-v`, text: "5" })));
    return B.el("div", { class: "card", id: "form" }, B.el("h2", { id: "formTitle", text: "New span" }),
      B.el("div", { class: "row" },
        B.el("label", {}, "person ", B.el("select", { id: "person", onchange: (e) => { st.person = e.target.value === "" ? null : +e.target.value; changed(); } })),
        B.el("label", {}, "start ", B.el("input", { id: "start", type: "number", min: 0, onchange: (e) => { st.start = num(e.target.value); changed(); } })),
        B.el("label", {}, "end ", B.el("input", { id: "end", type: "number", min: 0, onchange: (e) => { st.end = num(e.target.value); changed(); } }))),
      B.el("div", { class: "cats" }, cats), B.el("div", { class: "vads" }, sliders),
      B.el("div", { class: "controls" },
        B.el("button", { id: "save", text: "save (enter)", onclick: saveAndNew }),
        B.el("button", { id: "new", text: "new span", onclick: newSpan }),
        B.el("button", { id: "delete", text: "delete this row", onclick: del })));
  }
  const video = $("video"), overlay = $("overlay"), ctx = overlay.getContext("2d");
  const num = (s) => (s === "" || s === null || !isFinite(+s) ? null : Math.round(+s));

  // ---- time ------------------------------------------------------------------------------------
  function frameNow() { const v = V(); return Math.max(0, Math.min(v.num_frames - 1, Math.floor(video.currentTime * v.fps + 1e-4))); }
  function seekFrame(f) { const v = V(); f = Math.max(0, Math.min(v.num_frames - 1, f)); video.currentTime = (f + 0.5) / v.fps; draw(); }
  function step(n) { video.pause(); seekFrame(frameNow() + n); }
  function toggle() {
    if (!video.paused) { video.pause(); return; }
    const p = video.play();
    if (p && p.catch) p.catch((e) => { if (!e || e.name !== "AbortError") console.error(e); });
  }
  video.addEventListener("play", () => { $("play").textContent = "\u275a\u275a pause"; tick(); });
  video.addEventListener("pause", () => ($("play").textContent = "\u25b6 play"));
  for (const ev of ["seeked", "loadeddata", "timeupdate"]) video.addEventListener(ev, draw);
  function tick() { draw(); if (!video.paused) requestAnimationFrame(tick); }

  // ---- people ----------------------------------------------------------------------------------
  function boxesAt(f) {
    const out = [];
    for (const p of V().people) {
      const i = B.lower(p.f, f);
      if (i < p.f.length && p.f[i] === f) out.push({ id: p.id, b: p.b.slice(4 * i, 4 * i + 4), filled: p.i[i] === 1 });
    }
    return out;
  }
  function colour(id) { return `hsl(${(id * 137.5) % 360}, 85%, 55%)`; }
  function draw() {
    const v = V(), f = frameNow();
    if (overlay.width !== v.width) { overlay.width = v.width; overlay.height = v.height; }
    ctx.clearRect(0, 0, v.width, v.height);
    const lw = Math.max(2, v.width / 320);
    for (const { id, b, filled } of boxesAt(f)) {
      const sel = id === st.person;
      ctx.strokeStyle = colour(id); ctx.lineWidth = sel ? 2.5 * lw : lw;
      ctx.setLineDash(filled ? [4 * lw, 3 * lw] : []);
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
      ctx.setLineDash([]);
      const label = `${sel ? "\u25b6 " : ""}id ${id}`, fs = Math.max(11, v.height / 24);
      ctx.font = `bold ${fs}px system-ui, sans-serif`;
      ctx.fillStyle = "rgba(0,0,0,.6)"; ctx.fillRect(b[0], Math.max(0, b[1] - fs - 4), ctx.measureText(label).width + 8, fs + 4);
      ctx.fillStyle = colour(id); ctx.fillText(label, b[0] + 4, Math.max(fs, b[1] - 4));
    }
    overlay.dataset.frame = String(f);
    $("scrub").value = f;
    const inSpan = st.start !== null && st.end !== null && f >= st.start && f <= st.end;
    $("clock").textContent = `frame ${f} / ${v.num_frames - 1} \u00b7 ${B.time(f / v.fps)}${inSpan ? " \u00b7 in span" : ""}`;
  }
  overlay.addEventListener("click", (e) => {
    const v = V(), r = overlay.getBoundingClientRect();
    const x = (e.clientX - r.left) * v.width / r.width, y = (e.clientY - r.top) * v.height / r.height;
    const hits = boxesAt(frameNow()).filter(({ b }) => x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]);
    hits.sort((a, c) => (a.b[2] - a.b[0]) * (a.b[3] - a.b[1]) - (c.b[2] - c.b[0]) * (c.b[3] - c.b[1]));
    if (hits.length) selectPerson(hits[0].id);
  });
  function selectPerson(id) { st.person = id; showForm(); draw(); changed(); }
  function cyclePerson(dir) {
    const here = boxesAt(frameNow()).map((p) => p.id);
    const ids = here.length ? here : V().people.map((p) => p.id);
    if (!ids.length) return status("nobody is tracked in this video", "error");
    const i = ids.indexOf(st.person);
    selectPerson(ids[i < 0 ? (dir > 0 ? 0 : ids.length - 1) : (i + dir + ids.length) % ids.length]);
  }

  // ---- the form --------------------------------------------------------------------------------
  function personOptions() {
    $("person").replaceChildren(B.el("option", { value: "", text: "-" }), ...V().people.map((p) =>
      B.el("option", { value: p.id, text: `id ${p.id} (frames ${p.f[0]}-${p.f[p.f.length - 1]})` })));
  }
  function showForm() {
    const put = (id, v) => { const e = $(id); if (document.activeElement !== e) e.value = v; };  // not under the typing
    put("person", st.person === null ? "" : String(st.person));
    put("start", st.start === null ? "" : st.start);
    put("end", st.end === null ? "" : st.end);
    document.querySelectorAll("#form .cat input").forEach((c) => (c.checked = st.cats[+c.dataset.k] === 1));
    D.vad_names.forEach((n, k) => { $(`vad-${n}`).value = st.vad[k]; $(`vad-${n}-v`).textContent = String(st.vad[k]); });
    const k = st.form.editing;
    $("formTitle").textContent = k ? `Row of ${k.annotator}: person ${k.person_id}, frames ${k.start}-${k.end}` : "New span";
  }
  function annotator() { return $("annotator").value.trim(); }
  function annotatorChanged() { localStorage.setItem("beenet-annotator", annotator()); st.form = { editing: null }; showForm(); }
  function complete() { return st.person !== null && st.start !== null && st.end !== null && annotator() !== ""; }
  function rowNow() {
    return { video: V().name, person_id: st.person, start: st.start, end: st.end, annotator: annotator(),
             categories: st.cats.slice(), vad: st.vad.slice() };
  }
  const keyOf = (r) => ({ video: r.video, person_id: r.person_id, start: r.start, end: r.end, annotator: r.annotator });
  function changed() {
    showForm(); draw();
    if (!complete()) {
      status(annotator() === "" ? "type your name in Annotator to save" : "pick a person, then [ and ] set the span; it saves itself", "idle");
      return Promise.resolve(false);
    }
    return save();
  }
  function status(text, state) { const s = $("status"); s.textContent = text; s.dataset.state = state; }
  // Requests go one at a time, in order; each body is made when its turn comes (so a change made
  // while the previous save is on its way replaces the row that save wrote).
  function post(route, makeBody, onOk) {
    st.pending++; document.body.dataset.pending = st.pending; status("saving\u2026", "pending");
    const go = () => fetch(route, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(makeBody()) })
      .then((r) => r.json().then((j) => ({ ok: r.ok, j })))
      .catch((e) => ({ ok: false, j: { error: `the server did not answer (${e}); is 'beenet label --serve' running?` } }))
      .then(({ ok, j }) => {
        st.pending--; document.body.dataset.pending = st.pending;
        if (!ok) { status(`not saved: ${j.error}`, "error"); return false; }
        if (onOk) onOk();
        st.rows = j.rows; renderRows(); status(`saved to ${D.labels} at ${new Date().toLocaleTimeString()}`, "saved");
        return true;
      });
    st.queue = st.queue.then(go, go);  // one request that failed oddly does not stop the next
    return st.queue;
  }
  function save() {
    const row = rowNow(), form = st.form;
    return post("api/save", () => ({ row, replaces: form.editing }), () => { form.editing = keyOf(row); showForm(); });
  }
  function newSpan() { st.start = st.end = null; st.cats = new Array(NC).fill(0); st.vad = [5, 5, 5]; st.form = { editing: null }; showForm(); draw(); }
  function saveAndNew() {
    if (!complete()) { changed(); return; }
    const was = { start: st.start, end: st.end, cats: st.cats, vad: st.vad, form: st.form };
    save().then((ok) => { if (!ok && st.form === fresh && st.start === null) { Object.assign(st, was); showForm(); draw(); } });
    newSpan();
    const fresh = st.form;  // a failed save puts its span back on the form, unless another is there now
  }
  function del() {
    const form = st.form, key = form.editing;
    if (!key) return status("no saved row is open (pick one in Saved spans)", "idle");
    post("api/delete", () => ({ key }), () => { if (st.form === form) newSpan(); });
  }

  // ---- saved rows ------------------------------------------------------------------------------
  function rowsHere() {
    return st.rows.filter((r) => r.video === V().name)
      .sort((a, b) => a.start - b.start || a.person_id - b.person_id || a.end - b.end || (a.annotator < b.annotator ? -1 : 1));
  }
  function renderRows() {
    const tb = document.querySelector("#spans tbody");
    tb.replaceChildren(...rowsHere().map((r) => {
      const on = D.categories.filter((_, k) => r.categories[k] >= 0.5);
      const tr = B.el("tr", { class: "span-row", onclick: () => openRow(r) },
        B.el("td", { text: `id ${r.person_id}` }), B.el("td", { text: `${r.start}-${r.end}` }), B.el("td", { text: r.annotator }),
        B.el("td", { text: on.join(", ") || "-" }), B.el("td", { text: r.vad.map((x) => B.f(x, 0)).join(" / ") }));
      if (st.form.editing && JSON.stringify(keyOf(r)) === JSON.stringify(st.form.editing)) tr.classList.add("open");
      return tr;
    }));
    document.body.dataset.rows = String(st.rows.length);
  }
  function openRow(r) {
    Object.assign(st, { person: r.person_id, start: r.start, end: r.end, cats: r.categories.map((c) => (c >= 0.5 ? 1 : 0)),
                        vad: r.vad.map((x) => Math.round(x)), form: { editing: keyOf(r) } });
    $("annotator").value = r.annotator;
    showForm(); renderRows(); seekFrame(r.start);
  }
  function cycleRow(dir) {
    const rs = rowsHere();
    if (!rs.length) return status("no saved span in this video yet", "idle");
    const k = st.form.editing;
    const i = k ? rs.findIndex((r) => JSON.stringify(keyOf(r)) === JSON.stringify(k)) : -1;
    openRow(rs[i < 0 ? (dir > 0 ? 0 : rs.length - 1) : (i + dir + rs.length) % rs.length]);
  }

  // ---- keys ------------------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if ((t.tagName === "INPUT" && t.type !== "checkbox" && t.type !== "range") || t.tagName === "SELECT") {
      if (e.key === "Enter") { t.blur(); e.preventDefault(); saveAndNew(); }  // blur sends the change first
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    if (t.type === "range" && k.startsWith("Arrow")) return;  // a slider's own keys
    if (k === " ") toggle();
    else if (k === "ArrowRight" || k === "ArrowLeft") step(k === "ArrowRight" ? 1 : -1);
    else if (k === "n" || k === "p") cyclePerson(k === "n" ? 1 : -1);
    else if (k === "[") { st.start = frameNow(); if (st.end !== null && st.end < st.start) st.end = null; changed(); }
    else if (k === "]") { st.end = frameNow(); if (st.start !== null && st.start > st.end) st.start = null; changed(); }
    else if (k === "Enter") saveAndNew();
    else if (k === "s" || k === "S") cycleRow(k === "s" ? 1 : -1);
    else return;
    e.preventDefault();
  });

  // ---- start -----------------------------------------------------------------------------------
  function loadVideo(k) {
    st.vi = k; videoSel.value = String(k); st.person = null; personOptions(); newSpan();
    const v = V();
    video.src = v.src; $("scrub").max = v.num_frames - 1;
    document.querySelector(".stage").style.setProperty("--ar", `${v.width} / ${v.height}`);
    renderRows(); draw();
  }
  window.__labelSeekFrame = seekFrame;
  loadVideo(0);
  if (location.protocol === "file:") {
    status("opened from disk: labels cannot be saved here. Run 'beenet label ... --serve' and open the address it prints.", "error");
  } else {
    fetch("api/rows").then((r) => r.json().then((j) => ({ ok: r.ok, j }))).then(({ ok, j }) => {
      if (!ok) { status(`cannot read the labels: ${j.error}`, "error"); return; }
      st.rows = j.rows; renderRows();
      status(`${st.rows.length} saved row${st.rows.length === 1 ? "" : "s"} read from ${D.labels}`, "loaded");
    }).catch((e) => status(`the server did not answer (${e})`, "error"));
  }
})();
