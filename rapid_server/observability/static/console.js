// The rapidboot console: the state once (api/state), then live updates (api/events, server-sent events).
// No build step, no library: the DOM and an inline SVG chart.
"use strict";

const MAX_ROWS = 200; // the server keeps the last 200 invokes too
const CHART_SECONDS = 300; // at most: the chart spans what it has, from 1 minute to 5
let sequence = 0;
const series = new Map(); // function -> Map(second -> [second, invokes, errors, sumMs, maxMs, concurrency])

const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function ms(value) {
  if (value === null || value === undefined) return "";
  return value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(0)} ms`;
}

function age(seconds) {
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(0)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function renderFunctions(functions) {
  const body = $("#functions tbody");
  body.replaceChildren(
    ...functions.map((f) => {
      const environments = element("td");
      if (f.environments.length === 0) environments.append(element("span", { text: "none (cold)", class: "mono" }));
      for (const env of f.environments) {
        const title = `${env.initializationType}, pid ${env.pid}`;
        environments.append(
          element("span", {
            class: `env ${env.state}`,
            title,
            text: `${env.state} · ${age(env.ageS)} · ${env.maxMemoryUsedMb}/${env.memorySizeMb} MB`,
          }),
        );
      }
      return element(
        "tr",
        { "data-function": f.name },
        element("td", {}, element("code", { text: f.name })),
        element("td", { text: `${f.memorySizeMb} MB` }),
        element("td", { class: "n", text: String(f.invocations) }),
        element("td", { class: "n", text: String(f.errors) }),
        element("td", { class: "n", text: String(f.throttles) }),
        element("td", { class: "n", text: String(f.concurrentExecutions) }),
        environments,
      );
    }),
  );
}

function addInvocations(invocations, fresh) {
  const body = $("#invocations tbody");
  for (const record of invocations) {
    if (record.sequence <= sequence) continue; // already shown (a reconnected feed repeats)
    sequence = record.sequence;
    const status = record.status || (record.error ? "error" : "ok");
    const log = element("td");
    if (record.logTail) {
      const lines = record.logTail.trimEnd().split("\n");
      log.append(
        element(
          "details",
          {},
          element("summary", { text: `${lines.length} line${lines.length > 1 ? "s" : ""}` }),
          element("pre", { class: "tail", text: record.logTail }),
        ),
      );
    }
    const row = element(
      "tr",
      { "data-request-id": record.requestId, class: `${record.error ? "error" : ""} ${fresh ? "fresh" : ""}` },
      element("td", { text: new Date(record.time * 1000).toLocaleTimeString() }),
      element("td", {}, element("code", { text: record.function })),
      element("td", {}, element("code", { text: record.requestId })),
      element("td", { class: "n", text: ms(record.durationMs) }),
      element("td", { class: "n", text: `${record.billedDurationMs} ms` }),
      element("td", { class: "n", text: `${record.maxMemoryUsedMb}/${record.memorySizeMb} MB` }),
      element("td", { class: "n", text: ms(record.initDurationMs) }),
      element("td", { class: "status", text: record.errorType ? `${status}: ${record.errorType}` : status }),
      log,
    );
    body.prepend(row);
  }
  while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
}

function mergeSeries(points) {
  for (const [name, list] of Object.entries(points)) {
    if (!series.has(name)) series.set(name, new Map());
    const known = series.get(name);
    for (const point of list) known.set(point[0], point);
  }
}

function drawChart(now) {
  const svg = $("#chart");
  const width = 900;
  const height = 220;
  const pad = { left: 44, right: 36, top: 10, bottom: 22 };
  const end = Math.floor(now);
  let oldest = end;
  for (const points of series.values()) for (const second of points.keys()) oldest = Math.min(oldest, second);
  const span = Math.min(CHART_SECONDS, Math.max(60, Math.ceil((end - oldest + 1) / 30) * 30));
  const start = end - span;
  const duration = new Map(); // second -> [sumMs, invokes]
  const concurrency = new Map(); // second -> summed max concurrency
  for (const points of series.values()) {
    for (const [second, point] of points) {
      if (second < start) {
        points.delete(second);
        continue;
      }
      const d = duration.get(second) || [0, 0];
      duration.set(second, [d[0] + point[3], d[1] + point[1]]);
      concurrency.set(second, (concurrency.get(second) || 0) + point[5]);
    }
  }
  const means = [...duration].filter(([, d]) => d[1] > 0).map(([s, d]) => [s, d[0] / d[1]]);
  const maxMs = nice(Math.max(1, ...means.map(([, v]) => v)));
  const maxConcurrency = Math.ceil(Math.max(1, ...concurrency.values()) / 4) * 4; // whole ticks
  const x = (second) => pad.left + ((second - start) / span) * (width - pad.left - pad.right);
  const y = (value, max) => height - pad.bottom - (value / max) * (height - pad.top - pad.bottom);
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const value = (maxMs * i) / 4;
    const py = y(value, maxMs);
    parts.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${py}" y2="${py}" stroke="#eef0f5"/>`);
    parts.push(`<text x="${pad.left - 4}" y="${py + 4}" font-size="10" text-anchor="end" fill="#2f6fdf">${Number(value.toPrecision(3))}</text>`);
    parts.push(`<text x="${width - pad.right + 4}" y="${py + 4}" font-size="10" fill="#e07a10">${(maxConcurrency * i) / 4}</text>`);
  }
  const step = span <= 120 ? 15 : 60;
  for (let ago = 0; ago <= span; ago += step) {
    const label = ago === 0 ? "now" : step < 60 ? `-${ago} s` : `-${ago / 60} min`;
    parts.push(`<text x="${x(end - ago)}" y="${height - 6}" font-size="10" text-anchor="middle" fill="#6b7385">${label}</text>`);
  }
  const bar = Math.max(1, (width - pad.left - pad.right) / span);
  for (const [second, value] of concurrency) {
    if (value <= 0) continue;
    const py = y(value, maxConcurrency);
    parts.push(`<rect x="${x(second) - bar / 2}" y="${py}" width="${bar}" height="${height - pad.bottom - py}" fill="#e07a10" opacity="0.35"/>`);
  }
  means.sort((a, b) => a[0] - b[0]);
  if (means.length) {
    const path = means.map(([s, v], i) => `${i ? "L" : "M"}${x(s).toFixed(1)},${y(v, maxMs).toFixed(1)}`).join(" ");
    parts.push(`<path d="${path}" fill="none" stroke="#2f6fdf" stroke-width="1.6"/>`);
    for (const [s, v] of means) parts.push(`<circle cx="${x(s)}" cy="${y(v, maxMs)}" r="2" fill="#2f6fdf"/>`);
  }
  svg.innerHTML = parts.join("");
}

function nice(value) {
  // The chart's top: 1, 2, 2.5 or 5 times a power of ten, at or above `value`.
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((top) => top >= value);
}

function apply(update, fresh) {
  renderFunctions(update.functions);
  addInvocations(update.invocations, fresh);
  mergeSeries(update.series);
  drawChart(update.now);
}

async function start() {
  const response = await fetch("api/state", { cache: "no-store" });
  const state = await response.json();
  apply(state, false);
  const status = $("#status");
  const feed = new EventSource(`api/events?since=${sequence}`);
  feed.addEventListener("open", () => {
    status.className = "status live";
    status.textContent = `live · ${state.region}`;
  });
  feed.addEventListener("update", (message) => apply(JSON.parse(message.data), true));
  feed.addEventListener("error", () => {
    status.className = "status down";
    status.textContent = "disconnected: retrying";
  });
}

start().catch((error) => {
  $("#status").textContent = `cannot load the state: ${error}`;
});
