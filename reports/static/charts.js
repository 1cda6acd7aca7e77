// Small inline-SVG charts for the dashboard: no library, no network.
"use strict";
const Charts = (() => {
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en", { maximumFractionDigits: 2 }) : esc(n));
  const nice = (max) => {
    if (max <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(max)));
    return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= max);
  };

  function axes(W, H, pad, top, labels, x) {
    let out = "";
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + (H - pad.t - pad.b) * (1 - i / 4);
      out += `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y}" y2="${y}" stroke="#eef0f3"/>`;
      out += `<text x="${pad.l - 4}" y="${y + 4}" text-anchor="end">${fmt((top * i) / 4)}</text>`;
    }
    const every = Math.max(1, Math.ceil(labels.length / 8));
    labels.forEach((l, i) => {
      // a label at the right edge ends there instead of being cut by the chart's border
      const anchor = x(i) > W - 24 ? "end" : "middle";
      if (i % every === 0) out += `<text x="${x(i)}" y="${H - 6}" text-anchor="${anchor}">${esc(String(l).slice(5, 16))}</text>`;
    });
    return out;
  }

  // series: [{name, color, values}] over labels
  function line(labels, series, H = 220) {
    const W = 720, pad = { l: 44, r: 10, t: 10, b: 24 };
    const top = nice(Math.max(0, ...series.flatMap((s) => s.values)));
    const n = Math.max(labels.length, 2);
    const x = (i) => pad.l + ((W - pad.l - pad.r) * i) / (n - 1);
    const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / top);
    let out = axes(W, H, pad, top, labels, x);
    for (const s of series) {
      const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      out += `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"/>`;
      s.values.forEach((v, i) => {
        out += `<circle cx="${x(i)}" cy="${y(v)}" r="2.5" fill="${s.color}"><title>${esc(labels[i])}: ${fmt(v)} ${esc(s.name)}</title></circle>`;
      });
    }
    return legend(series) + `<svg viewBox="0 0 ${W} ${H}" role="img">${out}</svg>`;
  }

  // stacked bars: series values are stacked per label
  function bars(labels, series, H = 220) {
    const W = 720, pad = { l: 44, r: 10, t: 10, b: 24 };
    const sums = labels.map((_, i) => series.reduce((a, s) => a + s.values[i], 0));
    const top = nice(Math.max(0, ...sums));
    const slot = (W - pad.l - pad.r) / Math.max(labels.length, 1);
    const x = (i) => pad.l + slot * (i + 0.5);
    const h = (v) => ((H - pad.t - pad.b) * v) / top;
    let out = axes(W, H, pad, top, labels, x);
    labels.forEach((l, i) => {
      let base = H - pad.b;
      for (const s of series) {
        const hh = h(s.values[i]);
        base -= hh;
        out += `<rect x="${x(i) - slot * 0.35}" y="${base}" width="${slot * 0.7}" height="${hh}" fill="${s.color}"><title>${esc(l)}: ${fmt(s.values[i])} ${esc(s.name)}</title></rect>`;
      }
    });
    return legend(series) + `<svg viewBox="0 0 ${W} ${H}" role="img">${out}</svg>`;
  }

  // funnel: horizontal bars, one per step, with conversion
  function funnel(steps) {
    // narrow view box: the bars stay readable when a phone scales the chart down
    const W = 400, row = 50, H = row * steps.length + 4;
    const max = Math.max(1, ...steps.map((s) => s.count));
    let out = "";
    steps.forEach((s, i) => {
      const w = Math.max(2, (W * s.count) / max);
      const y = 2 + i * row;
      out += `<text x="0" y="${y + 11}" style="fill:#1d2330;font-weight:600">${i + 1}. ${esc(s.step.slice(0, 48))}</text>`;
      out += `<rect x="0" y="${y + 15}" width="${W}" height="18" fill="#eef2fb" rx="3"/>`;
      out += `<rect x="0" y="${y + 15}" width="${w}" height="18" fill="#3b6fd8" rx="3"><title>${fmt(s.count)}</title></rect>`;
      const label = `${fmt(s.count)} · ${(s.conversion * 100).toFixed(1)}%${i ? ` · drop-off ${fmt(s.dropoff)}` : ""}`;
      out += `<text x="4" y="${y + 45}">${label}</text>`;
    });
    return `<svg viewBox="0 0 ${W} ${H}" role="img" style="max-width:720px">${out}</svg>`;
  }

  const heat = (share) => `rgba(59,111,216,${(0.08 + 0.8 * Math.min(1, share)).toFixed(2)})`;

  function legend(series) {
    return `<div class="legend">${series.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`).join("")}</div>`;
  }

  return { esc, fmt, line, bars, funnel, heat };
})();
