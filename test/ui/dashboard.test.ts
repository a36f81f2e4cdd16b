/**
 * The dashboard in a real browser: Debian's Chromium driven by
 * playwright-core, against a real `hookwire start` (admin.token set) and a
 * local webhook receiver. Signs in with the token, creates a webhook hook
 * through the form (after the API's 400 shows at the URL field), creates a
 * consumer through the Gateway page (a crud event → a delivery), sees the
 * delivery and its attempt, makes the receiver fail, sees the failure,
 * retries from the page and sees it succeed. Screenshots of every page go
 * to build/ui-screenshots/.
 *
 * Waits are on elements (bounded), never sleeps.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plugin, ROOT } from '../helpers/paths.js';
import { startServer, type Server } from '../helpers/cli.js';

// The functions handed to page.evaluate / waitForFunction run in the page: its globals, typed as far as
// these tests use them (the test project has no DOM lib).
interface PageElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  readonly activeElement: PageElement | null;
  readonly documentElement: { readonly scrollWidth: number; readonly clientWidth: number };
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
};
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: { readonly length: number };

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'ui-test-token-7f3a';
const SHOTS = join(ROOT, 'build', 'ui-screenshots');
/** Longest wait for one element (the deliveries page refreshes every 3 s). */
const WAIT_MS = 15_000;

interface Received {
  url: string;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The webhook endpoint: answers 200, or 500 "receiver down" while `failing`. */
class Receiver {
  readonly received: Received[] = [];
  failing = false;
  private server: HttpServer | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ url: req.url!, body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
        if (this.failing) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('receiver down');
        } else {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('thanks');
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

let dir: string;
let receiver: Receiver;
let hookwire: Server;
let admin: string;
let proxy: string;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does; playwright-core drives it, no browser is downloaded`);
  }
  dir = await mkdtemp(join(tmpdir(), 'hookwire-ui-browser-'));
  await mkdir(SHOTS, { recursive: true });
  receiver = new Receiver();
  await receiver.start();
  const config = join(dir, 'hookwire.yaml');
  await writeFile(
    config,
    `proxy:
  listen: [{address: 127.0.0.1, port: 0}]
admin:
  listen: {address: 127.0.0.1, port: 0}
  token: ${TOKEN}
services:
  - {name: receiver, url: "${receiver.url}"}
routes:
  - name: shop
    service: receiver
    paths: [/shop]
    plugins: [{name: hello-world, wasm: "${plugin('hello-world')}"}]
event_hooks:
  store: ${join(dir, 'event-hooks.db')}
  allow_cidrs: [127.0.0.1/32]
  delivery: {retry_schedule_ms: [], jitter: none, timeout_ms: 3000, poll_interval_ms: 100}
`,
  );
  ({ server: hookwire, proxy, admin } = await startServer(config, dir));
  context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking flags Chromium's own connections are refused on a closed network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
    timezoneId: 'Europe/Berlin',
  });
  context.setDefaultTimeout(WAIT_MS);
  page = context.pages()[0] ?? (await context.newPage());
}, 60_000);

afterAll(async () => {
  await context?.close();
  if (hookwire && hookwire.child.exitCode === null) {
    hookwire.child.kill('SIGTERM');
    await hookwire.exited;
  }
  await receiver?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** The delivery rows' states, newest first. */
async function states(): Promise<string[]> {
  return page.locator('tr[data-delivery]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-state') ?? ''));
}

describe('the dashboard in Chromium', () => {
  it('serves only the login form until the token is given, and keeps the API closed', async () => {
    expect((await fetch(`${admin}/status`)).status).toBe(401);
    await page.goto(`${admin}/ui/`);
    await page.getByLabel('Admin token').waitFor();
    expect(await page.locator('header.top').count()).toBe(0);

    await page.getByLabel('Admin token').fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Wrong token').waitFor();
    await shot('login');

    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    // Kept for the browser session only.
    expect(await page.evaluate(() => [sessionStorage.getItem('hookwire.admin-token'), localStorage.length])).toEqual([TOKEN, 0]);
  });

  it('shows generation, listeners, the plugin and live traffic plots on the overview', async () => {
    for (let i = 0; i < 5; i++) expect((await fetch(`${proxy}/shop/item-${i}`)).status).toBe(200);
    await page.getByTestId('generation').waitFor();
    expect(await page.getByTestId('generation').textContent()).toBe('1');
    await page.getByText(proxy).waitFor();
    const row = page.locator('tr', { hasText: 'hello-world' });
    await row.waitFor();
    expect(await row.textContent()).toContain('healthy');
    // The plots start with the second /metrics sample (3 s apart).
    await page.getByRole('img', { name: 'Requests per second, by route plot' }).waitFor();
    await page.locator('.plot canvas').first().waitFor();
    await shot('overview');
  });

  it('creates a webhook hook through the form, showing the API 400 at the URL field', async () => {
    await page.getByRole('link', { name: 'Event hooks' }).click();
    await page.getByText('No hooks yet').waitFor();
    await page.getByRole('link', { name: 'New hook' }).click();
    await page.getByLabel('Source').fill('crud');
    await page.getByLabel('Event', { exact: true }).fill('consumers');
    await page.getByLabel('URL').fill('ftp://nope');
    await page.getByRole('button', { name: 'Create hook' }).click();
    const urlError = page.locator('[data-field="config.url"] .field-error');
    await urlError.waitFor();
    expect(await urlError.textContent()).toContain('must use http or https');
    await shot('hook-form-error');

    await page.getByLabel('URL').fill(`${receiver.url}/hook`);
    await page.getByRole('button', { name: 'Create hook' }).click();
    await page.locator('tr[data-hook]').waitFor();
    expect(await page.locator('tr[data-hook]').textContent()).toContain(`${receiver.url}/hook`);

    // Ping from the list: the receiver sees it.
    await page.getByRole('button', { name: 'Ping' }).click();
    await page.getByText('ping: the endpoint answered 2xx').waitFor();
    expect(receiver.received.some((r) => r.body.includes('"event":"ping"'))).toBe(true);
    await shot('hooks');
  });

  it('creates a consumer on the Gateway page and sees its delivery and attempt', async () => {
    await page.getByRole('link', { name: 'Gateway' }).click();
    await page.getByRole('link', { name: 'consumers' }).click();
    await page.getByText('No consumers in workspace default yet').waitFor();
    await page.getByRole('button', { name: 'New consumer' }).click();
    await page.getByLabel('Username').fill('alice');
    await page.getByRole('button', { name: 'Create consumer' }).click();
    await page.locator('tr[data-entity="alice"]').waitFor();
    await shot('gateway');

    await page.getByRole('link', { name: 'Deliveries' }).click();
    await page.locator('tr[data-delivery][data-state="succeeded"]').waitFor();
    expect(await states()).toEqual(['succeeded']);
    await page.getByRole('button', { name: 'Attempts', exact: true }).click();
    const attempt = page.locator('ol.timeline li[data-attempt="1"]');
    await attempt.waitFor();
    expect(await attempt.getByTestId('attempt-status').textContent()).toBe('200');
    expect(await attempt.textContent()).toContain('thanks');
    const delivered = receiver.received.filter((r) => r.url === '/hook' && r.body.includes('"username":"alice"'));
    expect(delivered).toHaveLength(1);
  });

  it('shows a failed delivery, and retrying it from the page succeeds', async () => {
    receiver.failing = true;
    await page.getByRole('link', { name: 'Gateway' }).click();
    await page.getByRole('link', { name: 'consumers' }).click();
    await page.getByRole('button', { name: 'New consumer' }).click();
    await page.getByLabel('Username').fill('bob');
    await page.getByRole('button', { name: 'Create consumer' }).click();
    await page.locator('tr[data-entity="bob"]').waitFor();

    await page.getByRole('link', { name: 'Deliveries' }).click();
    await page.locator('tr[data-delivery][data-state="failed"]').waitFor();
    expect(await states()).toEqual(['failed', 'succeeded']);
    // Filter by state: only the failed one.
    await page.getByLabel('State').selectOption('failed');
    await page.waitForURL(/state=failed/);
    await page.waitForFunction(() => document.querySelectorAll('tr[data-delivery]').length === 1);
    const failed = page.locator('tr[data-delivery][data-state="failed"]');
    expect(await failed.textContent()).toContain('500');
    await failed.getByRole('button', { name: 'Attempts' }).click();
    const attempt = page.locator('ol.timeline li[data-attempt="1"]');
    await attempt.waitFor();
    expect(await attempt.getByTestId('attempt-status').textContent()).toBe('500');
    expect(await attempt.textContent()).toContain('receiver down');
    await shot('deliveries-failed');

    receiver.failing = false;
    await page.getByRole('button', { name: 'Retry all failed (1)' }).click();
    await page.getByLabel('State').selectOption('');
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('tr[data-delivery]')];
        return rows.length === 2 && rows.every((r) => r.getAttribute('data-state') === 'succeeded');
      },
      null,
      { timeout: WAIT_MS },
    );
    expect(await states()).toEqual(['succeeded', 'succeeded']);
    const bobs = receiver.received.filter((r) => r.url === '/hook' && r.body.includes('"username":"bob"'));
    expect(bobs).toHaveLength(2);
    // The same webhook-id on both attempts: it is a retry, not a new delivery.
    expect(bobs[0]!.headers['webhook-id']).toBe(bobs[1]!.headers['webhook-id']);
    // bob's attempts are still open: the retry shows as attempt 2.
    const second = page.locator('ol.timeline li[data-attempt="2"]');
    await second.waitFor();
    expect(await second.getByTestId('attempt-status').textContent()).toBe('200');
    await page.locator('.histogram').waitFor();
    await shot('deliveries');
  });

  it("checks a plugin's configuration against its manifest before sending it", async () => {
    await page.getByRole('link', { name: 'Gateway' }).click();
    await page.getByRole('link', { name: 'plugins' }).click();
    await page.getByRole('button', { name: 'New plugin' }).click();
    await page.getByLabel('Name', { exact: true }).fill('greeter');
    await page.getByLabel('.wasm file').fill(plugin('hello-world'));
    await page.getByLabel('Configuration (JSON)').fill('{"header": "x-ui", "tick_ms": -1}');
    await page.getByRole('button', { name: 'Create plugin' }).click();
    const configError = page.locator('[data-field="configuration"] .field-error');
    await configError.waitFor();
    expect(await configError.textContent()).toContain('tick_ms');
    // Refused before sending: the gateway has no such plugin.
    const listed = await fetch(`${admin}/plugins/greeter`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(listed.status).toBe(404);
    await shot('gateway-plugin-error');

    await page.getByLabel('Configuration (JSON)').fill('{"header": "x-ui", "value": "dashboard"}');
    await page.getByRole('button', { name: 'Create plugin' }).click();
    await page.locator('tr[data-entity="greeter"]').waitFor();
    const r = await fetch(`${proxy}/shop/after-plugin`);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-ui')).toBe('dashboard');
  });

  it('lists the sources and their events', async () => {
    await page.getByRole('link', { name: 'Sources' }).click();
    await page.getByRole('heading', { name: 'crud', exact: true }).waitFor();
    await page.getByText('consumers', { exact: true }).first().waitFor();
    await shot('sources');
  });

  it('is usable at phone width and with the keyboard', async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByTestId('generation').waitFor();
    // Nothing wider than the screen but the tables' own scrolling boxes.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot('overview-phone');
    await page.setViewportSize({ width: 1280, height: 860 });

    // A reload keeps the session (the token is asked once); then Tab from the top:
    // the skip link, then the page links, in order.
    await page.reload();
    await page.getByTestId('generation').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Overview');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Event hooks' }).waitFor();
  });
});
