/* Vantage dashboard. Everything shown comes from probes and is untrusted: the DOM is built with
 * createElement and textContent only (never innerHTML), and the collector's Content-Security-Policy
 * allows no inline script. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const charts = {};
  const state = { cc: "", asn: "", since: "", until: "", target: "" };

  function el(tag, props, text) {
    const e = document.createElement(tag);
    if (props) for (const k of Object.keys(props)) e[k] = props[k];
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function setStatus(msg, isError) {
    const s = $("status");
    s.textContent = msg;
    s.className = "status" + (isError ? " error" : "");
  }

  async function api(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    const r = await fetch(path + "?" + q.toString(), { headers: { Accept: "application/json" } });
    const js = await r.json();
    if (!r.ok) throw new Error(js && js.error ? js.error : "HTTP " + r.status);
    return js;
  }

  function isoDay(d) {
    return d.toISOString().slice(0, 10);
  }

  function readUrl() {
    const q = new URLSearchParams(location.search);
    const now = new Date();
    state.cc = (q.get("cc") || "").toUpperCase().slice(0, 2);
    state.asn = q.get("asn") || "";
    state.since = q.get("since") || isoDay(new Date(now.getTime() - 30 * 86400e3));
    state.until = q.get("until") || "";
    state.target = q.get("target") || "";
  }

  function writeForm() {
    $("f-cc").value = state.cc;
    $("f-since").value = state.since;
    $("f-until").value = state.until;
  }

  function rangeParams() {
    return { since: state.since, until: state.until };
  }

  function fmtBps(v) {
    if (v === null || v === undefined) return "-";
    if (v >= 1e6) return (v / 1e6).toFixed(1) + " Mbit/s";
    return Math.round(v / 1e3) + " kbit/s";
  }

  function evidenceText(e) {
    const ev = e.evidence;
    const parts = [];
    if (e.kind === "blocking") {
      parts.push((ev.top_verdict || "anomalies") + ", " + Math.round(ev.anomaly_share * 100) +
                 "% of each probe's measurements anomalous");
      if (e.confirmed) parts.push("confirmed by a blockpage/fingerprint match (" + ev.confirmed + ")");
      if (ev.intermittent > 0)
        parts.push("intermittent in " + ev.intermittent + " measurement" +
                   (ev.intermittent === 1 ? "" : "s") + " (tried again, it worked, then failed again)");
    } else if (e.kind === "slowdown") {
      if (ev.throughput_bps_p50 !== null && ev.baseline_throughput_bps_p50 !== null)
        parts.push("throughput " + fmtBps(ev.throughput_bps_p50) + " vs " +
                   fmtBps(ev.baseline_throughput_bps_p50) + " before");
      if (ev.latency_ms_p50 !== null && ev.baseline_latency_ms_p50 !== null)
        parts.push("latency " + ev.latency_ms_p50 + " ms vs " + ev.baseline_latency_ms_p50 + " ms");
      if (ev.slowdown_ratio !== null) parts.push("x" + ev.slowdown_ratio + (ev.extreme ? " (extreme)" : ""));
      if (ev.policer_bps) parts.push("steady near a " + fmtBps(ev.policer_bps) + " policer rate");
      if (ev.top_verdict) parts.push("probe verdict " + ev.top_verdict);
    } else {
      parts.push("canaries failing too: the network or the probes were down, not censorship");
    }
    parts.push(e.scope === "network" ? "network-wide" : "targeted");
    return parts.join("; ");
  }

  function cellStatus(asn, platform, row, eps) {
    let st = "st-none";
    if (row && row.measurement_count > 0) {
      st = "st-ok";
      if (row.anomaly_count > 0) st = "st-mixed";
    }
    for (const e of eps) {
      if (e.probe_asn !== asn || e.platform !== platform) continue;
      if (e.kind === "blocking") return "st-blocked";
      if (e.kind === "slowdown") st = "st-slow";
    }
    return st;
  }

  function renderGrid(agg, eps) {
    const t = $("grid");
    t.replaceChildren();
    const nets = [...new Set(agg.results.map((r) => r.probe_asn))].sort();
    const plats = [...new Set(agg.results.map((r) => r.platform))].sort();
    const byKey = new Map(agg.results.map((r) => [r.probe_asn + "\u0000" + r.platform, r]));
    const head = el("tr");
    head.appendChild(el("th", null, "Network"));
    head.appendChild(el("th", null, "network status"));
    for (const p of plats) head.appendChild(el("th", { scope: "col" }, p || "(none)"));
    const thead = el("thead");
    thead.appendChild(head);
    t.appendChild(thead);
    const body = el("tbody");
    for (const n of nets) {
      const tr = el("tr");
      tr.appendChild(el("th", { scope: "row" }, n));
      const outage = eps.some((e) => e.kind === "outage" && e.probe_asn === n);
      const ns = el("td");
      ns.appendChild(el("span", { className: "chip " + (outage ? "st-outage" : "st-ok") },
                        outage ? "outage" : "up"));
      tr.appendChild(ns);
      for (const p of plats) {
        const r = byKey.get(n + "\u0000" + p);
        const td = el("td", { className: cellStatus(n, p, r, eps) });
        td.dataset.platform = p;
        td.dataset.network = n;
        if (r) {
          td.appendChild(el("span", null, r.anomaly_count + " / " + r.measurement_count));
          td.appendChild(el("span", { className: "n" }, r.probes + " probe-hours"));
          if (r.intermittent_count > 0)
            td.appendChild(el("span", { className: "n" }, r.intermittent_count + " intermittent"));
        } else {
          td.textContent = "-";
        }
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    t.appendChild(body);
    if (!nets.length) {
      const tr = el("tr");
      tr.appendChild(el("td", null, "No measurements for this country and range."));
      body.appendChild(tr);
    }
  }

  function renderEpisodes(eps, measured) {
    const t = $("episode-table");
    t.replaceChildren();
    const head = el("tr");
    for (const h of ["Kind", "Network", "Platform / target", "Start (UTC)", "End (UTC)",
                     "Most probes in an hour",
                     "Measurements", "Evidence"])
      head.appendChild(el("th", null, h));
    const thead = el("thead");
    thead.appendChild(head);
    t.appendChild(thead);
    const body = el("tbody");
    for (const e of eps) {
      const tr = el("tr", { className: "episode" });
      tr.appendChild(el("td", { className: "kind" }, e.kind + (e.confirmed ? " (confirmed)" : "")));
      tr.appendChild(el("td", null, e.probe_asn));
      tr.appendChild(el("td", null, e.target ? (e.platform || "") + " / " + e.target : "all"));
      tr.appendChild(el("td", null, e.start));
      tr.appendChild(el("td", null, e.ongoing ? e.end + " (ongoing in the newest data)" : e.end));
      tr.appendChild(el("td", null, e.evidence.max_probes));
      tr.appendChild(el("td", null, e.evidence.measurements));
      tr.appendChild(el("td", null, evidenceText(e)));
      body.appendChild(tr);
    }
    if (!eps.length) {
      const tr = el("tr");
      // No data is not an all-clear: say which of the two it is.
      tr.appendChild(el("td", { colSpan: 8 }, measured
        ? "No blocks, slowdowns or outages detected."
        : "No measurements in this range: nothing can be said about blocking."));
      body.appendChild(tr);
    }
    t.appendChild(body);
  }

  function lineChart(id, label, labels, data, color) {
    if (charts[id]) charts[id].destroy();
    if (typeof Chart === "undefined") {
      $(id).replaceWith(el("p", null, "Charts need Chart.js (Debian package libjs-chart.js)."));
      return;
    }
    charts[id] = new Chart($(id), {
      type: "line",
      data: { labels: labels, datasets: [{ label: label, data: data, borderColor: color,
                                           backgroundColor: color, pointRadius: 0, borderWidth: 2,
                                           spanGaps: false, tension: 0 }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 plugins: { legend: { display: false } },
                 scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true } } },
    });
  }

  async function renderSeries() {
    if (!state.target) return;
    const days = state.until
      ? (new Date(state.until) - new Date(state.since)) / 86400e3
      : (Date.now() - new Date(state.since)) / 86400e3;
    const grain = days > 21 ? "day" : "hour";
    const agg = await api("/api/v1/aggregation", Object.assign(
      { probe_cc: state.cc, probe_asn: state.asn, target: state.target, by: "day", grain: grain },
      rangeParams()));
    const labels = agg.results.map((r) => r.day);
    lineChart("c-share", "blocked share", labels,
              agg.results.map((r) => r.measurement_count ? r.anomaly_count / r.measurement_count : null),
              "#c62828");
    lineChart("c-latency", "latency ms", labels, agg.results.map((r) => r.latency_ms_p50), "#1565c0");
    lineChart("c-tput", "throughput kbit/s", labels,
              agg.results.map((r) => r.throughput_bps_p50 === null ? null : r.throughput_bps_p50 / 1e3),
              "#2e7d32");
  }

  async function load() {
    document.body.dataset.state = "loading";
    setStatus("Loading...");
    try {
      if (!state.cc) {
        const c = await api("/api/v1/aggregation", Object.assign({ by: "probe_cc" }, rangeParams()));
        c.results.sort((a, b) => b.measurement_count - a.measurement_count);
        state.cc = c.results.length ? c.results[0].probe_cc : "";
        writeForm();
      }
      if (!state.cc) {
        setStatus("No measurements yet in this range.");
        document.body.dataset.state = "ready";
        return;
      }
      $("overview-cc").textContent = state.cc;
      const base = Object.assign({ probe_cc: state.cc, probe_asn: state.asn }, rangeParams());
      const [grid, eps, nets, targets] = await Promise.all([
        api("/api/v1/aggregation", Object.assign({ by: "probe_asn,platform" }, base)),
        api("/api/v1/episodes", base),
        api("/api/v1/aggregation", Object.assign({ probe_cc: state.cc, by: "probe_asn" }, rangeParams())),
        api("/api/v1/aggregation", Object.assign({ by: "target" }, base)),
      ]);
      const sel = $("f-asn");
      sel.replaceChildren(el("option", { value: "" }, "all"));
      for (const r of nets.results) sel.appendChild(el("option", { value: r.probe_asn }, r.probe_asn));
      sel.value = state.asn;
      renderGrid(grid, eps.results);
      renderEpisodes(eps.results, grid.results.length > 0);
      const ts = $("f-target");
      ts.replaceChildren();
      const ids = targets.results.map((r) => r.target);
      if (!ids.includes(state.target)) {
        const ep = eps.results.find((e) => e.target);
        state.target = ep ? ep.target : ids[0] || "";
      }
      for (const id of ids) ts.appendChild(el("option", { value: id }, id));
      ts.value = state.target;
      await renderSeries();
      setStatus(grid.results.reduce((s, r) => s + r.measurement_count, 0) + " measurements, " +
                eps.results.length + " episodes");
    } catch (err) {
      setStatus("Could not load: " + err.message, true);
    }
    document.body.dataset.state = "ready";
  }

  function pushUrl() {
    const q = new URLSearchParams();
    for (const k of ["cc", "asn", "since", "until", "target"]) if (state[k]) q.set(k, state[k]);
    history.replaceState(null, "", "?" + q.toString());
  }

  document.addEventListener("DOMContentLoaded", () => {
    readUrl();
    writeForm();
    $("filters").addEventListener("submit", (ev) => {
      ev.preventDefault();
      state.cc = $("f-cc").value.trim().toUpperCase();
      state.asn = $("f-asn").value;
      state.since = $("f-since").value;
      state.until = $("f-until").value;
      pushUrl();
      load();
    });
    $("f-target").addEventListener("change", () => {
      state.target = $("f-target").value;
      pushUrl();
      renderSeries().catch((e) => setStatus("Could not load: " + e.message, true));
    });
    load();
  });
})();
