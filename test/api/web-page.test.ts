/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { startApiStack, TOKEN, type ApiStack } from './stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUTPUT_DIR = path.join(REPO_ROOT, '.tmp/test-output');
/** A second token, scoped to reading: enough for the page, not for bull-board. */
const READ_TOKEN = 'read-token-0123456789abcdef';

async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(OUTPUT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT_DIR, name), fullPage: true });
}

async function uploadVideo(url: string, file: string): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(await readFile(file))], { type: 'video/mp4' }), path.basename(file));
  const response = await fetch(`${url}/v1/videos`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
  expect(response.status).toBeLessThan(300);
  return ((await response.json()) as { id: string }).id;
}

describe('web page in headless Chromium', () => {
  let stack: ApiStack;
  let modelRoot: string | undefined;
  let browser: BrowserContext;
  let profile: string;
  let video: string;
  let otherVideos: [string, string];

  /** The browser's one page, with no token stored (no localStorage entry, no cookie). */
  async function freshPage(): Promise<Page> {
    const page = browser.pages()[0] ?? (await browser.newPage());
    await browser.clearCookies();
    await page.goto(`${stack.url}/healthz`);
    await page.evaluate(() => localStorage.clear());
    return page;
  }

  async function enterToken(page: Page, value: string): Promise<void> {
    await page.getByTestId('token').fill(value);
    await page.locator('#token-form button[type=submit]').click();
  }

  beforeAll(async () => {
    // Never skipped: a machine without Chromium fails here with what to do.
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} not found: install Debian's Chromium (apt-get install -y chromium) or set CHROMIUM_PATH; the web page test needs a real browser`,
      );
    }
    // The shipped model package without its base-domain centroid: its embedder and adapters give
    // each scene a merged adapter mix (no distance threshold: the test pattern is unlike every
    // adapter's domain, and with the base domain as a candidate it would run the base model).
    modelRoot = await mkdtemp(path.join(os.tmpdir(), 'ss-web-model-'));
    const modelDir = path.join(modelRoot, 'default');
    await cp(path.join(REPO_ROOT, 'models/default'), modelDir, { recursive: true });
    const indexFile = path.join(modelDir, 'adapters/index.json');
    const { base: _base, ...index } = JSON.parse(await readFile(indexFile, 'utf8')) as Record<string, unknown>;
    await writeFile(indexFile, JSON.stringify(index));
    stack = await startApiStack({ modelDir, retrievalMaxDistance: 2, apiTokens: `${TOKEN},${READ_TOKEN}:read` });
    video = path.join(stack.dir, 'street.mp4');
    await makeTestVideo(video, { width: 96, height: 64, fps: 10, framesPerScene: [12, 12], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    otherVideos = [path.join(stack.dir, 'other-a.mp4'), path.join(stack.dir, 'other-b.mp4')];
    await makeTestVideo(otherVideos[0], { width: 96, height: 64, fps: 10, framesPerScene: [4, 4], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    await makeTestVideo(otherVideos[1], { width: 96, height: 64, fps: 10, framesPerScene: [3, 3], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    profile = await mkdtemp(path.join(os.tmpdir(), 'ss-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1200, height: 1000 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
    if (modelRoot) await rm(modelRoot, { recursive: true, force: true });
  });

  it('says plainly that an API token is needed, and where to enter it, instead of empty tables', async () => {
    const page = await freshPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${stack.url}/web/`);

    const notice = page.getByTestId('auth-notice');
    await notice.waitFor({ state: 'visible' });
    const needed = (await notice.innerText()).replace(/\s+/g, ' ');
    expect(needed).toContain('API token');
    expect(needed).toContain('STREAMSEG_API_TOKENS');
    expect(needed).toMatch(/API token field at the top/);
    // The tables say why they are empty.
    await expect.poll(() => page.getByTestId('videos').locator('tbody').innerText()).toMatch(/API token/);
    await expect.poll(() => page.getByTestId('queues').locator('tbody').innerText()).toMatch(/API token/);
    // The notice's link puts the cursor in the token field.
    await notice.getByText('API token field').click();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('token');
    await screenshot(page, 'web-no-token.png');

    // A wrong token: the server answers 401 and the page says the token was refused.
    await enterToken(page, 'not-one-of-the-tokens-0000');
    await expect.poll(() => page.getByTestId('token-state').textContent()).toBe('token refused');
    await expect.poll(async () => (await notice.innerText()).replace(/\s+/g, ' ')).toMatch(/refused.*401/);
    expect(await notice.innerText()).toContain('STREAMSEG_API_TOKENS');
    await expect.poll(() => page.getByTestId('videos').locator('tbody').innerText()).toMatch(/API token/);
    await screenshot(page, 'web-token-refused.png');

    // The right one: the notice goes, the queues appear.
    await enterToken(page, TOKEN);
    await expect.poll(() => page.getByTestId('token-state').textContent()).toBe('token accepted');
    await expect.poll(() => notice.isVisible()).toBe(false);
    await expect.poll(() => page.getByTestId('queue-row').count()).toBe(3);
    expect(problems).toEqual([]);
  });

  it('/admin/queues in a browser without a token answers an HTML page that says how to give one; API clients keep the JSON error', async () => {
    const page = await freshPage();
    const response = await page.goto(`${stack.url}/admin/queues`);
    expect(response?.status()).toBe(401);
    expect(response?.headers()['content-type']).toMatch(/^text\/html/);
    const text = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('API token');
    expect(text).toContain('STREAMSEG_API_TOKENS');
    expect(text).toContain('admin');
    await screenshot(page, 'admin-queues-401.png');

    // Its link leads to the web page; a token entered there (an admin one) opens bull-board.
    await page.getByRole('link', { name: /web page/ }).click();
    await page.waitForURL(/\/web\//);
    await enterToken(page, TOKEN);
    await expect.poll(() => page.getByTestId('token-state').textContent()).toBe('token accepted');
    await page.getByTestId('auth-notice').getByRole('link', { name: '/admin/queues' }).click();
    await page.waitForURL(`${stack.url}/admin/queues`);
    await expect.poll(() => page.title()).toBe('streamseg queues');

    // A read-only token: 403, as a page that names the scope needed.
    await page.goto(`${stack.url}/web/`);
    await enterToken(page, READ_TOKEN);
    await expect.poll(() => page.getByTestId('token-state').textContent()).toBe('token accepted');
    const forbidden = await page.goto(`${stack.url}/admin/queues`);
    expect(forbidden?.status()).toBe(403);
    expect(forbidden?.headers()['content-type']).toMatch(/^text\/html/);
    const why = (await page.locator('body').innerText()).replace(/\s+/g, ' ');
    expect(why).toContain('"read"');
    expect(why).toContain(':admin');
    await screenshot(page, 'admin-queues-403.png');

    // Programs keep the JSON answers.
    for (const headers of [{ accept: 'application/json' }, {}, { accept: 'application/json, text/html;q=0.5' }] as Record<string, string>[]) {
      const none = await fetch(`${stack.url}/admin/queues`, { headers });
      expect(none.status).toBe(401);
      expect(none.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHORIZED');
    }
    const readOnly = await fetch(`${stack.url}/admin/queues`, { headers: { accept: 'application/json', authorization: `Bearer ${READ_TOKEN}` } });
    expect(readOnly.status).toBe(403);
    expect(((await readOnly.json()) as { error: { code: string } }).error.code).toBe('E_FORBIDDEN');
  });

  it('opens a video from a click anywhere on its row, and from the keyboard (Tab to the row, Enter)', async () => {
    const first = await uploadVideo(stack.url, otherVideos[0]);
    const second = await uploadVideo(stack.url, otherVideos[1]);
    expect(second).not.toBe(first);
    const page = await freshPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${stack.url}/web/`);
    await enterToken(page, TOKEN);
    const row = (id: string) => page.locator(`tr[data-testid=video-row][data-id="${id}"]`);
    await row(second).waitFor();
    await row(first).waitFor();

    // A click on the status cell, away from the id link.
    await row(first).getByTestId('video-status').click();
    await expect.poll(() => page.getByTestId('detail-id').textContent()).toBe(first);
    expect(await page.getByTestId('detail').isVisible()).toBe(true);
    expect(new URL(page.url()).hash).toBe(`#${first}`);
    await expect.poll(() => row(first).getAttribute('aria-current')).toBe('true');

    // The keyboard: the row takes focus, keeps it across the list's refreshes, and Enter opens it.
    await page.getByTestId('token').focus();
    for (let i = 0; i < 20 && (await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.id)) !== second; i++)
      await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.id)).toBe(second);
    await page.waitForTimeout(2500);
    expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.id)).toBe(second);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('detail-id').textContent()).toBe(second);
    await expect.poll(() => row(second).getAttribute('aria-current')).toBe('true');
    await screenshot(page, 'web-row-selected.png');
    expect(problems).toEqual([]);
  });

  it('uploads through the page, shows it finish with the player and the scene timeline', async () => {
    const page = await freshPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${stack.url}/web/`);

    await enterToken(page, TOKEN);
    await expect.poll(() => page.getByTestId('token-state').textContent()).toBe('token accepted');

    await page.getByTestId('file').setInputFiles(video);
    await page.getByTestId('submit').click();
    await page
      .getByTestId('submit-state')
      .filter({ hasText: /^submitted: v/ })
      .waitFor();
    const id = ((await page.getByTestId('submit-state').textContent()) ?? '').replace('submitted: ', '');

    // Progress of every stage in the list, then the detail view finishing.
    await page.locator(`tr[data-testid=video-row][data-id="${id}"][data-status=done]`).waitFor({ timeout: 120_000 });
    await page.getByTestId('detail-status').filter({ hasText: 'done' }).waitFor({ timeout: 120_000 });
    await expect.poll(() => page.getByTestId('detail-id').textContent()).toBe(id);

    // Scene timeline from report.json: two scenes, each with the adapters retrieved for it and their weights.
    await expect.poll(() => page.getByTestId('scene-row').count(), { timeout: 30_000 }).toBe(2);
    expect(await page.getByTestId('scene-block').count()).toBe(2);
    const report = (await (await fetch(`${stack.url}/v1/videos/${id}/report.json`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      scenes: { startFrame: number; endFrame: number; adapters: { name: string; weight: number }[] }[];
    };
    expect(report.scenes.map((s) => [s.startFrame, s.endFrame])).toEqual([
      [0, 12],
      [12, 24],
    ]);
    for (const [k, scene] of report.scenes.entries()) {
      expect(scene.adapters.length).toBeGreaterThan(0);
      const row = (await page.getByTestId('scene-row').nth(k).textContent()) ?? '';
      expect(row).toContain(`${scene.startFrame}–${scene.endFrame - 1}`);
      for (const adapter of scene.adapters) expect(row).toContain(`${adapter.name} (${adapter.weight.toFixed(2)})`);
      expect(await page.getByTestId('scene-block').nth(k).getAttribute('title')).toContain(scene.adapters[0]!.name);
    }

    // The player loads annotated.mp4 (through the token cookie).
    const player = page.getByTestId('player');
    await expect.poll(() => player.getAttribute('src')).toBe(`/v1/videos/${id}/annotated.mp4`);
    await page.waitForFunction(() => {
      const v = document.querySelector('video');
      return v !== null && (v.readyState >= 1 || v.error !== null);
    });
    const media = await player.evaluate((v: HTMLVideoElement) => ({
      readyState: v.readyState,
      error: v.error?.code ?? null,
      width: v.videoWidth,
      duration: v.duration,
    }));
    expect(media.error).toBeNull();
    expect(media.width).toBe(96);
    expect(media.duration).toBeCloseTo(2.4, 1);

    // Queue health lists the three queues.
    await expect.poll(() => page.getByTestId('queue-row').count()).toBe(3);

    await screenshot(page, 'web-page.png');
    expect(problems).toEqual([]);
  });

  it('manages run-time adapters through /v1/adapters (the shipped package)', async () => {
    const headers = { authorization: `Bearer ${TOKEN}` };
    const dir = path.join(REPO_ROOT, 'models/default/adapters');
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { adapters: { name: string; centroids: number[][] }[] };
    const fog = index.adapters.find((a) => a.name === 'fog')!;
    const form = new FormData();
    form.append('name', 'fog-copy');
    form.append('centroid', fog.centroids[0]!.join(','));
    form.append('condition', 'fog');
    form.append('config', new Blob([await readFile(path.join(dir, 'fog/adapter_config.json'))]), 'adapter_config.json');
    form.append('weights', new Blob([await readFile(path.join(dir, 'fog/adapter_model.safetensors'))]), 'adapter_model.safetensors');
    const added = await fetch(`${stack.url}/v1/adapters`, { method: 'POST', headers, body: form });
    expect(added.status).toBe(201);
    expect(await added.json()).toMatchObject({ name: 'fog-copy', replaced: false });

    const listed = (await (await fetch(`${stack.url}/v1/adapters`, { headers })).json()) as {
      adapters: { name: string; source: string }[];
      problems: unknown[];
    };
    expect(listed.adapters.map((a) => a.name)).toEqual(['dusk', 'fog', 'fog-copy', 'night', 'rain', 'snow']);
    expect(listed.adapters.find((a) => a.name === 'fog-copy')?.source).toBe('runtime');
    expect(listed.problems).toEqual([]);

    const badForm = new FormData();
    badForm.append('name', 'broken');
    badForm.append('centroid', '1,2,3');
    badForm.append('config', new Blob([await readFile(path.join(dir, 'fog/adapter_config.json'))]), 'adapter_config.json');
    badForm.append('weights', new Blob([await readFile(path.join(dir, 'fog/adapter_model.safetensors'))]), 'adapter_model.safetensors');
    const refused = await fetch(`${stack.url}/v1/adapters`, { method: 'POST', headers, body: badForm });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('E_ADAPTER_SHAPE');

    expect((await fetch(`${stack.url}/v1/adapters/fog-copy`, { method: 'DELETE', headers })).status).toBe(200);
    const after = (await (await fetch(`${stack.url}/v1/adapters`, { headers })).json()) as { adapters: { name: string }[] };
    expect(after.adapters.map((a) => a.name)).not.toContain('fog-copy');
  });
});
