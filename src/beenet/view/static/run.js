// A training run / eval: metric curves with chance levels, per-category bars, PR curves, config.
(function () {
  const D = window.BEENET, NS = "http://www.w3.org/2000/svg";
  const COL = ["#2563eb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#0c8599", "#a61e4d", "#5c940d"];
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const k of kids) if (k) e.append(k);
    return e;
  }
  function niceInts(a, b) {
    const step = Math.max(1, Math.ceil((b - a) / 6));
    const out = [];
    for (let v = Math.ceil(a); v <= b; v += step) out.push(v);
    return out;
  }
  // A line chart: series = [{name, x[], y[], colour, dash}], with axes and a legend.
  function lineChart(title, series, opts = {}) {
    const Wd = 460, H = 240, L = 46, R = 12, T = 24, Bm = 34;
    const xs = series.flatMap((s) => s.x.filter((v, i) => s.y[i] !== null));
    const ys = series.flatMap((s) => s.y.filter((v) => v !== null));
    if (!ys.length) return null;
    let [x0, x1] = opts.xr || [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = opts.yr || [Math.min(...ys), Math.max(...ys)];
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 0.5; y0 -= d; y1 += d; }
    const pad = opts.yr ? 0 : (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
    const X = (v) => L + (v - x0) / (x1 - x0) * (Wd - L - R), Y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - Bm);
    const g = svg("svg", { viewBox: `0 0 ${Wd} ${H}`, role: "img", "aria-label": title });
    g.append(svg("text", { x: L, y: 15, "font-size": 13, "font-weight": 600, fill: "#1d2330" }, document.createTextNode(title)));
    for (let k = 0; k <= 4; k++) {
      const v = y0 + (y1 - y0) * k / 4;
      g.append(svg("line", { x1: L, x2: Wd - R, y1: Y(v), y2: Y(v), stroke: "#e5e7eb" }));
      g.append(svg("text", { x: L - 4, y: Y(v) + 3, "font-size": 10, "text-anchor": "end", fill: "#5b6475" }, document.createTextNode(+v.toFixed(3))));
    }
    const xt = opts.xr ? [0, 0.25, 0.5, 0.75, 1] : niceInts(x0, x1);
    for (const v of xt) {
      g.append(svg("text", { x: X(v), y: H - Bm + 14, "font-size": 10, "text-anchor": "middle", fill: "#5b6475" }, document.createTextNode(+v.toFixed(2))));
    }
    g.append(svg("text", { x: (L + Wd - R) / 2, y: H - 4, "font-size": 10.5, "text-anchor": "middle", fill: "#5b6475" }, document.createTextNode(opts.xlabel || "epoch")));
    const legend = B.el("div", { class: "legend" });
    series.forEach((s, i) => {
      const c = s.colour || COL[i % COL.length];
      const pts = s.x.map((x, j) => (s.y[j] === null ? null : `${X(x).toFixed(1)},${Y(s.y[j]).toFixed(1)}`)).filter(Boolean);
      g.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: c, "stroke-width": s.dash || s.thin ? 1.3 : 2, "stroke-dasharray": s.dash ? "5 4" : "none" }));
      if (!s.dash && !s.thin && pts.length < 40) pts.forEach((p) => { const [a, b] = p.split(","); g.append(svg("circle", { cx: a, cy: b, r: 2.3, fill: c })); });
      if (s.name) legend.append(B.el("span", {}, B.el("span", { class: "swatch", style: `background:${c}${s.dash ? ";opacity:.5" : ""}` }), s.name));
    });
    return B.el("div", { class: "chart" }, g, legend);
  }
  function bars(title, pc) {
    const names = D.categories.filter((n) => pc[n]);
    if (!names.length) return null;
    const Wd = 460, rowH = 13, T = 30, L = 118, H = T + names.length * rowH + 20;
    const g = svg("svg", { viewBox: `0 0 ${Wd} ${H}`, role: "img", "aria-label": title });
    g.append(svg("text", { x: 4, y: 15, "font-size": 13, "font-weight": 600, fill: "#1d2330" }, document.createTextNode(title)));
    [["AP", COL[0]], ["AUC", "#adb5bd"]].forEach(([k, c], i) => {
      g.append(svg("rect", { x: L + i * 60, y: 20, width: 10, height: 8, fill: c }));
      g.append(svg("text", { x: L + 14 + i * 60, y: 28, "font-size": 10.5 }, document.createTextNode(k)));
    });
    const X = (v) => L + v * (Wd - L - 40);
    names.forEach((n, i) => {
      const y = T + i * rowH;
      g.append(svg("text", { x: L - 4, y: y + 9, "font-size": 9.5, "text-anchor": "end", fill: "#5b6475" }, document.createTextNode(n)));
      const auc = pc[n].AUC, ap = pc[n].AP;
      if (auc !== null && auc !== undefined) g.append(svg("rect", { x: L, y: y + 1, width: X(auc) - L, height: rowH - 3, fill: "#dee2e6" }));
      if (ap === null || ap === undefined) g.append(svg("text", { x: L + 3, y: y + 9, "font-size": 9, fill: "#9aa3b2" }, document.createTextNode("n/a: no positive or no negative in this split")));
      else {
        g.append(svg("rect", { x: L, y: y + 3, width: X(ap) - L, height: rowH - 7, fill: COL[0] }));
        g.append(svg("text", { x: X(Math.max(ap, auc || 0)) + 3, y: y + 9, "font-size": 9 }, document.createTextNode(ap.toFixed(2))));
      }
    });
    return B.el("div", { class: "chart" }, g);
  }
  const header = B.el("header", {}, B.el("h1", { text: D.title }),
    B.el("span", { class: "meta", text: [D.metrics_file, D.config_file, ...D.evals.map((e) => e.folder + "/metrics.json")].filter(Boolean).join(" \u00b7 ") }));
  const main = B.el("main", {});
  main.append(B.el("div", { class: "note", text: "Numbers are on the data this run used; a run on the synthetic BoLD says nothing about real video." }));
  if (D.evals.length) {
    main.append(B.el("div", { class: "card" }, B.el("h2", { text: "Scores" }), B.el("table", { id: "scores" },
      B.el("thead", {}, B.el("tr", {}, B.el("th", { text: "eval" }), B.el("th", { text: "split (protocol)" }), B.el("th", { class: "num", text: "n" }),
        ...D.headline.map((k) => B.el("th", { class: "num", text: `${k} (chance)` })))),
      B.el("tbody", {}, ...D.evals.map((e) => B.el("tr", {}, B.el("td", { text: e.folder }), B.el("td", { text: `${e.split} (${e.protocol})` }),
        B.el("td", { class: "num", text: e.n ?? "-" }),
        ...D.headline.map((k) => B.el("td", { class: "num", text: `${B.f(e.scores[k], 3)} (${B.f(e.chance[k], 3)})` }))))))));
  }
  if (D.metrics && D.metrics.epoch) {
    const M = D.metrics, ep = M.epoch, cards = [];
    const losses = Object.keys(M).filter((k) => /(^|_)loss$|^train_/.test(k) && !/^val_(mAP|mRA|mR2|ERS)$/.test(k));
    const val = Object.keys(M).filter((k) => k.startsWith("val_") && !D.headline.includes(k.slice(4)));
    cards.push(lineChart("Training losses", losses.map((k) => ({ name: k, x: ep, y: M[k] }))));
    if (val.length) cards.push(lineChart("Validation losses", val.map((k) => ({ name: k, x: ep, y: M[k] }))));
    for (const k of D.headline) {
      const y = M[`val_${k}`];
      if (!y) continue;
      const s = [{ name: `val ${k}`, x: ep, y }];
      const c = D.chance[k];
      if (c !== undefined && c !== null) s.push({ name: "chance", x: [ep[0], ep[ep.length - 1]], y: [c, c], colour: "#868e96", dash: true });
      cards.push(lineChart(`val ${k}`, s));
    }
    if (M.lr) cards.push(lineChart("Learning rate", [{ name: "lr", x: ep, y: M.lr }]));
    main.append(B.el("div", { class: "card" }, B.el("h2", { text: `Training curves (${D.metrics_file})` }), B.el("div", { class: "grid2", id: "curves" }, ...cards.filter(Boolean))));
  }
  for (const e of D.evals) {
    const kids = [bars(`Per-category AP and AUC: ${e.split} (${e.protocol}), n=${e.n}`, e.per_category)];
    if (e.pr) {
      // one category at a time (chosen below), the others in grey behind it
      const names = Object.keys(e.pr), holder = B.el("div", {});
      const pick = B.el("select", { "aria-label": "category" }, ...names.map((n) => B.el("option", { value: n,
        text: `${n} (AP ${B.f((e.per_category[n] || {}).AP, 2)})` })));
      const show = () => holder.replaceChildren(lineChart(`Precision-recall: ${e.split}, ${pick.value}`,
        [...names.filter((n) => n !== pick.value).map((n) => ({ name: null, x: e.pr[n][0], y: e.pr[n][1], colour: "#dee2e6", thin: true })),
         { name: pick.value, x: e.pr[pick.value][0], y: e.pr[pick.value][1], colour: COL[0] },
         { name: "other categories", x: [], y: [], colour: "#dee2e6" }],
        { xr: [0, 1], yr: [0, 1], xlabel: "recall (y: precision)" }));
      pick.addEventListener("change", show);
      show();
      kids.push(B.el("div", {}, B.el("label", { class: "legend" }, "category: ", pick), holder));
    }
    main.append(B.el("div", { class: "card" }, B.el("h2", { text: `Evaluation: ${e.folder}` }), B.el("div", { class: "grid2" }, ...kids.filter(Boolean))));
  }
  if (D.config) main.append(B.el("div", { class: "card" }, B.el("h2", { text: `Config (${D.config_file})` }), B.el("pre", { id: "config", text: D.config })));
  document.body.append(header, main);
})();
