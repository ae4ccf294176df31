/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { startApiStack, TOKEN, type ApiStack } from './stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUTPUT_DIR = path.join(REPO_ROOT, '.tmp/test-output');

describe('web page in headless Chromium', () => {
  let stack: ApiStack;
  let modelRoot: string | undefined;
  let browser: BrowserContext;
  let profile: string;
  let video: string;

  beforeAll(async () => {
    // Never skipped: a machine without Chromium fails here with what to do.
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: install Debian's Chromium (apt-get install -y chromium) or set CHROMIUM_PATH; the web page test needs a real browser`);
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
    stack = await startApiStack({ modelDir, retrievalMaxDistance: 2 });
    video = path.join(stack.dir, 'street.mp4');
    await makeTestVideo(video, { width: 96, height: 64, fps: 10, framesPerScene: [12, 12], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    profile = await mkdtemp(path.join(os.tmpdir(), 'ss-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1200, height: 1000 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
    if (modelRoot) await rm(modelRoot, { recursive: true, force: true });
  });

  it('uploads through the page, shows it finish with the player and the scene timeline', async () => {
    const page = browser.pages()[0] ?? (await browser.newPage());
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${stack.url}/web/`);

    await page.getByTestId('token').fill(TOKEN);
    await page.locator('#token-form button[type=submit]').click();
    await expect.poll(() => page.getByTestId('token-state').textContent()).toBe('token accepted');

    await page.getByTestId('file').setInputFiles(video);
    await page.getByTestId('submit').click();
    await page.getByTestId('submit-state').filter({ hasText: /^submitted: v/ }).waitFor();
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
    expect(report.scenes.map((s) => [s.startFrame, s.endFrame])).toEqual([[0, 12], [12, 24]]);
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
    const media = await player.evaluate((v: HTMLVideoElement) => ({ readyState: v.readyState, error: v.error?.code ?? null, width: v.videoWidth, duration: v.duration }));
    expect(media.error).toBeNull();
    expect(media.width).toBe(96);
    expect(media.duration).toBeCloseTo(2.4, 1);

    // Queue health lists the three queues.
    await expect.poll(() => page.getByTestId('queue-row').count()).toBe(3);

    await mkdir(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'web-page.png'), fullPage: true });
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

    const listed = (await (await fetch(`${stack.url}/v1/adapters`, { headers })).json()) as { adapters: { name: string; source: string }[]; problems: unknown[] };
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
