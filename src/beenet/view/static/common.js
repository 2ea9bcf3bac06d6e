"use strict";
// Shared helpers of every beenet page (no dependencies, no network).
const B = {
  el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
    return e;
  },
  bytes(b64) {
    const s = atob(b64 || ""), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  },
  i32(b64) { return new Int32Array(B.bytes(b64).buffer); },
  i16(b64) { return new Int16Array(B.bytes(b64).buffer); },
  u8(b64) { return B.bytes(b64); },
  // First index i with arr[i] >= x (arr sorted ascending).
  lower(arr, x) {
    let lo = 0, hi = arr.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (arr[m] < x) lo = m + 1; else hi = m; }
    return lo;
  },
  time(s) {
    if (!isFinite(s)) return "-";
    const m = Math.floor(s / 60), r = s - 60 * m;
    return `${m}:${r < 10 ? "0" : ""}${r.toFixed(2)}`;
  },
  f(v, d = 2) { return v === null || v === undefined || !isFinite(v) ? "-" : Number(v).toFixed(d); },
  // Perceptually ordered colour ramp (viridis, 5 stops) for scores in [0, 1].
  ramp(v) {
    const s = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
    v = Math.min(1, Math.max(0, v)) * (s.length - 1);
    const i = Math.min(s.length - 2, Math.floor(v)), t = v - i;
    return s[i].map((c, k) => Math.round(c + t * (s[i + 1][k] - c)));
  },
};
