// Drives a running headless Chromium over the DevTools protocol for tests/browser.rs.
// No npm packages: node >= 20 with --experimental-websocket (the global WebSocket).
//
//   node --experimental-websocket cdp.mjs <devtools host:port>
//
// Attaches to the browser's page, prints {"ready": true}, then answers requests: one JSON object
// a line on stdin, one JSON object a line on stdout.
//
//   {"op": "load", "url": U, "timeout_ms": T}
//       opens U, waits until the overview rendered (document.body.dataset.loaded) and the
//       drill-down settled (the [data-overdue-count] table, or its refusal), and answers
//       {"ok": true, "loaded": "<position>", "overdue_count": "<n>" | null, "overdue_error": …,
//        "alert": …, "items": [{"key", "text", "value", "shown"}], "exceptions": […],
//        "console": […]} — items are every [data-key] element in document order.
//   {"op": "screenshot", "path": P}
//       saves a PNG of the whole page to P: {"ok": true, "path": P, "width": W, "height": H}.
//   {"op": "quit"}
//
// A failure answers {"ok": false, "error": "…"}.
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const [address] = process.argv.slice(2);
if (!address) {
  console.error('usage: node --experimental-websocket cdp.mjs <devtools host:port>');
  process.exit(2);
}
if (typeof WebSocket !== 'function') {
  console.error('cdp.mjs: no global WebSocket: run node >= 20 with --experimental-websocket');
  process.exit(2);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const answer = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// The page target: the one Chromium opened, or a new one.
async function pageTarget() {
  for (let i = 0; ; i++) {
    try {
      const list = await (await fetch(`http://${address}/json/list`)).json();
      const page = list.find((t) => t.type === 'page' && t.webSocketDebuggerUrl);
      if (page) return page;
      const made = await (await fetch(`http://${address}/json/new?about:blank`, { method: 'PUT' })).json();
      if (made.webSocketDebuggerUrl) return made;
    } catch (e) {
      if (i >= 100) throw new Error(`no DevTools endpoint at ${address}: ${e.message}`);
    }
    await sleep(100);
  }
}

const target = await pageTarget();
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  ws.addEventListener('open', resolve, { once: true });
  ws.addEventListener('error', () => reject(new Error(`cannot connect to ${target.webSocketDebuggerUrl}`)), { once: true });
});
let quitting = false;
ws.addEventListener('close', () => {
  if (quitting) return;
  console.error('cdp.mjs: the DevTools connection closed');
  process.exit(1);
});

let nextId = 0;
const waiting = new Map();
const listeners = new Map();
const exceptions = [];
const consoleLines = [];
ws.addEventListener('message', (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id !== undefined && waiting.has(msg.id)) {
    const { resolve, reject, method } = waiting.get(msg.id);
    waiting.delete(msg.id);
    if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
    else resolve(msg.result);
    return;
  }
  if (msg.method === 'Runtime.exceptionThrown') {
    const d = msg.params.exceptionDetails;
    exceptions.push(`${d.exception?.description || d.text} (${d.url || ''}:${d.lineNumber}:${d.columnNumber})`);
  } else if (msg.method === 'Runtime.consoleAPICalled') {
    consoleLines.push(`console.${msg.params.type}: ` + msg.params.args.map((a) => a.value ?? a.description).join(' '));
  } else if (msg.method === 'Log.entryAdded') {
    const e = msg.params.entry;
    consoleLines.push(`${e.source} ${e.level}: ${e.text}${e.url ? ` (${e.url})` : ''}`);
  }
  for (const fn of listeners.get(msg.method) || []) fn(msg.params);
});
const send = (method, params = {}) => new Promise((resolve, reject) => {
  const id = ++nextId;
  waiting.set(id, { resolve, reject, method });
  ws.send(JSON.stringify({ id, method, params }));
});
const once = (method, ms) => new Promise((resolve) => {
  const fns = listeners.get(method) || [];
  const fn = (params) => { clearTimeout(timer); listeners.set(method, (listeners.get(method) || []).filter((f) => f !== fn)); resolve(params); };
  const timer = setTimeout(() => fn(null), ms);
  listeners.set(method, [...fns, fn]);
});
async function evaluate(expression) {
  const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
  if (r.exceptionDetails) throw new Error(`evaluating: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
  return r.result.value;
}

await send('Runtime.enable');
await send('Page.enable');
await send('Log.enable');
await send('Emulation.setDeviceMetricsOverride', { width: 1400, height: 1000, deviceScaleFactor: 1, mobile: false });

// What the page shows now: whether it settled, and every tagged number.
const STATE = `(() => {
  const text = (sel) => { const el = document.querySelector(sel); return el ? el.textContent.trim() : null; };
  const table = document.querySelector('[data-overdue-count]');
  return {
    href: location.href,
    loaded: (document.body && document.body.dataset.loaded) || null,
    overdue_count: table ? table.dataset.overdueCount : null,
    overdue_error: text('#p-overdue .alert'),
    alert: text('#alert .alert'),
  };
})()`;
// shown: rendered, and neither it nor an ancestor clipped to a pixel (a visually hidden label).
const ITEMS = `[...document.querySelectorAll('[data-key]')].map((e) => {
  let shown = e.checkVisibility({ checkVisibilityCSS: true });
  for (let a = e; shown && a && a !== document.body; a = a.parentElement) {
    const r = a.getBoundingClientRect();
    if ((r.width <= 1 || r.height <= 1) && getComputedStyle(a).overflow !== 'visible') shown = false;
  }
  return { key: e.dataset.key, text: e.textContent, value: e.dataset.value === undefined ? null : e.dataset.value, shown };
})`;

async function load({ url, timeout_ms: timeoutMs = 20000 }) {
  exceptions.length = 0;
  consoleLines.length = 0;
  const loadFired = once('Page.loadEventFired', timeoutMs);
  const nav = await send('Page.navigate', { url });
  if (nav.errorText) throw new Error(`navigating to ${url}: ${nav.errorText}`);
  await loadFired;
  const deadline = Date.now() + timeoutMs;
  let state;
  for (;;) {
    state = await evaluate(STATE);
    const settled = state.loaded && (state.overdue_count !== null || state.overdue_error !== null);
    if (settled) break;
    if (Date.now() > deadline) {
      throw new Error(`the page did not settle within ${timeoutMs} ms: ${JSON.stringify(state)}; exceptions ${JSON.stringify(exceptions)}; console ${JSON.stringify(consoleLines)}`);
    }
    await sleep(50);
  }
  const items = await evaluate(ITEMS);
  return { ok: true, ...state, items, exceptions: [...exceptions], console: [...consoleLines] };
}

async function screenshot({ path }) {
  const metrics = await send('Page.getLayoutMetrics');
  const size = metrics.cssContentSize || metrics.contentSize;
  const width = Math.ceil(size.width), height = Math.ceil(size.height);
  const shot = await send('Page.captureScreenshot', {
    format: 'png', captureBeyondViewport: true, clip: { x: 0, y: 0, width, height, scale: 1 },
  });
  writeFileSync(path, Buffer.from(shot.data, 'base64'));
  return { ok: true, path, width, height };
}

answer({ ready: true, target: target.url });
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let request;
  try {
    request = JSON.parse(line);
    if (request.op === 'quit') break;
    if (request.op === 'load') answer(await load(request));
    else if (request.op === 'screenshot') answer(await screenshot(request));
    else answer({ ok: false, error: `unknown op ${JSON.stringify(request.op)}` });
  } catch (e) {
    answer({ ok: false, error: String(e && e.message ? e.message : e) });
  }
}
quitting = true;
ws.close();
process.exit(0);
