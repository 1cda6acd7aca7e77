// The dashboard: one page per report, state in the URL hash, data from /api/reports/NAME.
"use strict";
(() => {
  const { esc, fmt } = Charts;
  const $ = (id) => document.getElementById(id);
  const A = "#3b6fd8", B = "#e8833a";
  // extra inputs per report: [param, label, kind, default]
  const EXTRA = {
    overview: [["interval", "Interval", ["day", "hour"]]],
    funnel: [
      ["step", "Steps (one per line: /path*, event:NAME)", "lines", "/\n/p/*\n/cart\n/checkout\nevent:purchase"],
      ["window", "Window", "text", "1d"],
      ["by", "Per", ["visitor", "session"]],
      ["mode", "Order", ["default", "strict"]],
      ["breakdown", "Breakdown", ["", "channel", "device", "country", "campaign", "browser", "os"]],
    ],
    returning: [["weeks", "Cohort weeks", "text", "8"]],
    paths: [["page", "Transitions of page", "text", ""], ["depth", "Path depth", "text", "3"]],
    searches: [],
    backloops: [],
    customers: [["crm_id", "Customer (CRM id)", "text", ""]],
    install: [],
  };
  const COMMON = [["channel", "Channel", "text", ""], ["device", "Device", ["", "desktop", "mobile", "tablet"]],
    ["country", "Country", "text", ""], ["crm", "Visitors", ["any", "linked", "anonymous"]]];
  let state = new URLSearchParams();
  // what a report tab carries over to the next report: the site, range and segment
  const SHARED = ["site", "from", "to", "channel", "device", "country", "crm"];

  const today = () => new Date().toISOString().slice(0, 10);
  const daysAgo = (d, n) => new Date(Date.parse(d) - n * 86400000).toISOString().slice(0, 10);

  function readHash() {
    state = new URLSearchParams(location.hash.slice(1));
    // an unknown report (an old bookmark, a typo) opens the overview, and the URL says so
    if (!Object.hasOwn(EXTRA, state.get("report") || "")) {
      state.set("report", "overview");
      if (location.hash.length > 1) history.replaceState(null, "", `#${state}`);
    }
    // no range in the URL: the API's default (the last 30 days to today in the site's time
    // zone, not the browser's), written back into the URL when the answer names it
    if (state.get("to") && !state.get("from")) state.set("from", daysAgo(state.get("to"), 29));
  }

  function writeHash() { location.hash = state.toString(); }

  // the hash a report tab opens (its own parameters start from their defaults)
  function tabHash(report) {
    const keep = new URLSearchParams();
    for (const k of SHARED) if (state.get(k)) keep.set(k, state.get(k));
    keep.set("report", report);
    return `#${keep}`;
  }

  function syncControls() {
    $("site").value = state.get("site") || "";
    $("from").value = state.get("from") || "";
    $("to").value = state.get("to") || "";
    // the tabs are links to their report in this site, range and segment: Enter, a new tab
    document.querySelectorAll("#tabs a").forEach((a) => {
      const current = a.dataset.report === state.get("report");
      a.classList.toggle("active", current);
      a.setAttribute("href", tabHash(a.dataset.report));
      if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    const form = $("extra");
    const fields = state.get("report") === "install" ? [] : [...EXTRA[state.get("report")], ...COMMON];
    if (!fields.length) { form.innerHTML = ""; return; }
    form.innerHTML = fields.map(([key, label, kind, dflt]) => {
      const val = key === "step" ? (state.getAll("step").filter(Boolean).join("\n") || dflt) : (state.get(key) ?? dflt ?? "");
      let input;
      if (Array.isArray(kind)) input = `<select name="${key}">${kind.map((o) => `<option${o === val ? " selected" : ""} value="${esc(o)}">${esc(o || "all")}</option>`).join("")}</select>`;
      else if (kind === "lines") input = `<textarea name="${key}">${esc(val)}</textarea>`;
      else input = `<input name="${key}" value="${esc(val)}" size="12">`;
      return `<label>${esc(label)} ${input}</label>`;
    }).join("") + `<button type="submit">Apply</button>`;
  }

  function apiParams(extra = {}) {
    const p = new URLSearchParams();
    for (const [k, v] of state) if (k !== "report" && v !== "") p.append(k, v);
    // no steps (or only empty ones: step= in a URL) asks for the default steps the form shows
    if (state.get("report") === "funnel" && !state.getAll("step").some(Boolean)) {
      EXTRA.funnel[0][3].split("\n").forEach((s) => p.append("step", s));
    }
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    return p;
  }

  // each load() is numbered: an answer that arrives after a newer load() started (a slow
  // 90-day query overtaken by a 7-day one) is dropped, never drawn over the newer state
  let loads = 0;

  async function load() {
    readHash();
    syncControls();
    const seq = ++loads;
    const name = state.get("report");
    if (!state.get("site")) { status("Pick a site to see its reports.", false); showReport(""); return; }
    status("Loading…", false);
    const t0 = performance.now();
    try {
      const url = name === "install" ? `/api/snippet?${new URLSearchParams({ site: state.get("site") })}` : `/api/reports/${name}?${apiParams()}`;
      const res = await fetch(url);
      const body = await res.json();
      if (seq !== loads) return;
      if (!res.ok) { status(body.error || `error ${res.status}`, true); showReport(""); return; }
      if (body.query && !state.get("to")) {
        state.set("from", body.query.from); state.set("to", body.query.to);
        history.replaceState(null, "", `#${state}`);
        syncControls();
      }
      showReport(RENDER[name](body));
      const range = body.query ? ` · ${body.query.from} to ${body.query.to}` : "";
      status(`${name}${range} · ${((performance.now() - t0) / 1000).toFixed(2)} s`, false);
    } catch (err) {
      if (seq !== loads) return;
      status(`could not load the report: ${err}`, true);
      showReport("");
    }
  }

  // a link inside the report (a page's transitions, a customer) is gone once the next report is
  // drawn: the keyboard focus moves to the new report (Tab goes on from its start), not to the
  // top of the page; the scroll position stays as it was
  function showReport(html) {
    const report = $("report"), focused = report.contains(document.activeElement);
    report.innerHTML = html;
    if (focused) report.focus({ preventScroll: true });
  }

  function status(text, isError) { $("status").textContent = text; $("status").className = isError ? "error" : ""; }

  function csvLink(table) {
    // customer lists are exported whole (for CRM import), other tables as shown
    const extra = state.get("report") === "customers" ? { limit: "100000" } : {};
    return `<a href="/api/reports/${state.get("report")}?${apiParams({ format: "csv", table, ...extra })}" download>CSV</a>`;
  }

  function panel(title, body, table) {
    return `<section class="panel"><h2><span>${esc(title)}</span>${table ? csvLink(table) : ""}</h2>${body}</section>`;
  }

  function cards(obj, pct = []) {
    return `<div class="cards">${Object.entries(obj).map(([k, v]) =>
      `<div class="card"><div class="v">${v === null ? "–" : pct.includes(k) ? (v * 100).toFixed(1) + "%" : fmt(v)}</div><div class="k">${esc(k.replace(/_/g, " "))}</div></div>`).join("")}</div>`;
  }

  // the hash a link in a table opens: a page's transitions, a customer's timeline; the
  // parameters only another report takes (the funnel's steps, the overview's interval) stay
  // behind, as the paths report refuses them
  const PATHS_KEEP = new Set(["report", ...SHARED, ...EXTRA.paths.map(([k]) => k)]);
  const LINKS = {
    page(page) {
      const p = new URLSearchParams([...state].filter(([k]) => PATHS_KEEP.has(k)));
      p.set("report", "paths"); p.set("page", page); return `#${p}`;
    },
    crm(crm) { const p = new URLSearchParams(state); p.set("crm_id", crm); return `#${p}`; },
  };

  // rows: list of objects; cols: [key, label, {num, bar, link, pct}]
  function table(rows, cols) {
    if (!rows || !rows.length) return `<p class="k">No data in this range.</p>`;
    const max = {};
    cols.forEach(([k, , o = {}]) => { if (o.bar) max[k] = Math.max(1, ...rows.map((r) => r[k])); });
    const cell = (r, [k, , o = {}]) => {
      let v = r[k];
      if (Array.isArray(v)) v = v.join(" → ");
      const text = o.pct && v !== null ? (v * 100).toFixed(1) + "%" : fmt(v);  // null: (none), not 0.0%
      const bar = o.bar ? `<div class="bar" style="width:${(100 * r[k]) / max[k]}%"></div>` : "";
      const linked = o.link && !(o.link === "page" && !String(v).startsWith("/"));
      const shown = text === "" ? "<i>(none)</i>" : text;
      // a link is a real one (Tab, Enter, a new tab): its href is the hash of what it opens
      const content = linked ? `<a href="${esc(LINKS[o.link](String(v)))}" data-${o.link}="${esc(v)}">${shown}</a>` : shown;
      return `<td class="${o.num || o.bar || o.pct ? "n" : ""}">${content}${bar}</td>`;
    };
    return `<table><thead><tr>${cols.map(([, l, o = {}]) => `<th class="${o.num || o.bar || o.pct ? "n" : ""}">${esc(l)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${cols.map((c) => cell(r, c)).join("")}</tr>`).join("")}</tbody></table>`;
  }

  const duration = (s) => (s % 86400 === 0 ? `${s / 86400}d` : s % 3600 === 0 ? `${s / 3600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`);
  const N = { num: true }, BAR = { bar: true }, P = { pct: true };
  const values = (rows) => table(rows, [["value", "Value"], ["sessions", "Sessions", BAR], ["visitors", "Visitors", N]]);

  const RENDER = {
    overview(d) {
      const s = d.series;
      return cards(d.totals, ["bounce_rate"]) +
        panel("Visitors and pageviews", Charts.line(s.map((r) => r.t), [
          { name: "visitors", color: A, values: s.map((r) => r.visitors) },
          { name: "pageviews", color: B, values: s.map((r) => r.pageviews) }]), "series") +
        `<div class="grid">` +
        panel("Top pages", table(d.top_pages, [["page", "Page", { link: "page" }], ["pageviews", "Pageviews", BAR], ["visitors", "Visitors", N]]), "top_pages") +
        [["entry_pages", "Entry pages"], ["exit_pages", "Exit pages"], ["channels", "Channels"], ["referrers", "Referrers"],
          ["devices", "Devices"], ["browsers", "Browsers"], ["countries", "Countries"]]
          .map(([k, t]) => panel(t, values(d[k]), k)).join("") + `</div>`;
    },
    funnel(d) {
      let out = panel(`Funnel per ${d.by}, window ${duration(d.window_seconds)}, ${d.mode} order`, Charts.funnel(d.steps)) +
        panel("Steps", table(d.steps, [["step", "Step"], ["count", "Count", BAR], ["conversion", "Conversion", P],
          ["dropoff", "Drop-off", N], ["dropoff_rate", "Drop-off rate", P], ["median_seconds_from_previous", "Median s from previous", N]]), "steps");
      if (d.breakdown) {
        const rows = d.breakdown.map((b) => ({ value: b.value, ...Object.fromEntries(b.counts.map((c, i) => [`s${i + 1}`, c])), conversion: b.conversion }));
        out += panel("Breakdown", table(rows, [["value", "Value"], ...d.steps.map((s, i) => [`s${i + 1}`, s.step, N]), ["conversion", "Conversion", P]]), "breakdown");
      }
      return out + panel("Where drop-outs went next", table(d.dropoff_next, [["after_step", "After step"], ["next_page", "Next page", { link: "page" }], ["count", "Visitors", BAR]]), "dropoff_next");
    },
    returning(d) {
      const days = d.days;
      const maxw = Math.max(0, ...d.cohorts.map((c) => c.weeks.length));
      const heat = d.cohorts.length ? `<table class="heat"><thead><tr><th>Cohort</th><th class="n">Visitors</th>${[...Array(maxw).keys()].map((w) => `<th class="n">W${w}</th>`).join("")}</tr></thead><tbody>` +
        d.cohorts.map((c) => `<tr><td>${esc(c.cohort)}</td><td class="n">${fmt(c.visitors)}</td>${c.retention.map((r, i) => (r === null ? `<td></td>` : `<td class="n" style="background:${Charts.heat(r)}" title="${fmt(c.weeks[i])} visitors">${(r * 100).toFixed(0)}%</td>`)).join("")}</tr>`).join("") + `</tbody></table>` : `<p class="k">No new visitors in this range.</p>`;
      return cards(d.totals) +
        panel("New and returning visitors per day", Charts.bars(days.map((r) => r.date), [
          { name: "new", color: A, values: days.map((r) => r.new_visitors) },
          { name: "returning", color: B, values: days.map((r) => r.returning_visitors) }]), "days") +
        panel("Weekly cohorts (share of the cohort back in week N)", heat, "cohorts") +
        `<div class="grid">` +
        panel("Sessions per visitor", table(d.frequency, [["sessions", "Sessions"], ["visitors", "Visitors", BAR]]), "frequency") +
        panel("Days since last visit", table(d.days_since_last_visit, [["days", "Days"], ["sessions", "Sessions", BAR]]), "days_since_last_visit") +
        `</div>`;
    },
    paths(d) {
      const side = (rows) => table(rows, [["page", "Page", { link: "page" }], ["count", "Count", BAR], ["share", "Share", P]]);
      return panel(`Transitions of ${d.transitions.page || "(no page)"} · ${fmt(d.transitions.pageviews)} pageviews`,
        // one CSV per side: the panel holds two tables
        `<div class="transitions"><div><h3><span>Came from</span>${csvLink("previous")}</h3>${side(d.previous)}</div><div class="focus">${esc(d.transitions.page)}</div><div><h3><span>Went to</span>${csvLink("next")}</h3>${side(d.next)}</div></div>`) +
        panel("Top paths", table(d.top_paths, [["path", "Path"], ["sessions", "Sessions", BAR], ["visitors", "Visitors", N]]), "top_paths");
    },
    searches(d) {
      const t = [["term", "Term"], ["searches", "Searches", BAR], ["zero_results", "0 results", N], ["exits", "Exits", N],
        ["dead_ends", "Dead ends", N], ["pogo_sticks", "Pogo", N], ["success_rate", "Success", P]];
      return cards(d.totals, ["dead_end_rate"]) + panel("Top terms", table(d.terms, t), "terms") + `<div class="grid">` +
        panel("Zero-result terms", table(d.zero_result_terms, [["term", "Term"], ["zero_results", "Searches", BAR]]), "zero_result_terms") +
        panel("Search exits", table(d.search_exits, [["term", "Term"], ["exits", "Exits", BAR]]), "search_exits") +
        panel("Refinements", table(d.refinements, [["term", "Term"], ["next_term", "Then searched"], ["n", "Times", BAR]]), "refinements") +
        panel("Pogo-sticking", table(d.pogo_sticking, [["term", "Term"], ["pogo_sticks", "Back to results", BAR]]), "pogo_sticking") + `</div>`;
    },
    backloops(d) {
      const c = [["back_loops", "Back-loops", BAR], ["quick_backs", "Quick", N], ["back_button", "Back button", N], ["sessions", "Sessions", N]];
      return cards(d.totals, ["back_looping_share", "back_loop_share"]) +
        panel("Pages people come back to", table(d.pages, [["page", "Page", { link: "page" }], ...c]), "pages") +
        panel("A → B → A pairs", table(d.pairs, [["a", "A"], ["b", "B (left quickly?)"], ...c]), "pairs");
    },
    customers(d) {
      const cols = [["crm_id", "Customer", { link: "crm" }], ["segment", "Segment"], ["visitors", "Devices/visitors", N], ["sessions", "Sessions", N],
        ["revenue", "Revenue", BAR], ["recency_days", "Days since last", N], ["r", "R", N], ["f", "F", N], ["m", "M", N]];
      let out = "";
      if (d.timeline) out += panel(`Timeline of ${state.get("crm_id")}`, table(d.timeline, [["start_ts", "Start"], ["visitor_id", "Visitor"],
        ["device_type", "Device"], ["entry_path", "Entry"], ["pageviews", "Pages", N], ["revenue", "Revenue", N], ["identified", "Logged in", N]]), "timeline");
      return out + panel("Customers (RFM)", table(d.customers, cols), "customers") +
        panel("At risk (overdue for their usual visit)", table(d.at_risk, [...cols, ["cadence_days", "Usual days between visits", N]]), "at_risk");
    },
  };

  RENDER.install = (d) =>
    panel("Paste into every page's <head> (JavaScript tracker)", `<pre class="code">${esc(d.js)}</pre>`) +
    panel("Or a bare pixel (no JavaScript, e-mails)", `<pre class="code">${esc(d.pixel)}</pre>`);

  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    state.set("site", $("site").value.trim());
    for (const k of ["from", "to"]) { if ($(k).value) state.set(k, $(k).value); else state.delete(k); }  // blank: the default
    writeHash();
  });
  document.querySelectorAll(".quick button").forEach((b) => b.addEventListener("click", () => {
    const to = $("to").value || today();
    state.set("site", $("site").value.trim()); state.set("to", to); state.set("from", daysAgo(to, Number(b.dataset.days) - 1));
    writeHash();
  }));
  $("extra").addEventListener("submit", (e) => {
    e.preventDefault();
    for (const el of $("extra").elements) {
      if (!el.name) continue;
      if (el.name === "step") { state.delete("step"); el.value.split("\n").map((s) => s.trim()).filter(Boolean).forEach((s) => state.append("step", s)); }
      else if (el.value === "" || (el.name === "crm" && el.value === "any")) state.delete(el.name);
      else state.set(el.name, el.value);
    }
    writeHash();
  });
  window.addEventListener("hashchange", load);

  fetch("/api/reports").then((r) => r.json()).then((idx) => {
    $("sites").innerHTML = idx.sites.map((s) => `<option value="${esc(s)}">`).join("");
    readHash();
    // the busiest site, in place of the bare URL: Back leaves the dashboard instead of
    // returning to an empty 'Pick a site' page
    if (!state.get("site") && idx.sites.length) { state.set("site", idx.sites[0]); history.replaceState(null, "", `#${state}`); }
    load();
  }).catch(() => load());
})();
