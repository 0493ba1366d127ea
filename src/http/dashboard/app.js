// troupe dashboard: a small vanilla app over the HTTP API (fetch + server-sent events, no framework, no build).
// The HTTP side (requests, the token, event streams) is in api.js.

import { api, readSse, setToken, setUnauthorizedHandler } from './api.js';

const STATES = ['scheduled', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled', 'timed_out'];
const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);
const DEAD = new Set(['failed', 'cancelled', 'timed_out']);
const MAX_OUTPUT_LINES = 5000;

const $ = (id) => document.getElementById(id);

/** Builds an element; children are nodes or text (never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') el.style.cssText = v; // CSSOM, allowed by the page's CSP (a style attribute is not)
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '—');
const fmtDuration = (ms) => (ms === undefined ? '—' : ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`);
const badge = (state) => h('span', { class: `badge s-${state}` }, state.replace('_', ' '));

// ── errors and the token ─────────────────────────────────────────────────────────────────────────────────

function showError(error) {
  const box = $('error');
  if (!error) {
    box.hidden = true;
    return;
  }
  if (error.status === 401) return;
  box.textContent = error.code ? `${error.code}: ${error.message}` : String(error.message ?? error);
  box.hidden = false;
}

function askForToken() {
  $('token-form').hidden = false;
  $('token-input').focus();
}

// ── state ────────────────────────────────────────────────────────────────────────────────────────────────

const state = {
  tasks: new Map(),
  order: [],
  nextCursor: undefined,
  selected: undefined,
  detailAbort: undefined,
  lastSeq: undefined,
  taskTypes: [],
};

/**
 * Runs `load` soon after a call, at most one at a time, and each run at least `ms` (or ten times the last run's
 * duration, if longer) after the one before started. Why not a debounce: under a steady stream of events a debounce
 * never fires; and the time a read takes is what it costs the server (counting every state on PostgreSQL reads the
 * whole table), so a slow read is repeated at most a tenth of the time.
 */
function throttle(load, ms) {
  let timer;
  let running = false;
  let again = false;
  let lastStart = -Infinity;
  let lastMs = 0;
  const run = async () => {
    timer = undefined;
    running = true;
    lastStart = performance.now();
    try {
      await load();
    } finally {
      lastMs = performance.now() - lastStart;
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (running) {
      again = true;
      return;
    }
    if (timer !== undefined) return;
    const gap = Math.max(ms, 10 * lastMs);
    timer = setTimeout(run, Math.max(ms, lastStart + gap - performance.now()));
  };
  return schedule;
}

// ── counts ───────────────────────────────────────────────────────────────────────────────────────────────

async function loadCounts() {
  const q = await api('GET', '/api/queues');
  const box = $('counts');
  box.replaceChildren(
    ...STATES.map((s) =>
      h('button', { class: `count s-${s}`, type: 'button', title: `Show ${s} tasks`, onclick: () => { $('filter-state').value = s; loadTasks(); } },
        h('span', { class: 'n', dataset: { state: s } }, String(q.totals[s] ?? 0)), h('span', { class: 'k' }, s.replace('_', ' '))),
    ),
  );
  renderQueues(q.queues);
}

// ── task list ────────────────────────────────────────────────────────────────────────────────────────────

function listQuery(cursor) {
  const p = new URLSearchParams({ limit: '50' });
  if ($('filter-state').value) p.set('state', $('filter-state').value);
  if ($('filter-name').value) p.set('name', $('filter-name').value);
  if (cursor) p.set('cursor', cursor);
  return `/api/tasks?${p}`;
}

async function loadTasks(more = false) {
  const page = await api('GET', listQuery(more ? state.nextCursor : undefined));
  if (!more) {
    state.tasks.clear();
    state.order = [];
  }
  for (const t of page.tasks) {
    if (!state.tasks.has(t.id)) state.order.push(t.id);
    state.tasks.set(t.id, t);
  }
  state.nextCursor = page.nextCursor;
  $('more-tasks').hidden = !page.nextCursor;
  renderTasks();
}

function renderTasks() {
  const rows = state.order.map((id) => {
    const t = state.tasks.get(id);
    const pct = t.progress ? Math.round(t.progress.fraction * 100) : undefined;
    return h('tr', { class: id === state.selected ? 'selected' : '', dataset: { id }, onclick: () => select(id) },
      h('td', {}, badge(t.state)),
      h('td', {}, t.name),
      idCell(id),
      h('td', {}, fmtTime(t.timings?.createdAt)),
      h('td', {}, `${t.attempts}/${t.maxAttempts}`),
      h('td', {}, pct === undefined ? '' : h('span', { class: 'mini' }, h('span', { class: 'track' }, h('span', { class: 'fill', style: `width:${pct}%` })), `${pct}%`)),
    );
  });
  $('task-rows').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No tasks match.'))]));
}

/**
 * A task id is 12 hex digits of milliseconds, 4 of a per-millisecond counter and 12 of a per-process tag (the
 * same for every task one server made). The time+counter part is what tells tasks apart, so it leads; the tag
 * follows, muted (and dropped on narrow screens), and the whole id is the cell's tooltip.
 */
function idCell(id) {
  return h('td', { class: 'mono task-id', title: id }, h('span', { class: 'when' }, id.slice(0, 16)), h('span', { class: 'tag' }, id.slice(16)));
}

const refreshTasksSoon = throttle(() => loadTasks().catch(showError), 250);
const refreshCountsSoon = throttle(() => loadCounts().catch(showError), 400);

const STATE_OF_FACT = { 'task.queued': 'queued', 'task.scheduled': 'scheduled', 'task.started': 'running', 'task.retrying': 'retrying', 'task.succeeded': 'succeeded', 'task.failed': 'failed', 'task.cancelled': 'cancelled', 'task.timed_out': 'timed_out' };

/** Whether a task (its state and name) belongs in the table under the current filters. */
function matchesFilters(taskState, name) {
  const wanted = $('filter-state').value;
  const wantedName = $('filter-name').value;
  return (!wanted || taskState === wanted) && (!wantedName || name === wantedName);
}

/**
 * Applies a task fact from /api/events to the table and, for the selected task, to the panel. Under a state
 * filter a row leaves the table as soon as its task leaves that state, and a task that enters it is fetched
 * (the table shows only what the filters select, live, not what they selected at the last reload).
 */
function onTaskFact(type, fact) {
  refreshCountsSoon();
  const next = STATE_OF_FACT[type];
  // The selected task's stream ended with it; a retry (from another client too) starts it again: follow it anew.
  if (fact.id === state.selected && state.ended === fact.id && next && !FINAL.has(next)) select(fact.id).catch(showError);
  const t = state.tasks.get(fact.id);
  if (!t) {
    // New tasks arrive as queued/scheduled; under a state filter, any task may enter it.
    const enters = next !== undefined && matchesFilters(next, fact.name);
    if (enters && (type === 'task.queued' || type === 'task.scheduled' || $('filter-state').value)) refreshTasksSoon();
    return;
  }
  if (next) t.state = next;
  if (type === 'task.started') t.attempts = fact.attempt;
  if (type === 'task.progress') t.progress = fact.progress;
  if (!matchesFilters(t.state, t.name)) {
    state.tasks.delete(fact.id);
    state.order = state.order.filter((id) => id !== fact.id);
  }
  renderTasks();
}

// ── detail panel ─────────────────────────────────────────────────────────────────────────────────────────

async function select(id) {
  state.selected = id;
  renderTasks();
  state.detailAbort?.abort();
  const abort = new AbortController();
  state.detailAbort = abort;
  $('detail-empty').hidden = true;
  $('detail-body').hidden = false;
  $('detail-output').replaceChildren();
  $('detail-outcome').hidden = true;
  state.lastSeq = undefined;
  state.lines = 0;
  state.ended = undefined;
  const view = await api('GET', `/api/tasks/${id}`);
  if (abort.signal.aborted) return;
  renderDetail(view);
  streamOutput(id, abort);
}

function renderDetail(view) {
  state.view = view;
  $('detail-state').replaceChildren(badge(view.state));
  $('detail-state').dataset.state = view.state;
  $('detail-name').textContent = view.name;
  $('detail-id').textContent = view.id;
  $('detail-attempts').textContent = `${view.attempts} of ${view.maxAttempts}`;
  const t = view.timings ?? {};
  $('detail-timings').textContent = `created ${fmtTime(t.createdAt)} · waited ${fmtDuration(t.waitMs)} · ran ${fmtDuration(t.runMs)}${t.finishedAt ? ` · finished ${fmtTime(t.finishedAt)}` : ''}`;
  setProgress(view.progress);
  $('detail-cancel').hidden = FINAL.has(view.state);
  $('detail-retry').hidden = !DEAD.has(view.state);
  $('detail-history').replaceChildren(
    ...(view.history ?? []).map((x) => h('li', {}, h('span', { class: 'muted' }, fmtTime(x.at)), ' ', x.from ? `${x.from} → ` : '', badge(x.to), x.reason ? h('span', { class: 'muted' }, ` ${x.reason}`) : '', x.error ? h('span', { class: 'err' }, ` ${x.error.message}`) : '')),
  );
  if (FINAL.has(view.state)) showOutcome({ state: view.state, result: view.result, error: view.error });
}

function setProgress(progress) {
  const el = $('detail-progress');
  const pct = progress ? Math.round(progress.fraction * 1000) / 10 : 0;
  el.setAttribute('aria-valuenow', String(pct));
  el.querySelector('.bar').style.width = `${pct}%`;
  el.querySelector('.label').textContent = progress ? `${pct}%${progress.total ? ` (${progress.done}/${progress.total})` : ''}` : 'no progress reported';
}

function showOutcome(end) {
  const box = $('detail-outcome');
  box.hidden = false;
  box.className = `outcome s-${end.state}`;
  box.dataset.state = end.state;
  const text = end.state === 'succeeded' ? `Result: ${JSON.stringify(end.result)}` : end.error ? `${end.error.code ?? end.error.name}: ${end.error.message}` : end.state;
  box.textContent = text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

function appendLine(line) {
  const out = $('detail-output');
  const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
  const el = h('span', { class: `line ${line.stream}`, dataset: { seq: line.seq } }, line.text, '\n');
  // A line caught up after later live lines carries a lower seq: put it in its place.
  const last = out.lastElementChild;
  if (last && Number(last.dataset.seq) > line.seq) {
    const after = [...out.children].find((c) => Number(c.dataset.seq) > line.seq);
    out.insertBefore(el, after ?? null);
  } else out.append(el);
  while (out.childElementCount > MAX_OUTPUT_LINES) out.firstElementChild.remove();
  state.lines++;
  $('detail-lines').textContent = `${state.lines} line${state.lines === 1 ? '' : 's'}`;
  if (stick) out.scrollTop = out.scrollHeight;
}

async function streamOutput(id, abort) {
  let ended = false;
  for (let attempt = 0; !ended && !abort.signal.aborted && attempt < 20; attempt++) {
    try {
      await readSse(`/api/tasks/${id}/output`, (type, data, seq) => {
        if (state.selected !== id) return;
        if (type === 'output') {
          state.lastSeq = Math.max(state.lastSeq ?? 0, Number(seq));
          appendLine(data);
        } else if (type === 'progress') setProgress(data);
        else if (type === 'state') {
          $('detail-state').replaceChildren(badge(data.state));
          $('detail-state').dataset.state = data.state;
        } else if (type === 'end') {
          ended = true;
          state.ended = id;
          showOutcome(data);
          api('GET', `/api/tasks/${id}`).then((v) => state.selected === id && renderDetail(v)).catch(showError);
        }
      }, abort.signal, state.lastSeq);
    } catch (error) {
      if (abort.signal.aborted) return;
      showError(error);
    }
    if (!ended && !abort.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
  }
}

// ── enqueue ──────────────────────────────────────────────────────────────────────────────────────────────

async function loadTaskTypes() {
  const { tasks } = await api('GET', '/api/task-types');
  state.taskTypes = tasks;
  const own = tasks.filter((t) => !t.builtin);
  const builtin = tasks.filter((t) => t.builtin);
  const option = (t) => h('option', { value: t.name, title: t.description ?? '' }, t.name);
  $('enqueue-name').replaceChildren(...own.map(option), builtin.length ? h('optgroup', { label: 'maintenance' }, ...builtin.map(option)) : '');
  $('filter-name').replaceChildren(h('option', { value: '' }, 'any'), ...tasks.map(option));
}

async function enqueue(event) {
  event.preventDefault();
  const result = $('enqueue-result');
  let input;
  try {
    input = JSON.parse($('enqueue-input').value || 'null');
  } catch {
    result.textContent = 'Input is not valid JSON';
    result.className = 'err';
    return;
  }
  const body = { name: $('enqueue-name').value, input };
  if ($('enqueue-priority').value !== '') body.priority = Number($('enqueue-priority').value);
  if ($('enqueue-delay').value.trim()) body.delay = /^\d+$/.test($('enqueue-delay').value.trim()) ? Number($('enqueue-delay').value) : $('enqueue-delay').value.trim();
  if ($('enqueue-key').value.trim()) body.key = $('enqueue-key').value.trim();
  try {
    const { id } = await api('POST', '/api/tasks', body);
    result.textContent = `Enqueued ${id}`;
    result.className = 'muted';
    await loadTasks();
    await select(id);
  } catch (error) {
    result.textContent = `${error.code ?? 'error'}: ${error.message}`;
    result.className = 'err';
  }
}

// ── queues, schedules, health, tree ──────────────────────────────────────────────────────────────────────

function renderQueues(queues) {
  $('queue-rows').replaceChildren(
    ...queues.map((q) =>
      h('tr', {},
        h('td', {}, q.name, q.builtin ? h('span', { class: 'muted' }, ' (built-in)') : ''),
        h('td', {}, q.kind),
        h('td', {}, `${q.active}${q.capped ? '+' : ''}`),
        h('td', {}, q.paused ? h('span', { class: 'badge s-cancelled' }, 'paused') : h('span', { class: 'badge s-succeeded' }, 'open')),
        h('td', { class: 'row-actions' }, h('button', { type: 'button', class: 'ghost', onclick: () => act('POST', `/api/queues/${encodeURIComponent(q.name)}/${q.paused ? 'resume' : 'pause'}`, loadCounts) }, q.paused ? 'Resume' : 'Pause')),
      ),
    ),
  );
}

async function loadSchedules() {
  const { schedules } = await api('GET', '/api/schedules');
  $('schedules-empty').hidden = schedules.length > 0;
  $('schedule-rows').replaceChildren(
    ...schedules.map((s) => {
      const base = `/api/schedules/${encodeURIComponent(s.id)}`;
      return h('tr', {},
        h('td', {}, s.id),
        h('td', {}, s.task),
        h('td', { class: 'mono' }, s.cron ?? `every ${fmtDuration(s.everyMs)}`, s.paused ? h('span', { class: 'badge s-cancelled' }, 'paused') : ''),
        h('td', {}, fmtTime(s.lastSlot)),
        h('td', { class: 'row-actions' },
          h('button', { type: 'button', class: 'ghost', onclick: () => act('POST', `${base}/${s.paused ? 'resume' : 'pause'}`, loadSchedules) }, s.paused ? 'Resume' : 'Pause'),
          h('button', { type: 'button', class: 'ghost', onclick: () => act('POST', `${base}/trigger`, async (r) => { await loadTasks(); if (r?.id) await select(r.id); }) }, 'Trigger now'),
        ),
      );
    }),
  );
}

async function loadHealth(full) {
  const health = await api('GET', `/api/health${full ? '?full=1' : ''}`);
  const pill = $('health-pill');
  pill.textContent = health.status;
  pill.className = `pill h-${health.status}`;
  $('node').textContent = `${health.nodeId} · ${health.store} · up ${fmtDuration(health.uptimeMs)}`;
  if (!full) return;
  const report = health.report;
  const box = $('health');
  if (!report) {
    box.replaceChildren(h('p', { class: 'muted' }, 'No health report (maintenance tasks are off).'));
    return;
  }
  box.replaceChildren(
    h('p', {}, 'Overall ', h('span', { class: `pill h-${report.status}` }, report.status), h('span', { class: 'muted' }, ` at ${fmtTime(report.at)}`)),
    h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Reading'), h('th', {}, 'Value'), h('th', {}, 'Warn / error'), h('th', {}, 'Status'))),
      h('tbody', {}, ...Object.entries(report.checks).map(([name, c]) =>
        h('tr', {}, h('td', {}, name), h('td', {}, c.value === null ? '—' : `${Math.round(c.value * 10) / 10} ${c.unit}`), h('td', { class: 'muted' }, `${c.warning} / ${c.error}`), h('td', {}, h('span', { class: `pill h-${c.status}` }, c.status))))),
    ),
  );
}

async function loadTree() {
  const root = await api('GET', '/api/actors');
  const node = (n) =>
    h('li', {},
      h('span', { class: 'actor' }, n.address), ' ',
      h('span', { class: `badge a-${n.status}` }, n.status),
      n.restarts ? h('span', { class: 'muted' }, ` ${n.restarts} restart${n.restarts === 1 ? '' : 's'}`) : '',
      n.kind === 'task' ? h('span', { class: 'muted' }, ' task') : '',
      n.children?.length ? h('ul', {}, ...n.children.slice(0, 50).map(node)) : '',
    );
  $('tree').replaceChildren(node(root));
}

async function act(method, path, then) {
  try {
    const result = await api(method, path, {});
    showError(undefined);
    if (then) await then(result);
  } catch (error) {
    showError(error);
  }
}

// ── live events ──────────────────────────────────────────────────────────────────────────────────────────

async function followEvents() {
  for (;;) {
    try {
      $('live').textContent = 'connecting';
      await readSse('/api/events', (type, data) => {
        $('live').textContent = 'live';
        $('live').className = 'pill h-ok';
        if (type.startsWith('task.')) onTaskFact(type, data);
        else if (type.startsWith('actor.')) loadTree().catch(showError);
        else if (type === 'runtime.status' || type === 'runtime.intake') loadHealth(false).catch(showError);
      });
    } catch {
      // Reconnect below.
    }
    $('live').textContent = 'offline';
    $('live').className = 'pill muted';
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ── wiring ───────────────────────────────────────────────────────────────────────────────────────────────

async function loadAll() {
  await loadTaskTypes();
  await Promise.all([loadCounts(), loadTasks(), loadSchedules(), loadHealth(true), loadTree()]);
}

function wire() {
  $('filter-state').append(...STATES.map((s) => h('option', { value: s }, s.replace('_', ' '))));
  $('filter-state').addEventListener('change', () => loadTasks().catch(showError));
  $('filter-name').addEventListener('change', () => loadTasks().catch(showError));
  $('refresh-tasks').addEventListener('click', () => loadTasks().catch(showError));
  $('more-tasks').addEventListener('click', () => loadTasks(true).catch(showError));
  $('refresh-queues').addEventListener('click', () => loadCounts().catch(showError));
  $('refresh-schedules').addEventListener('click', () => loadSchedules().catch(showError));
  $('refresh-health').addEventListener('click', () => loadHealth(true).catch(showError));
  $('refresh-tree').addEventListener('click', () => loadTree().catch(showError));
  $('enqueue').addEventListener('submit', enqueue);
  $('detail-cancel').addEventListener('click', () => state.selected && act('POST', `/api/tasks/${state.selected}/cancel`));
  $('detail-retry').addEventListener('click', () => state.selected && act('POST', `/api/tasks/${state.selected}/retry`, () => select(state.selected)));
  $('token-button').addEventListener('click', askForToken);
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    setToken($('token-input').value.trim());
    $('token-form').hidden = true;
    loadAll().then(() => showError(undefined), showError);
  });
  for (const button of document.querySelectorAll('[data-maint]')) {
    button.addEventListener('click', () => {
      const name = button.dataset.maint;
      const hours = Number($('maint-hours').value);
      const body = name.startsWith('cleanup') ? { maxAgeHours: hours } : {};
      api('POST', `/api/system/maintenance/${name}`, body).then(async ({ id }) => { await loadTasks(); await select(id); }, showError);
    });
  }
}

setUnauthorizedHandler(askForToken);
wire();
loadAll().catch(showError);
followEvents();
setInterval(() => loadHealth(false).catch(() => {}), 15_000);
