/**
 * An ISO time in local date and time with the zone's name, e.g. `2026-12-03 15:24:25 GMT+1`; the API's
 * times are UTC and a bare `15:24` would not say so. The page embeds this very function (browser zone);
 * `timeZone` is for tests.
 */
export function localTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const format = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  });
  const part: Record<string, string> = {};
  for (const p of format.formatToParts(date)) part[p.type] = p.value;
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second} ${part.timeZoneName}`;
}

/** The dashboard: one static page (vanilla JS, no build step) that reads the REST API and the SSE stream. */
export const dashboardHtml = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Clarion reporter</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1b1f24; background: #f6f7f9; }
  body { margin: 0; padding: 12px; max-width: 960px; margin-inline: auto; }
  h1 { font-size: 1.3rem; margin: 0 0 12px; } h2 { font-size: 1.1rem; margin: 16px 0 8px; }
  a { color: #0a58ca; } button { font: inherit; padding: 6px 12px; border-radius: 6px; border: 1px solid #999; background: #fff; cursor: pointer; }
  button.danger { border-color: #b02a37; color: #b02a37; }
  .card { background: #fff; border-radius: 8px; padding: 12px; margin-bottom: 12px; box-shadow: 0 1px 2px #0002; overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; font-size: .9rem; } th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eee; }
  .bar { display: flex; height: 22px; border-radius: 4px; overflow: hidden; background: #e9ecef; }
  .bar span { display: block; height: 100%; transition: width .3s; }
  .legend { display: flex; flex-wrap: wrap; gap: 6px 14px; margin-top: 8px; font-size: .85rem; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
  .kv { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 8px; font-size: .9rem; }
  .kv b { display: block; font-size: 1.1rem; }
  .muted { color: #6c757d; } .err { color: #b02a37; }
  .actions { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; }
  svg { width: 100%; height: 160px; background: #fbfbfc; border-radius: 4px; }
  button:disabled { opacity: .45; cursor: default; }
  .who small, td small { display: block; color: #6c757d; }
  td.num, th.num { text-align: right; }
</style>
</head>
<body>
<h1><a href="#" id="home">Clarion</a> <span class="muted">reporter</span></h1>
<div id="login" class="card" hidden>
  <form id="login-form"><label>API token <input id="token-input" type="password" autocomplete="current-password" required></label> <button>Open</button></form>
</div>
<div id="message" class="err"></div>
<div id="list" class="card" hidden>
  <h2>Broadcasts</h2>
  <table><thead><tr><th>Name</th><th>Status</th><th>Progress</th><th>Created (local time)</th></tr></thead><tbody id="list-body"></tbody></table>
</div>
<div id="detail" hidden>
  <div class="card">
    <h2 id="b-name"></h2>
    <div class="kv">
      <div>Status<b id="b-status" data-testid="status"></b></div>
      <div>Final / audience<b><span id="b-final" data-testid="final">0</span> / <span id="b-audience" data-testid="audience">?</span></b></div>
      <div>Calls/min<b id="b-cpm">–</b></div>
      <div>Answer rate<b id="b-answer">–</b></div>
      <div>Confirmed<b id="b-confirm">–</b></div>
      <div>ETA<b id="b-eta">–</b></div>
      <div>Started<b id="b-started" data-testid="started">–</b></div>
    </div>
    <p id="b-note" class="muted" data-testid="note"></p>
    <p class="bar" id="bar" data-testid="bar"></p>
    <div class="legend" id="legend" data-testid="counts"></div>
    <div class="actions">
      <button data-action="pause">Pause</button><button data-action="resume">Resume</button><button data-action="cancel" class="danger">Cancel</button>
      <a id="export-contacts">Export contacts (CSV)</a> <a id="export-attempts">Export attempts (CSV)</a>
    </div>
    <div id="control-result" class="muted"></div>
  </div>
  <div class="card"><h2>Calls and outcomes over time</h2><svg id="chart" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label="calls and outcomes over time"></svg>
    <div class="legend"><span><i style="background:#0d6efd"></i>calls placed</span><span><i style="background:#198754"></i>reached</span><span><i style="background:#6c757d"></i>final</span></div></div>
  <div class="card"><h2>Not confirmed yet <span id="pending-total" class="muted"></span></h2><table><thead><tr><th>Person</th><th>State</th><th class="num">Calls</th></tr></thead><tbody id="pending-body"></tbody></table></div>
</div>
<script>
(() => {
  const COLORS = { acknowledged: '#146c43', answered: '#20c997', voicemail: '#6f42c1', busy: '#fd7e14', no_answer: '#ffc107', rejected: '#dc3545', failed: '#b02a37', invalid_number: '#842029', unknown: '#adb5bd', suppressed: '#495057', duplicate: '#6c757d', expired: '#343a40', cancelled: '#212529', outside_window: '#8d6e63', queued: '#dee2e6', calling: '#0d6efd', waiting_retry: '#9ec5fe' };
  const ORDER = Object.keys(COLORS);
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const label = (state) => String(state).replaceAll('_', ' ');
  const TERMINAL = new Set(['completed', 'cancelled']); // halted can be resumed
  function duration(sec) { if (sec < 60) return sec + ' s'; const m = Math.floor(sec / 60); return m < 60 ? m + ' min ' + (sec % 60) + ' s' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min'; }
  const localTime = ${localTime.toString()};
  const params = () => new URLSearchParams(location.hash.slice(1));
  let token = params().get('token') || localStorage.getItem('clarion.token') || '';
  if (params().get('token')) { localStorage.setItem('clarion.token', token); const p = params(); p.delete('token'); history.replaceState(null, '', '#' + p); }
  let source = null, pendingTimer = null;

  async function api(path, init = {}) {
    const res = await fetch(path, { ...init, headers: { ...(init.headers || {}), authorization: 'Bearer ' + token, 'content-type': 'application/json' } });
    const body = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text();
    if (res.status === 401) { localStorage.removeItem('clarion.token'); token = ''; route(); throw new Error('token rejected'); }
    if (!res.ok) throw new Error(body?.error?.message || res.statusText);
    return body;
  }
  function show(which) { for (const id of ['login', 'list', 'detail']) $(id).hidden = id !== which; }
  function bar(counts, total) {
    const parts = ORDER.filter((s) => counts[s] > 0).concat(Object.keys(counts).filter((s) => !ORDER.includes(s)));
    return parts.map((s) => '<span title="' + esc(label(s)) + ': ' + counts[s] + '" data-state="' + esc(s) + '" style="width:' + (100 * counts[s] / Math.max(total, 1)) + '%;background:' + (COLORS[s] || '#999') + '"></span>').join('');
  }
  async function showList() {
    show('list');
    try {
      const page = await api('/v1/broadcasts?limit=50');
      $('list-body').innerHTML = page.items.map((b) => '<tr><td><a href="#b=' + encodeURIComponent(b.id) + '">' + esc(b.name || b.id) + '</a></td><td>' + esc(b.status) + '</td><td><div class="bar" style="height:10px">' + bar(b.counts, b.audience ?? b.final + b.pending) + '</div>' + b.final + ' / ' + (b.audience ?? '?') + '</td><td>' + esc(localTime(b.timings.createdAt)) + '</td></tr>').join('') || '<tr><td colspan="4" class="muted">No broadcasts yet</td></tr>';
    } catch (e) { $('message').textContent = e.message; }
  }
  function pct(x) { return x == null ? '–' : Math.round(x * 100) + '%'; }
  function render(s) {
    $('b-name').textContent = s.name || s.id;
    $('b-status').textContent = s.status;
    $('b-final').textContent = s.final;
    $('b-audience').textContent = s.audience ?? '?';
    $('b-cpm').textContent = s.rates.callsPerMinute == null ? '–' : Math.round(s.rates.callsPerMinute);
    $('b-answer').textContent = pct(s.rates.answerRate);
    // A broadcast that asks nobody to confirm has no confirmation rate (not 0 %).
    $('b-confirm').textContent = s.acknowledgement === false ? 'n/a' : pct(s.rates.confirmationRate);
    $('b-eta').textContent = s.done ? 'done' : s.etaSeconds == null ? '–' : duration(s.etaSeconds);
    $('b-eta').title = s.eta && !s.done ? localTime(s.eta) : '';
    $('b-started').textContent = localTime(s.timings.firstCallAt) || '–';
    const notes = [];
    if (s.reason) notes.push(s.status + ': ' + s.reason);
    // Cancelled or expired: nobody more is called; the dialer closes each waiting contact when its retry comes due.
    const closing = s.status === 'cancelled' ? ' as cancelled' : (s.lifecycle || []).some((e) => e.type === 'expired') ? ' (the broadcast expired)' : null;
    if (s.retries && s.retries.waiting > 0 && closing !== null) notes.push(s.retries.waiting + (s.retries.waiting === 1 ? ' contact' : ' contacts') + ' waiting to be closed' + closing);
    else if (s.retries && s.retries.waiting > 0) notes.push('waiting for ' + s.retries.waiting + (s.retries.waiting === 1 ? ' retry' : ' retries') + (s.retries.nextAt ? (Date.parse(s.retries.nextAt) <= Date.now() ? ', due now' : ', next at ' + localTime(s.retries.nextAt)) : ''));
    $('b-note').textContent = notes.join(' · ');
    // Controls only where they can act: nothing after the end, pause or resume depending on the state.
    for (const b of document.querySelectorAll('[data-action]')) {
      b.disabled = TERMINAL.has(s.status) || (b.dataset.action === 'pause' && s.status === 'paused') || (b.dataset.action === 'resume' && s.status !== 'paused');
    }
    const notConfirmed = (s.audience ?? s.final + s.pending) - (s.counts.acknowledged ?? 0);
    $('pending-total').textContent = '(' + notConfirmed + ')';
    $('bar').innerHTML = bar(s.counts, s.audience ?? s.final + s.pending);
    $('legend').innerHTML = Object.entries(s.counts).sort((a, b) => ORDER.indexOf(a[0]) - ORDER.indexOf(b[0])).map(([k, v]) => '<span data-state="' + esc(k) + '"><i style="background:' + (COLORS[k] || '#999') + '"></i>' + esc(label(k)) + ' <b class="n">' + v + '</b></span>').join('');
  }
  const REACHED = new Set(['acknowledged', 'answered', 'voicemail']);
  async function loadTimeline(id) {
    try {
      const tl = await api('/v1/broadcasts/' + encodeURIComponent(id) + '/timeline');
      const when = (t) => Date.parse(t + (tl.bucket === 'minute' ? ':00Z' : 'Z'));
      const times = [...new Set(tl.calls.map((c) => c.t).concat(tl.outcomes.map((o) => o.t)))].sort();
      if (times.length === 0) { $('chart').innerHTML = ''; return; }
      let calls = 0, reached = 0, final = 0;
      const points = [{ x: when(times[0]) - (tl.bucket === 'minute' ? 60000 : 1000), calls: 0, reached: 0, final: 0 }];
      for (const t of times) {
        for (const c of tl.calls) if (c.t === t) calls += c.n;
        for (const o of tl.outcomes) if (o.t === t) { final += o.n; if (REACHED.has(o.state)) reached += o.n; }
        points.push({ x: when(t), calls, reached, final });
      }
      const x0 = points[0].x, x1 = Math.max(points[points.length - 1].x, x0 + 1000);
      const maxY = Math.max(calls, final, 1);
      const X = (p) => ((p.x - x0) / (x1 - x0) * 600).toFixed(1), Y = (v) => (155 - v / maxY * 150).toFixed(1);
      // Step lines: a cumulative count jumps at its bucket and stays flat until the next one.
      const line = (key, color) => '<polyline fill="none" stroke-width="2" stroke="' + color + '" points="' + points.map((p, i) => (i > 0 ? X(p) + ',' + Y(points[i - 1][key]) + ' ' : '') + X(p) + ',' + Y(p[key])).join(' ') + '"/>';
      $('chart').innerHTML = line('calls', '#0d6efd') + line('reached', '#198754') + line('final', '#6c757d');
    } catch (e) { $('message').textContent = e.message; }
  }
  async function loadPending(id) {
    try {
      const page = await api('/v1/broadcasts/' + encodeURIComponent(id) + '/contacts?notState=acknowledged&limit=50');
      $('pending-body').innerHTML = page.items.map((c) => '<tr><td class="who">' + (c.name ? esc(c.name) + '<small>' + esc(c.number) + '</small>' : esc(c.number || c.id)) + '</td><td>' + esc(label(c.state)) + (c.retryAt ? '<small>due ' + esc(localTime(c.retryAt)) + '</small>' : '') + '</td><td class="num">' + c.attempts + '</td></tr>').join('') || '<tr><td colspan="3" class="muted">Everyone confirmed</td></tr>';
    } catch (e) { $('message').textContent = e.message; }
  }
  function showBroadcast(id) {
    show('detail');
    const q = '?token=' + encodeURIComponent(token);
    $('export-contacts').href = '/v1/broadcasts/' + encodeURIComponent(id) + '/export.csv' + q + '&type=contacts';
    $('export-attempts').href = '/v1/broadcasts/' + encodeURIComponent(id) + '/export.csv' + q + '&type=attempts';
    api('/v1/broadcasts/' + encodeURIComponent(id)).then(render).catch((e) => { $('message').textContent = e.message; });
    loadPending(id);
    loadTimeline(id);
    source = new EventSource('/v1/broadcasts/' + encodeURIComponent(id) + '/stream' + q);
    const onData = (ev) => {
      render(JSON.parse(ev.data));
      if (!pendingTimer) pendingTimer = setTimeout(() => { pendingTimer = null; loadPending(id); loadTimeline(id); }, 2000);
    };
    source.addEventListener('summary', onData);
    source.addEventListener('final', (ev) => { onData(ev); source.close(); document.body.dataset.final = 'true'; loadPending(id); loadTimeline(id); });
    source.addEventListener('error', () => { if (source && source.readyState === 2) $('message').textContent = 'live updates stopped'; });
  }
  function route() {
    if (source) { source.close(); source = null; }
    $('message').textContent = '';
    delete document.body.dataset.final;
    if (!token) return show('login');
    const id = params().get('b');
    if (id) showBroadcast(id); else showList();
  }
  for (const button of document.querySelectorAll('[data-action]')) {
    button.addEventListener('click', async () => {
      const id = params().get('b'), action = button.dataset.action;
      if (action === 'cancel' && !confirm('Cancel this broadcast? Nobody more will be called.')) return;
      try { const r = await api('/v1/broadcasts/' + encodeURIComponent(id) + '/' + action, { method: 'POST', body: '{}' }); $('control-result').textContent = action + ': ' + JSON.stringify(r.state ?? r); }
      catch (e) { $('control-result').textContent = action + ' failed: ' + e.message; }
    });
  }
  $('login-form').addEventListener('submit', (ev) => { ev.preventDefault(); token = $('token-input').value.trim(); localStorage.setItem('clarion.token', token); route(); });
  $('home').addEventListener('click', (ev) => { ev.preventDefault(); location.hash = ''; });
  window.addEventListener('hashchange', route);
  route();
})();
</script>
</body>
</html>
`;
