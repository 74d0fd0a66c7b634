// Docket — operations dashboard. Plain ES2020, no dependencies.
// Contract: docs/dashboard.md. Every number taken from the JSON is rendered in an element
// carrying data-key="<json path>" (keyed lists use their key) and data-value="<raw value>";
// integers as given, floats to one decimal.
'use strict';
(() => {
  const OFFICES = 'ATL BAL BOS BUF CHI DAL DEN DET ELP HLG HOU LOS MIA NOL NYC NEW PHI PHO SLC SNA SND SFR SEA SPM WAS'.split(' ');
  const WINDOWS = ['24h', '7d', '30d', '90d', '365d', 'all'];
  const WINDOW_TEXT = { '24h': 'last 24 hours', '7d': 'last 7 days', '30d': 'last 30 days', '90d': 'last 90 days', '365d': 'last 365 days', all: 'all time' };
  const FLOAT_FIELDS = new Set(['median_hours', 'p90_hours', 'rate', 'age_seconds', 'overdue_hours']);
  const DEADLINE_STATES = ['on_time', 'due_soon', 'overdue'];
  const STAGES = ['requested', 'acknowledged', 'tier1_assigned', 'tier2_requested', 'tier2_assigned'];
  const OUTCOMES = ['upheld', 'modified', 'reversed', 'referred'];
  const NOTIF = ['delivered', 'pending', 'retrying', 'abandoned'];
  const CONSUMERS = ['assessment-guidance', 'review-deadlines', 'notification', 'dashboard'];
  const ACTOR_KEY = 'docket.actor';
  const API = 'api/v1/dashboard/';
  const SVGNS = 'http://www.w3.org/2000/svg';
  const LABELS = {
    on_time: 'On time', due_soon: 'Due soon', overdue: 'Overdue', tier1: 'Tier 1', tier2: 'Tier 2',
    prioritised: 'Prioritised', standard: 'Standard', no_guidance: 'No guidance in force',
    tier1_assigned: 'Tier 1 assigned', tier2_requested: 'Tier 2 requested', tier2_assigned: 'Tier 2 assigned',
  };

  const state = { office: '', window: 'all', actor: '', data: null, lastOk: 0, live: false };

  // ---------- DOM helpers ----------
  const $ = (id) => document.getElementById(id);
  function attrs(el, a) {
    for (const [k, v] of Object.entries(a || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function kids(el, list) {
    for (const k of list.flat(Infinity)) if (k != null && k !== false) el.append(k instanceof Node ? k : String(k));
    return el;
  }
  const h = (tag, a, ...c) => { const el = document.createElement(tag); attrs(el, a); return kids(el, c); };
  const s = (tag, a, ...c) => { const el = document.createElementNS(SVGNS, tag); attrs(el, a); return kids(el, c); };
  const title = (t) => s('title', null, t);
  const fill = (el, ...c) => { el.replaceChildren(); return kids(el, c); };

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  // A number from the JSON, tagged for tests and tools.
  function num(path, v, cls) {
    const leaf = path.slice(path.lastIndexOf('.') + 1);
    const el = h('span', { class: cls || 'n', 'data-key': path });
    if (!isNum(v)) { el.textContent = '—'; el.dataset.value = 'null'; return el; }
    el.dataset.value = String(v);
    el.textContent = FLOAT_FIELDS.has(leaf) || !Number.isInteger(v) ? v.toFixed(1) : String(v);
    return el;
  }
  function label(key) {
    if (LABELS[key]) return LABELS[key];
    const t = String(key).replace(/[_-]+/g, ' ').replace(/\btier ?([12])\b/g, 'tier $1').replace(/\bnta\b/g, 'NTA');
    return t.charAt(0).toUpperCase() + t.slice(1);
  }
  const sum = (xs) => xs.reduce((a, b) => a + (isNum(b) ? b : 0), 0);
  const pad2 = (n) => String(n).padStart(2, '0');
  const hhmmss = (d) => `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  function utc(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}Z`;
  }
  function duration(sec) {
    if (!isNum(sec)) return '—';
    if (sec < 90) return `${Math.round(sec)} s`;
    if (sec < 5400) return `${Math.round(sec / 60)} min`;
    if (sec < 129600) return `${(sec / 3600).toFixed(1)} h`;
    return `${(sec / 86400).toFixed(1)} d`;
  }
  const listEntries = (list) => (Array.isArray(list) ? list : []).filter((e) => e && e.key != null);
  function objEntries(obj, order) {
    const o = obj && typeof obj === 'object' ? obj : {};
    const keys = order.filter((k) => k in o).concat(Object.keys(o).filter((k) => !order.includes(k)));
    return keys.map((k) => ({ key: k, count: o[k] }));
  }
  const empty = (text) => h('p', { class: 'empty' }, text || 'Nothing in this window.');

  // ---------- charts (small SVG) ----------
  // Horizontal bars: one row per entry, value in an HTML data-key element.
  function hbars(prefix, entries, opts = {}) {
    if (!entries.length) return empty(opts.emptyText);
    const max = Math.max(1, ...entries.map((e) => (isNum(e.count) ? e.count : 0)));
    const ul = h('ul', { class: 'hbars' + (opts.compact ? ' compact' : ''), role: 'list', 'aria-label': opts.title });
    for (const e of entries) {
      const w = isNum(e.count) ? (e.count / max) * 100 : 0;
      const name = opts.labelOf ? opts.labelOf(e.key) : label(e.key);
      const lab = opts.onPick
        ? h('button', { type: 'button', class: 'hb-l linkish', title: `Filter by ${e.key}`, onclick: () => opts.onPick(e.key) }, name)
        : h('span', { class: 'hb-l', title: String(e.key) }, name);
      ul.append(h('li', { class: e.cls || null },
        lab,
        s('svg', { class: 'hb-bar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', role: 'img', 'aria-label': `${name}: ${e.count}` },
          title(`${name}: ${e.count}`),
          s('rect', { class: 'track', x: 0, y: 0, width: 100, height: 10, rx: 1 }),
          s('rect', { class: 'bar ' + (e.tone || opts.tone || ''), x: 0, y: 0, width: Math.max(w, e.count > 0 ? 0.8 : 0).toFixed(2), height: 10, rx: 1 })),
        num(`${prefix}.${e.key}`, e.count, 'n hb-v')));
    }
    return ul;
  }

  // Columns over time (months). Labels thinned to fit.
  function columns(entries, opts) {
    const W = opts.width || 720, H = opts.height || 170, L = 36, B = 22, T = 10;
    const max = Math.max(1, ...entries.map((e) => e.count || 0));
    const nice = niceMax(max);
    const n = entries.length;
    const slot = (W - L - 4) / Math.max(n, 1);
    const bw = Math.min(42, Math.max(2, slot * 0.72));
    const step = Math.max(1, Math.ceil(n / Math.floor((W - L) / 56)));
    const svg = s('svg', { class: 'cols', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': opts.title }, title(opts.title));
    const ticks = [4, 5, 2, 1].find((k) => Number.isInteger(nice / k));
    for (let i = 0; i <= ticks; i++) {
      const y = T + (H - T - B) * (1 - i / ticks);
      svg.append(s('line', { class: 'grid', x1: L, x2: W, y1: y, y2: y }),
        s('text', { class: 'axis', x: L - 6, y: y + 3.5, 'text-anchor': 'end' }, fmtAxis((nice * i) / ticks)));
    }
    let lastYear = null;
    entries.forEach((e, i) => {
      const v = e.count || 0;
      const bh = ((H - T - B) * v) / nice;
      const x = L + 2 + slot * i + (slot - bw) / 2;
      svg.append(s('rect', { class: 'bar ' + (opts.tone || ''), x: x.toFixed(1), y: (H - B - bh).toFixed(1), width: bw.toFixed(1), height: Math.max(bh, v > 0 ? 1 : 0).toFixed(1), rx: 1.5 },
        title(`${e.key}: ${v}`)));
      if (i % step === 0) {
        const yr = String(e.key).slice(0, 4);
        svg.append(s('text', { class: 'axis', x: (x + bw / 2).toFixed(1), y: H - 6, 'text-anchor': 'middle' }, shortMonth(e.key, yr !== lastYear)));
        lastYear = yr;
      }
    });
    return svg;
  }
  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  const fmtAxis = (v) => (v >= 10000 ? `${Math.round(v / 1000)}k` : String(Math.round(v * 10) / 10));
  const MONTHS = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ');
  function shortMonth(key, withYear) {
    const m = /^(\d{4})-(\d{2})$/.exec(key);
    if (!m) return key;
    const mon = MONTHS[Number(m[2]) - 1] || m[2];
    return withYear ? `${mon} ${m[1]}` : mon;
  }
  // The month values themselves, as a scrollable strip of cells.
  function strip(prefix, entries) {
    const el = h('ol', { class: 'strip', 'aria-label': 'Values by month' },
      entries.map((e) => h('li', null, h('span', { class: 'k' }, e.key), num(`${prefix}.${e.key}`, e.count))));
    requestAnimationFrame(() => { el.scrollLeft = el.scrollWidth; });
    return el;
  }

  // 100 % stacked horizontal bar with legend carrying the data-keys.
  function stacked(prefix, entries, opts = {}) {
    const total = opts.total != null ? opts.total : sum(entries.map((e) => e.count));
    const scale = opts.scale || total || 1;
    const svg = s('svg', { class: 'stack', viewBox: '0 0 100 10', preserveAspectRatio: 'none', role: 'img', 'aria-label': opts.title },
      title(`${opts.title}: ` + entries.map((e) => `${label(e.key)} ${e.count}`).join(', ')),
      s('rect', { class: 'track', x: 0, y: 0, width: 100, height: 10 }));
    let x = 0;
    for (const e of entries) {
      const w = isNum(e.count) && scale ? (e.count / scale) * 100 : 0;
      if (w > 0) svg.append(s('rect', { class: 'seg c-' + e.key, x: x.toFixed(3), y: 0, width: w.toFixed(3), height: 10 }, title(`${label(e.key)}: ${e.count}`)));
      x += w;
    }
    const row = h('div', { class: 'stack-row' });
    if (opts.rowLabel) row.append(h('span', { class: 'stack-l' }, opts.rowLabel));
    row.append(h('div', { class: 'stack-svg' }, svg));
    if (opts.totalKey) row.append(num(opts.totalKey, opts.totalValue, 'n stack-t'));
    if (opts.legend === false) return row;
    return h('div', { class: 'stack-wrap' }, row, legend(prefix, entries));
  }
  function legend(prefix, entries, opts = {}) {
    return h('ul', { class: 'legend' + (opts.vertical ? ' vertical' : ''), role: 'list' },
      entries.map((e) => h('li', null, h('i', { class: 'sw c-' + e.key, 'aria-hidden': 'true' }), h('span', { class: 'lg-l' }, label(e.key)), num(`${prefix}.${e.key}`, e.count))));
  }

  function donut(prefix, entries, total, totalKey, ttl) {
    const R = 42, C = 2 * Math.PI * R;
    const svg = s('svg', { class: 'donut', viewBox: '0 0 120 120', role: 'img', 'aria-label': ttl },
      title(`${ttl}: ` + entries.map((e) => `${label(e.key)} ${e.count}`).join(', ')),
      s('circle', { class: 'track-ring', cx: 60, cy: 60, r: R }));
    const denom = Math.max(total || 0, sum(entries.map((e) => e.count))) || 0;
    let off = 0;
    if (denom > 0) {
      for (const e of entries) {
        const frac = (e.count || 0) / denom;
        if (frac <= 0) continue;
        const len = Math.max(frac * C, 0.8);
        svg.append(s('circle', { class: 'ring c-' + e.key, cx: 60, cy: 60, r: R, 'stroke-dasharray': `${len.toFixed(2)} ${(C - len).toFixed(2)}`, 'stroke-dashoffset': (-off).toFixed(2), transform: 'rotate(-90 60 60)' },
          title(`${label(e.key)}: ${e.count}`)));
        off += frac * C;
      }
    }
    return h('div', { class: 'donut-wrap' },
      h('div', { class: 'donut-box' }, svg, h('div', { class: 'donut-c' }, num(totalKey, total, 'n big'), h('span', { class: 'muted' }, 'queued'))),
      legend(prefix, entries, { vertical: true }));
  }

  // ---------- rendering ----------
  function kpi(lbl, valueEls, sub, tone) {
    return h('div', { class: 'kpi' + (tone ? ' ' + tone : '') },
      h('h3', { class: 'kpi-l' }, lbl),
      h('p', { class: 'kpi-v' }, valueEls),
      h('p', { class: 'kpi-s' }, sub || ''));
  }
  const toneIf = (v, t) => (isNum(v) && v > 0 ? t : '');

  function renderHeader(d) {
    fill($('hdr-position'), num('position', d.position));
    fill($('hdr-head'), num('head', d.head));
    const it = d.integrity || {};
    const box = $('integrity');
    let st = 'unknown', mark = '', text = 'no checkpoint signed yet';
    if (it.verified === true) { st = 'ok'; mark = '✓'; text = 'verified'; }
    else if (it.verified === false) { st = 'bad'; mark = '✗'; text = it.problem ? String(it.problem) : 'verification failed'; }
    box.dataset.state = st;
    box.title = [st === 'bad' ? `not verified: ${text}` : '', it.root ? `root ${it.root}` : '', it.checked_at ? `checked ${utc(it.checked_at)}` : ''].filter(Boolean).join('\n');
    fill(box,
      h('span', { class: 'integrity-l' }, 'Checkpoint'),
      isNum(it.checkpoint_size) ? num('integrity.checkpoint_size', it.checkpoint_size, 'n') : null,
      h('span', { class: 'integrity-mark', 'aria-hidden': 'true' }, mark),
      h('span', { class: 'integrity-text' }, st === 'ok' ? 'verified' : st === 'bad' ? `not verified: ${text}` : text),
      isNum(it.age_seconds) ? h('span', { class: 'integrity-age' }, 'age ', num('integrity.age_seconds', it.age_seconds), ' s') : null);
    const refusing = (Array.isArray(it.witnesses) ? it.witnesses : []).filter((w) => w.alarm);
    fill($('integrity-alert'), st === 'bad' ? h('div', { class: 'alert', role: 'alert' },
      h('strong', null, 'Log integrity: the latest signed checkpoint did not verify. '), text, ' ',
      h('span', { class: 'muted' }, it.checked_at ? `(checked ${utc(it.checked_at)})` : '')) : null,
      refusing.length ? h('div', { class: 'alert', role: 'alert' },
        h('strong', null, 'Witness alarm: '), refusing.map((w, i) => [i ? '; ' : '', h('code', null, w.name), ' refused: ', String(w.last_error || 'refused')])) : null);
    const f = d.filter || {};
    $('range').textContent = `${f.office ? `Office ${f.office}` : 'All offices'} · ${WINDOW_TEXT[f.window] || f.window || ''}` +
      (f.from ? ` · ${utc(f.from)} → ${utc(d.as_of)}` : d.as_of ? ` · as of ${utc(d.as_of)}` : '');
  }

  function renderKpis(d) {
    const rq = d.review_queue || {}, bd = rq.by_deadline || {}, bt = rq.by_tier || {};
    const dec = d.decisions || {}, dep = d.departures || {}, miss = d.deadlines_missed || {}, nt = d.notifications || {};
    const cons = Array.isArray(d.consumers) ? d.consumers : [];
    const worst = cons.reduce((a, c) => (!a || (c.lag || 0) > (a.lag || 0) ? c : a), null);
    const win = WINDOW_TEXT[(d.filter && d.filter.window) || state.window] || '';
    const pct = isNum(dep.rate) ? (dep.rate * 100).toFixed(1) : '—';
    fill($('kpis'), 
      kpi('Open reviews', num('review_queue.open', rq.open), ['tier 1 ', num('review_queue.by_tier.tier1', bt.tier1), ' · tier 2 ', num('review_queue.by_tier.tier2', bt.tier2)]),
      kpi('Overdue', num('review_queue.by_deadline.overdue', bd.overdue), 'past a deadline', toneIf(bd.overdue, 'bad')),
      kpi('Due soon', num('review_queue.by_deadline.due_soon', bd.due_soon), 'due within 24 h', toneIf(bd.due_soon, 'warn')),
      kpi('Decisions', num('decisions.total', dec.total), win),
      kpi('Departure rate',
        [h('span', { class: 'n', 'aria-label': `${pct} percent` }, pct), h('span', { class: 'unit' }, '%'),
          // the raw ratio, one decimal as the contract's floats; visually hidden (the percentage is shown)
          h('span', { class: 'vh', 'aria-hidden': 'true' }, num('departures.rate', dep.rate))],
        [num('departures.total', dep.total), ' of ', num('decisions.total', dec.total), ' decisions'], toneIf(dep.total, 'info')),
      kpi('Missed deadlines', num('deadlines_missed.total', miss.total), win, toneIf(miss.total, 'warn')),
      kpi('Notifications', [num('notifications.retrying', nt.retrying), h('span', { class: 'sep' }, ' / '), num('notifications.abandoned', nt.abandoned)],
        'retrying / abandoned', toneIf(nt.abandoned, 'bad') || toneIf(nt.retrying, 'warn')),
      kpi('Max lag', worst ? num(`consumers.${worst.consumer}.lag`, worst.lag) : h('span', { class: 'n' }, '—'),
        worst ? worst.consumer : 'no consumers reported', worst && worst.lag > 1000 ? 'bad' : worst && worst.lag > 100 ? 'warn' : ''));
  }

  function renderQueue(d) {
    const rq = d.review_queue || {};
    const bd = objEntries(rq.by_deadline, DEADLINE_STATES);
    const tiers = objEntries(rq.by_tier, ['tier1', 'tier2']);
    const cross = rq.by_tier_deadline; // optional tier × deadline-state cross-tabulation, if the API provides it
    const out = [];
    if (cross && typeof cross === 'object') {
      out.push(h('h3', { class: 'sub' }, 'Deadline state by tier'));
      const rows = objEntries(cross, ['tier1', 'tier2']);
      // One scale for every row (the largest is "All"), so bar lengths compare across rows.
      const scale = Math.max(1, rq.open || 0, ...rows.map((r) => sum(Object.values(r.count || {}))));
      out.push(stacked('review_queue.by_deadline', bd, { title: 'All open reviews by deadline state', rowLabel: 'All', scale, totalKey: 'review_queue.open', totalValue: rq.open }));
      for (const r of rows) {
        out.push(stacked(`review_queue.by_tier_deadline.${r.key}`, objEntries(r.count, DEADLINE_STATES),
          { title: `${label(r.key)} by deadline state`, rowLabel: label(r.key), scale,
            totalKey: `review_queue.by_tier.${r.key}`, totalValue: (rq.by_tier || {})[r.key] }));
      }
    } else {
      out.push(h('h3', { class: 'sub' }, 'By deadline state'));
      out.push(stacked('review_queue.by_deadline', bd, { title: 'Open reviews by deadline state', rowLabel: 'All', totalKey: 'review_queue.open', totalValue: rq.open }));
      out.push(h('h3', { class: 'sub' }, 'By tier'));
      const scale = Math.max(1, ...tiers.map((t) => t.count || 0));
      for (const t of tiers) {
        out.push(stacked('review_queue.by_tier', [{ key: t.key, count: t.count }],
          { title: `${label(t.key)} open reviews`, rowLabel: label(t.key), scale, legend: false, totalKey: `review_queue.by_tier.${t.key}`, totalValue: t.count }));
      }
    }
    out.push(h('h3', { class: 'sub' }, 'By stage'),
      hbars('review_queue.by_stage', objEntries(rq.by_stage, STAGES), { title: 'Open reviews by stage', tone: 'accent', emptyText: 'No open reviews.' }));
    out.push(h('h3', { class: 'sub' }, 'By priority'),
      stacked('review_queue.by_priority', objEntries(rq.by_priority, ['prioritised', 'standard']), { title: 'Open reviews by priority', rowLabel: 'All' }));
    fill($('p-queue'), out);
  }

  function renderTurnaround(d) {
    const rows = (Array.isArray(d.turnaround) ? d.turnaround : []).filter((t) => t && t.tier);
    if (!rows.length) { fill($('p-turn'), empty('No tier decisions in this window.')); return; }
    const table = h('table', { class: 'data' },
      h('caption', { class: 'vh' }, 'Turnaround and outcomes per tier'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Tier'), h('th', { scope: 'col', class: 'r' }, 'Decided'),
        h('th', { scope: 'col', class: 'r' }, 'Median h'), h('th', { scope: 'col', class: 'r' }, 'P90 h'))),
      h('tbody', null, rows.map((t) => h('tr', null, h('th', { scope: 'row' }, label(t.tier)),
        h('td', { class: 'r' }, num(`turnaround.${t.tier}.decided`, t.decided)),
        h('td', { class: 'r' }, num(`turnaround.${t.tier}.median_hours`, t.median_hours)),
        h('td', { class: 'r' }, num(`turnaround.${t.tier}.p90_hours`, t.p90_hours))))));
    const mix = h('div', { class: 'mix' }, h('h3', { class: 'sub' }, 'Outcome mix'));
    const otable = h('table', { class: 'data compact' },
      h('caption', { class: 'vh' }, 'Outcomes per tier'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Tier'),
        OUTCOMES.map((o) => h('th', { scope: 'col', class: 'r' }, h('i', { class: 'sw c-' + o, 'aria-hidden': 'true' }), label(o))))),
      h('tbody', null, rows.map((t) => h('tr', null, h('th', { scope: 'row' }, label(t.tier)),
        objEntries(t.outcomes, OUTCOMES).map((e) => h('td', { class: 'r' }, num(`turnaround.${t.tier}.outcomes.${e.key}`, e.count)))))));
    for (const t of rows) {
      mix.append(stacked(`turnaround.${t.tier}.outcomes`, objEntries(t.outcomes, OUTCOMES),
        { title: `${label(t.tier)} outcome mix`, rowLabel: label(t.tier), legend: false }));
    }
    mix.append(otable);
    fill($('p-turn'), table, mix);
  }

  function renderNotifications(d) {
    const nt = d.notifications || {};
    fill($('p-notif'), 
      donut('notifications', objEntries(nt, NOTIF).filter((e) => e.key !== 'queued'), nt.queued, 'notifications.queued', 'Notifications by state'),
      h('p', { class: 'note' }, 'Pending: queued, no attempt yet. Retrying: an attempt failed, another is due. Abandoned: gave up.'));
  }

  function renderDecisions(d) {
    const dec = d.decisions || {};
    const byOffice = listEntries(dec.by_office).map((e) => (e.key === state.office ? { ...e, cls: 'sel' } : e));
    fill($('p-office'), hbars('decisions.by_office', byOffice,
      { title: 'Decisions by office', tone: 'accent', labelOf: (k) => k, onPick: (k) => setFilter({ office: state.office === k ? '' : k }) }),
      state.office ? h('p', { class: 'note' }, h('button', { type: 'button', class: 'secondary', onclick: () => setFilter({ office: '' }) }, 'Show all offices')) : null);
    const months = listEntries(dec.by_month);
    fill($('p-dec'), 
      h('div', { class: 'dec-top' },
        h('h3', { class: 'sub' }, 'By month'),
        h('p', { class: 'dec-total' }, 'Total ', num('decisions.total', dec.total))),
      months.length ? [columns(months, { title: 'Decisions by month', tone: 'accent' }), strip('decisions.by_month', months)] : empty(),
      h('div', { class: 'two' },
        h('div', null, h('h3', { class: 'sub' }, 'By enforcement action'), hbars('decisions.by_action', listEntries(dec.by_action), { title: 'Decisions by action', tone: 'accent2' })),
        h('div', null, h('h3', { class: 'sub' }, 'By priority category'), hbars('decisions.by_priority', listEntries(dec.by_priority), { title: 'Decisions by priority category', tone: 'accent3' }))));
  }

  function renderDepartures(d) {
    const dep = d.departures || {};
    const pct = isNum(dep.rate) ? `${(dep.rate * 100).toFixed(1)} %` : '—';
    fill($('p-dep'), 
      h('dl', { class: 'stats' },
        h('div', null, h('dt', null, 'Departures'), h('dd', null, num('departures.total', dep.total))),
        h('div', null, h('dt', null, 'Needing approval'), h('dd', null, num('departures.needing_approval', dep.needing_approval))),
        h('div', null, h('dt', null, 'Approved'), h('dd', null, num('departures.approved', dep.approved))),
        h('div', null, h('dt', null, 'Rate'), h('dd', null, h('span', { class: 'n' }, pct)))),
      h('h3', { class: 'sub' }, 'By kind'),
      hbars('departures.by_kind', listEntries(dep.by_kind), { title: 'Departures by kind', tone: 'info', emptyText: 'No departures in this window.' }));
  }

  function renderMissed(d) {
    const m = d.deadlines_missed || {};
    const months = listEntries(m.by_month);
    fill($('p-miss'), 
      h('dl', { class: 'stats' }, h('div', null, h('dt', null, 'Missed'), h('dd', null, num('deadlines_missed.total', m.total)))),
      h('h3', { class: 'sub' }, 'By deadline kind'),
      hbars('deadlines_missed.by_kind', listEntries(m.by_kind), { title: 'Missed deadlines by kind', tone: 'warn', emptyText: 'No missed deadlines in this window.' }),
      months.length ? [h('h3', { class: 'sub' }, 'By month'), columns(months, { title: 'Missed deadlines by month', tone: 'warn', width: 400, height: 150 }), strip('deadlines_missed.by_month', months)] : null);
  }

  function renderSystem(d) {
    const cons = (Array.isArray(d.consumers) ? d.consumers : []).filter((c) => c && c.consumer)
      .sort((a, b) => (CONSUMERS.indexOf(a.consumer) + 99) % 99 - (CONSUMERS.indexOf(b.consumer) + 99) % 99 || String(a.consumer).localeCompare(b.consumer));
    const max = Math.max(1, ...cons.map((c) => c.lag || 0));
    const it = d.integrity || {};
    const ok = it.verified === true, bad = it.verified === false;
    fill($('p-sys'), 
      cons.length ? h('table', { class: 'data lag' },
        h('caption', { class: 'vh' }, 'Reaction consumers: checkpoint and lag'),
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Consumer'), h('th', { scope: 'col', class: 'r' }, 'Checkpoint'),
          h('th', { scope: 'col' }, h('span', { class: 'vh' }, 'Lag chart')), h('th', { scope: 'col', class: 'r' }, 'Lag'))),
        h('tbody', null, cons.map((c) => {
          const tone = c.lag > 1000 ? 'bad' : c.lag > 100 ? 'warn' : c.lag > 0 ? 'accent' : 'ok';
          return h('tr', null, h('th', { scope: 'row' }, h('code', null, c.consumer)),
            h('td', { class: 'r' }, num(`consumers.${c.consumer}.position`, c.position)),
            h('td', { class: 'lagbar' }, s('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none', role: 'img', 'aria-label': `${c.consumer} lag ${c.lag}` },
              title(`${c.consumer}: lag ${c.lag}`), s('rect', { class: 'track', width: 100, height: 10, rx: 1 }),
              s('rect', { class: 'bar ' + tone, width: Math.max(((c.lag || 0) / max) * 100, c.lag > 0 ? 1 : 0).toFixed(2), height: 10, rx: 1 }))),
            h('td', { class: 'r' }, num(`consumers.${c.consumer}.lag`, c.lag)));
        }))) : empty('No consumer checkpoints reported.'),
      h('h3', { class: 'sub' }, 'Signed checkpoint'),
      h('dl', { class: 'kv' },
        h('dt', null, 'Status'), h('dd', { class: ok ? 'ok-t' : bad ? 'bad-t' : 'muted' }, ok ? '✓ verified' : bad ? `✗ ${it.problem || 'verification failed'}` : 'none signed yet'),
        h('dt', null, 'Size'), h('dd', null, isNum(it.checkpoint_size) ? [num('integrity.checkpoint_size', it.checkpoint_size), ' entries'] : '—'),
        h('dt', null, 'Age'), h('dd', null, isNum(it.age_seconds) ? [num('integrity.age_seconds', it.age_seconds), ' s ', h('span', { class: 'muted' }, `(${duration(it.age_seconds)})`)] : '—'),
        h('dt', null, 'Root'), h('dd', null, h('code', { class: 'root', title: it.root || '' }, it.root || '—')),
        h('dt', null, 'Checked'), h('dd', null, utc(it.checked_at))),
      renderWitnesses(it));
  }

  // The checkpointer's witnesses: cosignatures against the quorum, and each one's state.
  function renderWitnesses(it) {
    const ws = Array.isArray(it.witnesses) ? it.witnesses : [];
    if (!ws.length) return [h('h3', { class: 'sub' }, 'Witnesses'), empty('No witnesses configured: checkpoints are signed by this deployment alone.')];
    const short = isNum(it.cosignatures) && isNum(it.witness_quorum) && it.cosignatures < it.witness_quorum;
    return [
      h('h3', { class: 'sub' }, 'Witnesses'),
      h('p', { class: short ? 'warn-t' : 'muted' }, 'Latest checkpoint cosigned by ', num('integrity.cosignatures', it.cosignatures),
        ' of ', num('integrity.witness_quorum', it.witness_quorum), ' required'),
      h('table', { class: 'data witnesses' },
        h('caption', { class: 'vh' }, 'Witnesses: last cosigned size, refusals and failures'),
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Witness'), h('th', { scope: 'col' }, 'State'),
          h('th', { scope: 'col', class: 'r' }, 'Cosigned size'), h('th', { scope: 'col', class: 'r' }, 'Refusals'),
          h('th', { scope: 'col', class: 'r' }, 'Failures'), h('th', { scope: 'col' }, 'Last error'))),
        h('tbody', null, ws.map((w) => {
          const st = w.alarm ? ['bad-t', '✗ refused'] : w.last_error ? ['warn-t', w.resting ? 'down (resting)' : 'down'] : ['ok-t', '✓ cosigning'];
          return h('tr', { 'data-witness': w.name },
            h('th', { scope: 'row' }, h('code', { title: w.url || '' }, w.name)),
            h('td', null, h('span', { class: st[0] }, st[1])),
            h('td', { class: 'r' }, num(`integrity.witnesses.${w.name}.cosigned_size`, w.cosigned_size)),
            h('td', { class: 'r' }, num(`integrity.witnesses.${w.name}.refusals`, w.refusals)),
            h('td', { class: 'r' }, num(`integrity.witnesses.${w.name}.failures`, w.failures)),
            h('td', null, w.last_error ? h('span', { class: 'muted' }, String(w.last_error)) : '—'));
        })))];
  }

  function render(d) {
    state.data = d;
    renderHeader(d); renderKpis(d); renderQueue(d); renderTurnaround(d); renderNotifications(d);
    renderDecisions(d); renderDepartures(d); renderMissed(d); renderSystem(d);
    document.body.dataset.loaded = String(d.position);
  }

  // ---------- fetching ----------
  function coalesced(fn) {
    let inflight = false, pending = false;
    return async function run() {
      if (inflight) { pending = true; return; }
      inflight = true;
      try { do { pending = false; await fn(); } while (pending); } finally { inflight = false; }
    };
  }
  async function getJSON(url, headers) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 20000);
    try {
      const res = await fetch(url, { headers: { Accept: 'application/json', ...headers }, cache: 'no-store', signal: ctl.signal });
      const text = await res.text();
      let body = null;
      try { body = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
      if (!res.ok) {
        const err = new Error((body && body.message) || text.slice(0, 200) || res.statusText || 'request failed');
        err.status = res.status; err.code = (body && body.code) || `http_${res.status}`;
        throw err;
      }
      if (body == null) throw Object.assign(new Error('the server answered with something that is not JSON'), { code: 'bad_response' });
      return body;
    } catch (e) {
      if (e.name === 'AbortError') throw Object.assign(new Error('no answer within 20 s'), { code: 'timeout' });
      if (!e.code) e.code = 'network';
      throw e;
    } finally { clearTimeout(timer); }
  }
  const overviewQuery = () => { const p = new URLSearchParams(); if (state.office) p.set('office', state.office); p.set('window', state.window); return p.toString(); };
  const overdueQuery = () => (state.office ? `?office=${encodeURIComponent(state.office)}` : '');

  function alertBox(e, prefix) {
    return h('div', { class: 'alert', role: 'alert' },
      h('strong', null, prefix ? `${prefix}: ` : ''), h('code', null, e.code || 'error'),
      e.status ? h('span', { class: 'muted' }, ` (HTTP ${e.status})`) : null, ' ', e.message);
  }

  const refreshOverview = coalesced(async () => {
    const q = overviewQuery();
    try {
      const d = await getJSON(`${API}overview?${q}`);
      if (q !== overviewQuery()) return; // filters changed meanwhile; the pending run fetches them
      fill($('alert'));
      render(d);
      state.lastOk = Date.now();
      setUpdated();
    } catch (e) {
      fill($('alert'), alertBox(e, 'Overview not updated'));
      setUpdated();
    }
  });

  const refreshOverdue = coalesced(async () => {
    const box = $('p-overdue');
    const n = $('overdue-n');
    if (!state.actor) {
      n.textContent = '';
      box.replaceChildren(h('p', { class: 'notice' }, 'Drill-down needs a role that may see individual reviews (auditor, field office director, supervisor, first-tier reviewer, senior reviewing official). Paste a signed actor token (docket token issue) under “Actor token”.'));
      return;
    }
    const actor = state.actor, q = overdueQuery();
    try {
      const d = await getJSON(`${API}overdue${q}`, { 'Docket-Actor': actor });
      if (actor !== state.actor || q !== overdueQuery()) return;
      renderOverdue(d);
    } catch (e) {
      if (actor !== state.actor || q !== overdueQuery()) return;
      n.textContent = '';
      const hint = e.status === 401 || e.status === 403 || e.code === 'missing_actor' || e.code === 'forbidden' || e.code === 'bad_actor'
        ? h('p', { class: 'notice' }, 'Drill-down needs a role that may see individual reviews (auditor, field office director, …).') : null;
      box.replaceChildren(alertBox(e, 'Drill-down refused'), hint);
    }
  });

  function renderOverdue(d) {
    const rows = (Array.isArray(d.reviews) ? d.reviews : []).filter(Boolean);
    $('overdue-n').textContent = `(${rows.length})`;
    const table = h('table', { class: 'data overdue', 'data-overdue-count': rows.length },
      h('caption', { class: 'cap' }, `Open reviews past a deadline, oldest first${state.office ? ` · office ${state.office}` : ''} · position `, num('overdue.position', d.position)),
      h('thead', null, h('tr', null, ['Review', 'A-number', 'Office', 'Tier', 'Stage', 'Deadline', 'Due (UTC)', 'Hours overdue', 'Prioritised']
        .map((c, i) => h('th', { scope: 'col', class: i === 7 ? 'r' : null }, c)))),
      h('tbody', null, rows.length ? rows.map((r) => h('tr', { class: r.prioritised ? 'prio' : null },
        h('td', null, h('code', { title: r.review }, String(r.review || '').slice(0, 8))),
        h('td', null, h('code', null, r.a_number || '—')),
        h('td', null, r.office || '—'),
        h('td', null, label(r.tier || '—')),
        h('td', null, label(r.stage || '—')),
        h('td', null, label(r.deadline || '—')),
        h('td', null, h('time', { datetime: r.due }, utc(r.due))),
        h('td', { class: 'r' }, num(`overdue.reviews.${r.review}.overdue_hours`, r.overdue_hours, 'n ' + (r.overdue_hours > 72 ? 'bad-t' : 'warn-t'))),
        h('td', null, r.prioritised ? h('span', { class: 'pill' }, 'prioritised') : h('span', { class: 'muted' }, 'no'))))
        : h('tr', null, h('td', { colspan: 9, class: 'empty' }, 'No open review is past a deadline.'))));
    fill($('p-overdue'), h('div', { class: 'scroll' }, table));
  }

  const refreshAll = () => { refreshOverview(); refreshOverdue(); };

  // ---------- live updates ----------
  function setUpdated() {
    const el = $('updated');
    el.textContent = state.lastOk ? `updated ${hhmmss(new Date(state.lastOk))}` : 'not yet loaded';
    el.classList.toggle('stale', !!state.lastOk && Date.now() - state.lastOk > 60000);
  }
  function setLive(on, text) {
    state.live = on;
    const el = $('live');
    el.dataset.state = on ? 'live' : 'reconnecting';
    el.querySelector('.live-text').textContent = text || (on ? 'live' : 'reconnecting…');
  }
  let es = null, lastEvent = 0, retry = 1000, everOpen = false;
  function connect() {
    if (es) es.close();
    try { es = new EventSource(`${API}stream`); } catch (_) { setLive(false); setTimeout(connect, retry); return; }
    const mine = es;
    mine.addEventListener('open', () => {
      if (mine !== es) return;
      lastEvent = Date.now(); retry = 1000; setLive(true);
      if (everOpen) refreshAll(); // catch up after a reconnect
      everOpen = true;
    });
    mine.addEventListener('update', () => {
      if (mine !== es) return;
      lastEvent = Date.now(); setLive(true); refreshAll();
    });
    mine.addEventListener('error', () => {
      if (mine !== es) return;
      setLive(false);
      if (mine.readyState === EventSource.CLOSED) { setTimeout(connect, retry); retry = Math.min(retry * 2, 30000); }
    });
  }
  setInterval(() => {
    setUpdated();
    // the server sends an update at least every 15 s; silence for 45 s means a dead stream
    if (state.live && Date.now() - lastEvent > 45000) { setLive(false, 'reconnecting… (stream silent)'); connect(); }
  }, 5000);

  // ---------- filters, URL, actor ----------
  function readUrl() {
    const p = new URLSearchParams(location.search);
    const o = (p.get('office') || '').toUpperCase();
    state.office = OFFICES.includes(o) ? o : '';
    const w = (p.get('window') || 'all').toLowerCase();
    state.window = WINDOWS.includes(w) ? w : 'all';
    let stored = '';
    try { stored = localStorage.getItem(ACTOR_KEY) || ''; } catch (_) { /* storage unavailable */ }
    state.actor = (p.get('actor') || stored).trim();
  }
  function writeUrl() {
    const p = new URLSearchParams(location.search);
    if (state.office) p.set('office', state.office); else p.delete('office');
    p.set('window', state.window);
    const qs = p.toString();
    history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}${location.hash}`);
  }
  function setFilter(ch) {
    if ('office' in ch) state.office = ch.office;
    if ('window' in ch) state.window = ch.window;
    $('f-office').value = state.office;
    $('f-window').value = state.window;
    writeUrl();
    if (state.data) renderDecisions(state.data); // selection highlight
    refreshAll();
  }
  function setActor(v, persist) {
    state.actor = v.trim();
    $('actor').value = state.actor;
    if (persist) {
      try { if (state.actor) localStorage.setItem(ACTOR_KEY, state.actor); else localStorage.removeItem(ACTOR_KEY); } catch (_) { /* ignore */ }
    }
    refreshOverdue();
  }

  function init() {
    const sel = $('f-office');
    for (const o of OFFICES) sel.append(h('option', { value: o }, o));
    readUrl();
    sel.value = state.office;
    $('f-window').value = state.window;
    $('actor').value = state.actor;
    sel.addEventListener('change', () => setFilter({ office: sel.value }));
    $('f-window').addEventListener('change', (e) => setFilter({ window: e.target.value }));
    $('actor-form').addEventListener('submit', (e) => { e.preventDefault(); setActor($('actor').value, true); });
    $('actor-clear').addEventListener('click', () => setActor('', true));
    setLive(false, 'connecting…');
    refreshAll();
    if ('EventSource' in window) connect(); else setLive(false, 'no live updates in this browser');
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
