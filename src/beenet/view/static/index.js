// The list of videos of a predict results folder.
(function () {
  const D = window.BEENET;
  const header = B.el("header", {}, B.el("h1", { text: D.title }),
    B.el("span", { class: "meta", text: `${D.videos.length} video(s)` + (D.failures.length ? `, ${D.failures.length} failed` : "") +
      ((D.problems || []).length ? `, ${D.problems.length} refused` : "") }));
  const main = B.el("main", {});
  function topCell(v) {
    if (!v.people) return ["nobody found"];
    const scored = v.top.filter(([, , top]) => top.length), brief = v.top.length - scored.length;
    const out = scored.map(([id, c, top]) => B.el("div", {}, B.el("span", { class: "swatch", style: `background:${c}` }),
      B.el("strong", { text: `${id} ` }), top.map(([n, s]) => `${n} ${s.toFixed(2)}`).join(", ")));
    if (brief) out.push(B.el("div", { class: "meta", text: `${brief} more seen too briefly to be scored` }));
    return out;
  }
  if (!D.videos.length) main.append(B.el("div", { class: "empty", text: "No predict results in this folder: run 'beenet predict VIDEO --checkpoint CKPT --out DIR' first." }));
  else main.append(B.el("div", { class: "card" }, B.el("table", { id: "videos" },
    B.el("thead", {}, B.el("tr", {}, ...["video", "length", "people", "windows", "top emotions per person (mean over windows)", "timeline"]
      .map((h, i) => B.el("th", { class: i > 0 && i < 4 ? "num" : null, text: h })))),
    B.el("tbody", {}, ...D.videos.map((v) => B.el("tr", {},
      B.el("td", {}, B.el("a", { href: v.page, text: v.name }), v.note ? B.el("div", { class: "meta", text: v.note }) : null),
      B.el("td", { class: "num", text: v.duration_s === null ? "-" : B.time(v.duration_s) }),
      B.el("td", { class: "num", text: v.people }), B.el("td", { class: "num", text: v.windows }),
      B.el("td", {}, ...topCell(v)),
      B.el("td", {}, v.timeline ? B.el("a", { href: v.timeline, title: "the timeline PNG of beenet predict" },
        B.el("img", { src: v.timeline, alt: "timeline", style: "max-width:320px;max-height:140px" })) : "-")))))));
  if (D.failures.length) main.append(B.el("div", { class: "card" }, B.el("h2", { text: "Failed inputs" }),
    B.el("ul", {}, ...D.failures.map((f) => B.el("li", { text: `${f.input}: ${f.error}` })))));
  if ((D.problems || []).length) main.append(B.el("div", { class: "card", id: "refused" }, B.el("h2", { text: "Not shown (refused)" }),
    B.el("ul", {}, ...D.problems.map((p) => B.el("li", { text: p })))));
  document.body.append(header, main);
})();
