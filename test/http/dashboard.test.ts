// The dashboard in a real browser: Debian's Chromium driven by playwright-core against the real server.
// Issue 4: open the dashboard, enqueue a task, watch its output and progress arrive, cancel it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { waitFor } from '../helpers/wait-for.ts';
import { startHarness, type Harness } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install -y chromium)`;
if (skip) console.log(`# skipping the dashboard browser tests: ${skip}`);

async function openBrowser(): Promise<{ context: BrowserContext; dir: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'troupe-chromium-'));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 } });
  return { context, dir };
}

describe('dashboard (real browser)', { skip }, () => {
  let h: Harness;
  let context: BrowserContext;
  let dir: string;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    h = await startHarness();
    ({ context, dir } = await openBrowser());
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  });

  after(async () => {
    await context?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    await h?.close();
  });

  it('enqueues a command, shows its live output and progress, and cancels it', async () => {
    await page.goto(h.url);
    await page.locator('#enqueue-name option[value="gated"]').waitFor({ state: 'attached' });
    await page.selectOption('#enqueue-name', 'gated');
    await page.fill('#enqueue-input', '{"lines": 3, "gate": "browser"}');
    await page.click('#enqueue-submit');

    // Lines and progress arrive while the command waits for its gate (it never opens: we cancel).
    await page.locator('#detail-output .line', { hasText: 'line 3' }).waitFor();
    assert.deepEqual(await page.locator('#detail-output .line').allTextContents(), ['line 1\n', 'line 2\n', 'line 3\n']);
    await page.locator('#detail-progress[aria-valuenow="75"]').waitFor();
    assert.equal(await page.getAttribute('#detail-state', 'data-state'), 'running');
    const id = (await page.textContent('#detail-id'))!;
    assert.equal((await h.rt.get(id))?.state, 'running');

    // The table got the new task from the live event stream.
    await page.locator(`#task-rows tr[data-id="${id}"]`).waitFor();
    await page.screenshot({ path: '/tmp/troupe-dashboard.png', fullPage: true });

    await page.click('#detail-cancel');
    await page.locator('#detail-outcome[data-state="cancelled"]').waitFor();
    await page.locator('#detail-state[data-state="cancelled"]').waitFor();
    assert.equal((await h.rt.get(id))?.state, 'cancelled');
    await page.locator(`#task-rows tr[data-id="${id}"] .badge.s-cancelled`).waitFor();
    assert.deepEqual(errors, []);
  });

  it('shows the counts, the supervision tree and the health report', async () => {
    await page.goto(h.url);
    await page.locator('#counts .n[data-state="cancelled"]', { hasText: '1' }).waitFor();
    await page.locator('#tree .actor', { hasText: 'executor' }).waitFor();
    await page.locator('#health table').waitFor();
    assert.match((await page.textContent('#health-pill')) ?? '', /ok|stalled/);
  });

  it('keeps the counts current while events keep coming', async () => {
    await page.goto(h.url);
    const succeeded = page.locator('#counts .n[data-state="succeeded"]');
    await succeeded.waitFor();
    const before = Number(await succeeded.textContent());
    // A task every 25 ms, each with three facts: never a 400 ms pause, which is what a debounced refresh waited for.
    let streaming = true;
    const producer = (async () => {
      const until = Date.now() + 20_000;
      while (streaming && Date.now() < until) {
        await h.rt.enqueue('echo', null);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      streaming = false;
    })();
    try {
      await waitFor(async () => Number(await succeeded.textContent()) >= before + 20, { timeout: 15_000, label: 'the succeeded count on the page' });
      assert.equal(streaming, true, 'the counts moved while the tasks still streamed in');
    } finally {
      streaming = false;
      await producer;
    }
    assert.deepEqual(errors, []);
  });
});

describe('dashboard with a token (real browser)', { skip }, () => {
  const token = 'dashboard-token-0123456789abcdef';
  let h: Harness;
  let context: BrowserContext;
  let dir: string;

  before(async () => {
    h = await startHarness({ server: { token } });
    ({ context, dir } = await openBrowser());
  });

  after(async () => {
    await context?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    await h?.close();
  });

  it('loads the page without the token, asks for it on 401, then works', async () => {
    const page = await context.newPage();
    await page.goto(h.url);
    await page.locator('#token-form:not([hidden])').waitFor();
    await page.fill('#token-input', token);
    await page.click('#token-form button[type="submit"]');
    await page.locator('#enqueue-name option[value="echo"]').waitFor({ state: 'attached' });
    await page.locator('#tree .actor', { hasText: 'tracker' }).waitFor();
  });
});

describe('dashboard task table (real browser)', { skip }, () => {
  let h: Harness;
  let context: BrowserContext;
  let dir: string;
  let page: Page;

  before(async () => {
    h = await startHarness();
    ({ context, dir } = await openBrowser());
    page = await context.newPage();
  });

  after(async () => {
    await context?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    await h?.close();
  });

  // QA finding 2: the cell showed id.slice(-12), the per-process tag, the same for every task of one server.
  it('shows an id cell that tells tasks of one server apart, on one line', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await h.request('POST', '/api/tasks', { body: { name: 'echo', input: i } })).body.id);
    await page.goto(h.url);
    const cells: string[] = [];
    for (const id of ids) {
      const cell = page.locator(`#task-rows tr[data-id="${id}"] td:nth-child(3)`);
      await cell.waitFor();
      const text = (await cell.textContent())!;
      assert.ok(text.includes(id.slice(0, 16)), `${text} shows the time and counter of ${id}`);
      cells.push(text);
      // Legible: the id does not wrap (one line of the 12px monospace font).
      const box = (await cell.locator('span').first().boundingBox())!;
      assert.ok(box.height < 24, `id cell is one line (height ${box.height})`);
    }
    assert.equal(new Set(cells).size, ids.length, `distinct id cells: ${cells.join(', ')}`);
  });

  // QA finding 7: under a state filter, a task that left the state stayed in the table with its new badge.
  it('keeps a state-filtered table to that state as tasks change state live', async () => {
    await page.goto(h.url);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    await page.locator('#task-rows tr[data-id]').first().waitFor();
    await page.selectOption('#filter-state', 'running');
    await page.locator('#task-rows td', { hasText: 'No tasks match.' }).waitFor();

    const id = (await h.request('POST', '/api/tasks', { body: { name: 'gated', input: { lines: 1, gate: 'filter' } } })).body.id as string;
    await page.locator(`#task-rows tr[data-id="${id}"] .badge.s-running`).waitFor();
    await h.openGate('filter');
    await waitFor(async () => (await h.rt.get(id))?.state === 'succeeded', { timeout: 5000, label: 'gated task succeeded' });
    await page.locator(`#task-rows tr[data-id="${id}"]`).waitFor({ state: 'detached' });
    await page.locator('#task-rows td', { hasText: 'No tasks match.' }).waitFor();
    assert.equal(await page.inputValue('#filter-state'), 'running');
    assert.equal(await page.locator('#task-rows tr[data-id]').count(), 0);
  });
  // QA: a selected task that had ended and was then retried by another client kept showing its old end (state,
  // outcome, history, a Retry button that answered 409): the panel now follows the new run.
  it('follows the selected task again when another client retries it after it ended', async () => {
    await page.goto(h.url);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    const id = (await h.request('POST', '/api/tasks', { body: { name: 'gated', input: { lines: 1, gate: 'retried' } } })).body.id as string;
    await page.locator(`#task-rows tr[data-id="${id}"]`).click();
    await page.locator('#detail-output .line', { hasText: 'line 1' }).waitFor();
    assert.equal((await h.request('POST', `/api/tasks/${id}/cancel`)).body.cancelled, true);
    await page.locator('#detail-outcome[data-state="cancelled"]').waitFor();
    await page.locator('#detail-retry').waitFor({ state: 'visible' });

    assert.equal((await h.request('POST', `/api/tasks/${id}/retry`)).status, 200);
    await page.locator('#detail-state[data-state="running"]').waitFor({ timeout: 10_000 });
    assert.equal(await page.isVisible('#detail-outcome'), false);
    await h.openGate('retried');
    await page.locator('#detail-outcome[data-state="succeeded"]').waitFor({ timeout: 10_000 });
    await page.locator('#detail-retry').waitFor({ state: 'hidden' });
    assert.match((await page.textContent('#detail-history')) ?? '', /cancelled → .*queued/s);
    assert.equal(await page.textContent('#detail-id'), id);
  });
});
