// pnsq admin: one page script, no framework and no network but this server.
// Each page builds its frame once (title, buttons, charts, empty tables), then fills the
// tables from /api/... on load, after every action and on every sample the server streams on
// /api/events, so what is shown stays live without reloading. Text goes in as text nodes only.
// Action buttons are drawn only for an admin: the server says who is one in <body data-admin>
// (and refuses the others' actions itself; hiding the buttons is for the person, not security).
"use strict";

const isAdmin = () => document.body.dataset.admin === "true";
const ifAdmin = (make) => (isAdmin() ? make() : null);

const SVG = "http://www.w3.org/2000/svg";

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const rate = (r) => (r === null || r === undefined ? "–" : `${r.toFixed(1)}/s`);
const enc = encodeURIComponent;

function since(unixSeconds) {
  const secs = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
  const parts = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
  let rest = secs;
  const out = [];
  for (const [size, unit] of parts) {
    if (rest >= size || (unit === "s" && out.length === 0)) {
      out.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return `${new Date(unixSeconds * 1000).toLocaleTimeString()} (${out.slice(0, 2).join(" ")} ago)`;
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = {};
  try {
    body = await response.json();
  } catch (e) {
    body = { message: `${response.status} ${response.statusText}` };
  }
  return { ok: response.ok, status: response.status, body };
}

function showWarning(message) {
  const el = document.getElementById("warning");
  el.hidden = !message;
  el.textContent = message || "";
}

function showStatus(text, ok) {
  const el = document.getElementById("status");
  el.hidden = false;
  el.className = ok ? "ok" : "failed";
  el.textContent = text;
}

// An action: confirm if destructive, POST JSON, show the result, refresh the view.
async function act(path, body, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return;
  const response = await api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const what = body.action || "create";
  if (response.ok && !response.body.message) showStatus(`${what}: done`, true);
  else showStatus(`${what}: ${response.body.message || response.status}`, response.ok);
  await refresh();
}

function table(headers, rows, testid) {
  return h(
    "table",
    { "data-testid": testid },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, "none")))
  );
}

function fill(id, ...children) {
  const el = document.getElementById(id);
  if (el) el.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
}

const clientAddress = (c) => (c.hostname ? `${c.hostname} (${c.remote_address})` : c.remote_address);
const badge = (text, cls) => h("span", { class: `badge ${cls || ""}` }, text);
const nodeCell = (row) =>
  h("td", {}, h("a", { href: `/nodes/${enc(row.node)}` }, row.node), row.up === false ? badge("down", "down") : null);
// Each nsqd's own Prometheus endpoint; the server gives its URL (http or https, as configured).
const metricsLink = (row) => h("a", { href: row.metrics_url, class: "metrics-link", title: "this nsqd's Prometheus metrics" }, "/metrics");

// -- E2E processing latency ------------------------------------------------------------------
// nsqd reports it (ns) only when run with --e2e-processing-latency-percentile; the server merges
// the nodes as nsqadmin does: per quantile min, max and an average weighted by finished messages.

function duration(ns) {
  if (ns === null || ns === undefined) return "–";
  if (ns < 1e3) return `${Math.round(ns)}ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(1)}µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(1)}ms`;
  return `${(ns / 1e9).toFixed(2)}s`;
}

const quantileLabel = (q) => `p${Number((q * 100).toFixed(3))}`;
const percentiles = (row) => (row && row.e2e_processing_latency && row.e2e_processing_latency.percentiles) || [];

// The quantiles any of the rows reports, highest first.
function quantilesOf(rows) {
  const qs = new Set(rows.flatMap((r) => percentiles(r).map((p) => p.quantile)));
  return [...qs].sort((a, b) => b - a);
}

function e2eCell(row, q) {
  const p = percentiles(row).find((x) => x.quantile === q);
  if (!p) return h("td", { class: "n" }, "–");
  const title = `${quantileLabel(q)}: min ${duration(p.min)}, max ${duration(p.max)} (${num(p.count)} finished)`;
  return h("td", { class: "n e2e", "data-quantile": q, title }, duration(p.average));
}

// The channel's E2E table: all nodes merged, then each node; or why there is none.
function e2eTable(body) {
  const quantiles = quantilesOf([body]);
  if (!quantiles.length) {
    return h("p", { class: "totals", "data-testid": "e2e-none" }, "Not reported: nsqd measures it only when run with --e2e-processing-latency-percentile (and after messages are finished).");
  }
  const rows = [h("tr", { "data-node": "*" }, h("td", {}, "all nodes"), quantiles.map((q) => e2eCell(body, q)))];
  for (const n of body.nodes.filter((x) => x.up)) rows.push(h("tr", { "data-node": n.node }, nodeCell(n), quantiles.map((q) => e2eCell(n, q))));
  return table(["Node", ...quantiles.map(quantileLabel)], rows, "e2e-table");
}

// -- charts ----------------------------------------------------------------------------------

const charts = [];

function chart(series, key, title) {
  const box = h("figure", { class: "chart", "data-testid": `chart-${key}`, "data-series": series });
  box.append(h("figcaption", {}, title));
  charts.push({ series, key, box });
  return box;
}

async function drawCharts() {
  const bySeries = {};
  for (const c of charts) {
    if (!bySeries[c.series]) bySeries[c.series] = api(`/api/history?series=${enc(c.series)}`);
  }
  for (const c of charts) {
    const { body } = await bySeries[c.series];
    draw(c, (body.points || []).filter((p) => p[c.key] !== null));
  }
}

function draw(c, points) {
  const W = 560, H = 150, L = 56, B = 20;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const values = points.map((p) => p[c.key]);
  const max = Math.max(1, ...values);
  const t0 = points.length ? points[0].t : 0;
  const t1 = points.length ? points[points.length - 1].t : 1;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - 8);
  const y = (v) => 6 + (1 - v / max) * (H - B - 6);
  const line = (x1, y1, x2, y2, cls) => {
    const el = document.createElementNS(SVG, "line");
    Object.entries({ x1, y1, x2, y2, class: cls }).forEach(([k, v]) => el.setAttribute(k, v));
    svg.append(el);
  };
  const text = (tx, ty, s, anchor) => {
    const el = document.createElementNS(SVG, "text");
    el.setAttribute("x", tx);
    el.setAttribute("y", ty);
    el.setAttribute("text-anchor", anchor);
    el.textContent = s;
    svg.append(el);
  };
  line(L, y(max), W - 8, y(max), "grid");
  line(L, y(0), W - 8, y(0), "axis");
  const label = c.key === "rate" ? (v) => `${v.toFixed(v < 10 ? 1 : 0)}/s` : (v) => num(Math.round(v));
  text(L - 4, y(max) + 4, label(max), "end");
  text(L - 4, y(0) + 4, label(0), "end");
  if (points.length) {
    text(L, H - 4, new Date(t0 * 1000).toLocaleTimeString(), "start");
    text(W - 8, H - 4, new Date(t1 * 1000).toLocaleTimeString(), "end");
    const path = document.createElementNS(SVG, "polyline");
    path.setAttribute("points", points.map((p) => `${x(p.t).toFixed(1)},${y(p[c.key]).toFixed(1)}`).join(" "));
    path.setAttribute("class", `series ${c.key}`);
    svg.append(path);
  } else {
    text(W / 2, H / 2, "collecting samples…", "middle");
  }
  const last = values.length ? values[values.length - 1] : null;
  c.box.dataset.points = String(points.length);
  c.box.dataset.last = last === null ? "" : String(last);
  c.box.querySelector("svg")?.remove();
  c.box.querySelector(".now")?.remove();
  c.box.append(svg, h("div", { class: "now" }, `now: ${last === null ? "–" : label(last)}`));
}

// -- pages -----------------------------------------------------------------------------------

let refresh = async () => {};

function page(title, ...parts) {
  document.title = `${title} - pnsq admin`;
  fill("content", h("h1", {}, title), ...parts);
}

function createForm(topic) {
  if (!isAdmin()) return null;
  const topicInput = topic ? null : h("input", { name: "topic", placeholder: "topic", required: true });
  const channelInput = h("input", { name: "channel", placeholder: topic ? "channel" : "channel (optional)", required: !!topic });
  return h(
    "form",
    {
      class: "create",
      "data-testid": "create-form",
      onsubmit: (e) => {
        e.preventDefault();
        const body = { topic: topic || topicInput.value.trim() };
        if (channelInput.value.trim()) body.channel = channelInput.value.trim();
        act("/api/topics", body);
      },
    },
    topicInput,
    channelInput,
    h("button", { type: "submit" }, topic ? "Create channel" : "Create topic / channel")
  );
}

function actions(path, name, paused) {
  if (!isAdmin()) return null;
  return h(
    "div",
    { class: "actions" },
    h("button", { "data-action": paused ? "unpause" : "pause", id: "pause-button", onclick: () => act(path, { action: paused ? "unpause" : "pause" }) }, paused ? "Unpause" : "Pause"),
    h("button", { "data-action": "empty", class: "danger", onclick: () => act(path, { action: "empty" }, `Empty ${name} on every node? Its queued messages are dropped.`) }, "Empty queue"),
    h("button", { "data-action": "delete", class: "danger", onclick: () => act(path, { action: "delete" }, `Delete ${name} on every node?`) }, "Delete")
  );
}

async function topicsPage() {
  page("Topics", h("div", { id: "topics" }), ifAdmin(() => h("h2", {}, "Create")), createForm(null), chart("total", "rate", "messages processed per second (cluster)"));
  refresh = async () => {
    const { body } = await api("/api/topics");
    showWarning(body.message);
    const rows = (body.topic_stats || []).map((t) =>
      h("tr", { "data-topic": t.topic_name },
        h("td", {}, h("a", { href: `/topics/${enc(t.topic_name)}` }, t.topic_name), t.paused ? badge("paused") : null),
        h("td", { class: "n" }, num(t.total_depth)),
        h("td", { class: "n" }, num(t.in_flight_count)),
        h("td", { class: "n" }, num(t.message_count)),
        h("td", { class: "n" }, rate(t.rate)),
        h("td", { class: "n" }, num(t.channel_count)),
        h("td", { class: "n" }, num(t.node_count)))
    );
    fill("topics", table(["Topic", "Depth (topic + channels)", "In-flight", "Messages", "Rate", "Channels", "Nodes"], rows, "topics-table"));
  };
}

async function topicPage(topic) {
  let paused = null;
  const path = `/api/topics/${enc(topic)}`;
  page(`Topic ${topic}`, h("div", { id: "actions" }), h("div", { id: "totals" }),
    h("div", { class: "charts" }, chart(`topic:${topic}`, "rate", "messages per second"), chart(`topic:${topic}`, "depth", "depth (topic + channels)")),
    h("h2", {}, "Nodes"), h("div", { id: "nodes" }), h("h2", {}, "Channels"), h("div", { id: "channels" }), createForm(topic));
  refresh = async () => {
    const { ok, body } = await api(path);
    showWarning(ok ? body.message : `${topic}: ${body.message}`);
    if (!ok) return fill("nodes"), fill("channels"), fill("totals");
    if (body.paused !== paused) fill("actions", actions(path, `topic ${topic}`, (paused = body.paused)));
    fill("totals", h("p", { class: "totals" }, body.paused ? badge("paused") : null,
      `depth ${num(body.depth)} · memory + disk ${num(body.memory_depth)} + ${num(body.backend_depth)} · messages ${num(body.message_count)} · ${rate(body.rate)}`));
    fill("nodes", table(["Node", "Depth", "Memory + Disk", "Messages", "Channels", ""], body.nodes.map((n) =>
      h("tr", {}, nodeCell(n),
        h("td", { class: "n" }, num(n.depth)), h("td", { class: "n" }, n.up ? `${num(n.memory_depth)} + ${num(n.backend_depth)}` : n.error),
        h("td", { class: "n" }, num(n.message_count)), h("td", { class: "n" }, num(n.channel_count)),
        h("td", {}, n.paused ? badge("paused") : null, n.tombstoned ? badge("tombstoned") : null,
          ifAdmin(() => h("button", { class: "small danger", title: "tombstone this topic on this node", onclick: () =>
            act(`/api/nodes/${enc(n.node)}`, { action: "tombstone", topic }, `Tombstone ${topic} on ${n.node} and delete it there?`) }, "✘ tombstone"))))), "nodes-table"));
    const quantiles = quantilesOf(body.channels);
    fill("channels", table(["Channel", "Depth", "Memory + Disk", "In-flight", "Deferred", "Requeued", "Timed out", "Messages", "Connections", "Rate", ...quantiles.map((q) => `E2E ${quantileLabel(q)}`)], body.channels.map((c) =>
      h("tr", { "data-channel": c.channel_name },
        h("td", {}, h("a", { href: `/topics/${enc(topic)}/${enc(c.channel_name)}` }, c.channel_name), c.paused ? badge("paused") : null),
        ...[c.depth].map((v) => h("td", { class: "n" }, num(v))),
        h("td", { class: "n" }, `${num(c.memory_depth)} + ${num(c.backend_depth)}`),
        ...[c.in_flight_count, c.deferred_count, c.requeue_count, c.timeout_count, c.message_count, c.client_count].map((v) => h("td", { class: "n" }, num(v))),
        h("td", { class: "n" }, rate(c.rate)), quantiles.map((q) => e2eCell(c, q)))), "channels-table"));
  };
}

async function channelPage(topic, channel) {
  let paused = null;
  const path = `/api/topics/${enc(topic)}/${enc(channel)}`;
  const series = `channel:${topic}:${channel}`;
  page(`Channel ${topic} / ${channel}`, h("p", {}, h("a", { href: `/topics/${enc(topic)}` }, `← topic ${topic}`)),
    h("div", { id: "actions" }), h("div", { id: "totals" }),
    h("div", { class: "charts" }, chart(series, "rate", "messages per second"), chart(series, "depth", "depth")),
    h("h2", {}, "Nodes"), h("div", { id: "nodes" }), h("h2", {}, "E2E processing latency"), h("div", { id: "e2e" }),
    h("h2", {}, "Clients"), h("div", { id: "clients" }),
    h("h2", {}, "Waiting messages (peek, not consumed)"), h("div", { id: "peek" }));
  refresh = async () => {
    const [{ ok, body }, peek] = await Promise.all([api(path), api(`${path}/peek?n=10`)]);
    showWarning(ok ? body.message : `${topic}/${channel}: ${body.message}`);
    if (!ok) return;
    if (body.paused !== paused) fill("actions", actions(path, `channel ${topic}/${channel}`, (paused = body.paused)));
    fill("totals", h("p", { class: "totals", "data-testid": "channel-totals" }, body.paused ? badge("paused") : null,
      `depth ${num(body.depth)} · in-flight ${num(body.in_flight_count)} · deferred ${num(body.deferred_count)} · requeued ${num(body.requeue_count)} · timed out ${num(body.timeout_count)} · messages ${num(body.message_count)} · ${rate(body.rate)}`));
    fill("nodes", table(["Node", "Depth", "Memory + Disk", "In-flight", "Deferred", "Requeued", "Timed out", "Messages", "Connections"], body.nodes.map((n) =>
      h("tr", {}, nodeCell(n), ...(n.up ? [h("td", { class: "n" }, num(n.depth)), h("td", { class: "n" }, `${num(n.memory_depth)} + ${num(n.backend_depth)}`),
        ...[n.in_flight_count, n.deferred_count, n.requeue_count, n.timeout_count, n.message_count, n.client_count].map((v) => h("td", { class: "n" }, num(v)))]
        : [h("td", { colspan: 8 }, n.error)]))), "channel-nodes-table"));
    fill("e2e", e2eTable(body));
    fill("clients", table(["Node", "Address", "User agent", "RDY", "In-flight", "Finished", "Requeued", "Messages", "Connected since"], body.clients.map((c) =>
      h("tr", { "data-client": c.remote_address }, h("td", {}, c.node), h("td", {}, clientAddress(c)), h("td", {}, c.user_agent || c.version),
        ...[c.ready_count, c.in_flight_count, c.finish_count, c.requeue_count, c.message_count].map((v) => h("td", { class: "n" }, num(v))),
        h("td", {}, since(c.connect_ts)))), "clients-table"));
    const messages = peek.body.messages || [];
    fill("peek", table(["Node", "ID", "Published", "Attempts", "Body", "Size"], messages.map((m) =>
      h("tr", {}, h("td", {}, m.node), h("td", { class: "mono" }, m.id), h("td", {}, new Date(m.timestamp / 1e6).toLocaleString()),
        h("td", { class: "n" }, num(m.attempts)), h("td", { class: "mono body" }, m.body), h("td", { class: "n" }, num(m.body_size)))), "peek-table"));
  };
}

async function nodesPage() {
  page("Nodes", h("div", { id: "nodes" }));
  refresh = async () => {
    const { body } = await api("/api/nodes");
    showWarning(body.message);
    fill("nodes", table(["Node", "Hostname", "Broadcast address", "TCP", "HTTP", "Version", "Status", "Rate", "Metrics", "Topics"], (body.nodes || []).map((n) =>
      h("tr", { "data-node": n.node }, h("td", {}, h("a", { href: `/nodes/${enc(n.node)}` }, n.node)), h("td", {}, n.hostname), h("td", {}, n.broadcast_address),
        h("td", { class: "n" }, n.tcp_port), h("td", { class: "n" }, n.http_port), h("td", {}, n.version, n.out_of_date ? badge("out of date") : null),
        h("td", {}, n.up ? badge("up", "up") : badge(`down: ${n.error}`, "down"), n.state === "draining" ? badge("draining") : null), h("td", { class: "n" }, rate(n.rate)), h("td", {}, metricsLink(n)),
        h("td", {}, n.topics.map((t) => h("a", { href: `/topics/${enc(t.topic)}`, class: t.tombstoned ? "tag tombstoned" : "tag" }, t.topic)))))
      , "nodes-table"));
  };
}

async function nodePage(node) {
  page(`Node ${node}`, h("div", { id: "totals" }),
    h("div", { class: "charts" }, chart(`node:${node}`, "rate", "messages per second"), chart(`node:${node}`, "depth", "depth")),
    h("h2", {}, "Topics and channels"), h("div", { id: "topics" }), h("h2", {}, "Clients"), h("div", { id: "clients" }));
  refresh = async () => {
    const { ok, body } = await api(`/api/nodes/${enc(node)}`);
    showWarning(ok ? body.message : `${node}: ${body.message}`);
    if (!ok) return;
    const draining = body.state === "draining";
    fill("totals", h("p", { class: "totals" }, body.up ? badge("up", "up") : badge(`down: ${body.error}`, "down"), draining ? badge("draining") : null,
      ` ${body.hostname} · version ${body.version} · messages ${num(body.total_messages)} · clients ${num(body.total_clients)} · ${rate(body.rate)} · `, metricsLink(body), " ",
      body.up && !draining && isAdmin() ? h("button", { class: "small danger", id: "drain-button", title: "refuse publishes, deliver what is queued, then shut down", onclick: () =>
        act(`/api/nodes/${enc(node)}`, { action: "drain" }, `Drain ${node}? It refuses new messages, delivers what it holds, then exits.`) }, "Drain") : null));
    const rows = [];
    for (const t of body.topics) {
      rows.push(h("tr", { class: "topic-row" }, h("td", {}, h("a", { href: `/topics/${enc(t.topic_name)}` }, t.topic_name), t.paused ? badge("paused") : null), h("td", {}, ""),
        h("td", { class: "n" }, num(t.depth)), h("td", { class: "n" }, `${num(t.memory_depth)} + ${num(t.backend_depth)}`), h("td", {}, ""), h("td", { class: "n" }, num(t.message_count)),
        h("td", {}, ifAdmin(() => h("button", { class: "small danger", onclick: () => act(`/api/nodes/${enc(node)}`, { action: "tombstone", topic: t.topic_name }, `Tombstone ${t.topic_name} on ${node} and delete it there?`) }, "✘ tombstone")))));
      for (const c of t.channels) {
        rows.push(h("tr", {}, h("td", {}, ""), h("td", {}, h("a", { href: `/topics/${enc(t.topic_name)}/${enc(c.channel_name)}` }, c.channel_name), c.paused ? badge("paused") : null),
          h("td", { class: "n" }, num(c.depth)), h("td", { class: "n" }, `${num(c.memory_depth)} + ${num(c.backend_depth)}`), h("td", { class: "n" }, num(c.in_flight_count)), h("td", { class: "n" }, num(c.message_count)), h("td", {}, "")));
      }
    }
    fill("topics", table(["Topic", "Channel", "Depth", "Memory + Disk", "In-flight", "Messages", ""], rows, "node-topics-table"));
    fill("clients", table(["Topic / channel", "Address", "User agent", "RDY", "In-flight", "Finished", "Connected since"], body.clients.map((c) =>
      h("tr", {}, h("td", {}, `${c.topic_name} / ${c.channel_name}`), h("td", {}, clientAddress(c)), h("td", {}, c.user_agent || c.version),
        ...[c.ready_count, c.in_flight_count, c.finish_count].map((v) => h("td", { class: "n" }, num(v))), h("td", {}, since(c.connect_ts)))), "node-clients-table"));
  };
}

async function lookupPage() {
  page("Lookup", h("div", { id: "lookupds" }), h("div", { id: "lookup" }));
  refresh = async () => {
    const { body } = await api("/api/lookup");
    showWarning(body.message);
    const addresses = body.lookupd_http_addresses || [];
    fill("lookupds", addresses.length ? h("p", {}, "lookupds: ", addresses.join(", "))
      : h("p", {}, "No lookupd is configured (--lookupd-http-address): nodes come from --nsqd-http-address."));
    fill("lookup", table(["Topic", "Channels", "Producers", ""], (body.topics || []).map((t) =>
      h("tr", { "data-topic": t.topic }, h("td", {}, h("a", { href: `/topics/${enc(t.topic)}` }, t.topic), t.inactive ? badge("inactive") : null),
        h("td", {}, t.channels.join(", ")), h("td", {}, t.producers.join(", ")),
        h("td", {}, t.inactive && isAdmin() ? h("button", { class: "small danger", onclick: () => act(`/api/topics/${enc(t.topic)}`, { action: "delete" }, `Delete inactive topic ${t.topic}?`) }, "delete") : null))), "lookup-table"));
  };
}

async function counterPage() {
  page("Messages processed", h("div", { class: "counter", id: "counter", "data-testid": "counter" }, "…"), h("p", { id: "counter-rate", class: "totals" }),
    chart("total", "rate", "messages processed per second"));
  refresh = async () => {
    const { body } = await api("/api/counter");
    showWarning(body.message);
    fill("counter", num(body.total_messages));
    const last = (await api("/api/history?series=total")).body.points || [];
    fill("counter-rate", last.length ? rate(last[last.length - 1].rate) : "");
  };
}

// -- start -----------------------------------------------------------------------------------

function route() {
  if (!isAdmin()) {
    document.getElementById("live").before(h("span", { class: "read-only", id: "read-only", title: "actions need an admin user" }, "read-only"));
  }
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const nav = parts[0] === "topics" || parts.length === 0 ? "topics" : parts[0];
  document.querySelector(`[data-nav="${nav}"]`)?.classList.add("current");
  if (parts.length === 0) return topicsPage();
  if (parts[0] === "topics" && parts.length === 2) return topicPage(parts[1]);
  if (parts[0] === "topics" && parts.length === 3) return channelPage(parts[1], parts[2]);
  if (parts[0] === "nodes" && parts.length === 1) return nodesPage();
  if (parts[0] === "nodes" && parts.length === 2) return nodePage(parts[1]);
  if (parts[0] === "lookup") return lookupPage();
  if (parts[0] === "counter") return counterPage();
  return page("Not found");
}

let busy = false;
async function update() {
  if (busy) return;
  busy = true;
  try {
    await refresh();
    await drawCharts();
  } finally {
    busy = false;
  }
}

function listen() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
  events.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "live"; });
  events.addEventListener("sample", () => update());
}

document.addEventListener("DOMContentLoaded", async () => {
  await route();
  await update();
  document.body.dataset.ready = "true";
  listen();
});
