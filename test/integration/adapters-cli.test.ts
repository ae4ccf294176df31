import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { writeFixtureAdapter, writeFixturePackage } from '../fixtures/adapters/adapter-fixtures.js';

const RUNNER = path.join(REPO_ROOT, 'test/fixtures/adapters/cli.ts');

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch, onnx']).status === 0;

describe('streamseg adapters / eval commands', () => {
  let server: TestRedisServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = await startRedisServer();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-adapters-cli-'));
    await writeFixturePackage(path.join(dir, 'pkg'), {
      embeddingSize: 8,
      embedder: true,
      adapters: [
        { name: 'fog', seed: 1, centroid: [1, 0, 0, 0, 0, 0, 0, 0] },
        { name: 'night', seed: 2, centroid: [0, 1, 0, 0, 0, 0, 0, 0] },
      ],
    });
    env = { REDIS_URL: server.url, STREAMSEG_MODEL: path.join(dir, 'pkg'), LOG_LEVEL: 'silent' };
  });

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('adds an adapter with a centroid from images, lists it, refuses a bad one, removes it', async () => {
    const images = path.join(dir, 'snowy');
    await mkdir(images);
    for (let i = 0; i < 3; i++) {
      await sharp({ create: { width: 40, height: 20, channels: 3, background: { r: 230, g: 235, b: 240 - 20 * i } } })
        .png()
        .toFile(path.join(images, `${i}.png`));
    }
    const snow = await writeFixtureAdapter(path.join(dir, 'snow'), { seed: 7 });
    const added = await run(['adapters', 'add', snow.dir, '--centroid-from', images, '--condition', 'snow'], env);
    expect(added.stderr).toContain('centroid from 3 image(s)');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^added snow \(version [0-9a-f]{16}\)/);

    const listed = await run(['adapters', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    const json = JSON.parse(listed.stdout) as { adapters: { name: string; source: string }[]; problems: unknown[] };
    expect(json.adapters.map((a) => `${a.name}:${a.source}`)).toEqual(['fog:package', 'night:package', 'snow:runtime']);
    expect(json.problems).toEqual([]);

    const bad = await writeFixtureAdapter(path.join(dir, 'bad'), {
      override: { 'base_model.model.head.proj.lora_A.weight': { shape: [4, 19], data: new Float32Array(76) } },
    });
    const refused = await run(['adapters', 'add', bad.dir, '--centroid', '1,0,0,0,0,0,0,0'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^streamseg: E_ADAPTER_SHAPE: .*bad\/adapter_model\.safetensors: tensor "base_model\.model\.head\.proj\.lora_A\.weight": expected \[r, 20\], got \[4, 19\]/,
    );
    const noCentroid = await run(['adapters', 'add', bad.dir], env);
    expect(noCentroid.stderr).toMatch(/--centroid-from/);

    expect((await run(['adapters', 'remove', 'snow'], env)).stdout).toBe('removed snow\n');
    expect((await run(['adapters', 'remove', 'fog'], env)).code).toBe(0);
    const missing = await run(['adapters', 'remove', 'snow'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no adapter "snow" is served/);
    const table = await run(['adapters', 'list'], env);
    expect(table.stdout.split('\n')[0]).toMatch(/^name\s+source\s+condition\s+version\s+r\s+targets$/);
    expect(table.stdout).toMatch(/\nnight\s+package\s+night\s+[0-9a-f]{16}\s+4\s+3\n/);
    expect(table.stdout).not.toMatch(/\nfog /);

    const noRedis = await run(['adapters', 'add', snow.dir, '--centroid', '1'], { ...env, REDIS_URL: '' });
    expect(noRedis.stderr).toMatch(/E_CONFIG: REDIS_URL is not set/);
  });

  it.skipIf(!hasTorch)('eval scores held-out videos per size through the product path (JSON and table) on a (random-weight) package', async () => {
    const pkgDir = path.join(dir, 'random');
    const made = spawnSync('/usr/bin/python3', [path.join(REPO_ROOT, 'test/fixtures/adapters/make-package.py'), pkgDir], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const args = [
      'eval',
      '--model',
      pkgDir,
      '--sizes',
      '160x96,96x160',
      '--scenes',
      '1',
      '--clear-scenes',
      '1',
      '--composition-scenes',
      '2',
      '--frames',
      '8',
      '--styles',
      '',
      '--seed',
      '5',
    ];
    const res = await run([...args, '--conditions', 'fog,clear,fog+night', '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as {
      cells: { size: string; input: string; condition: string; composition: boolean; scenes: number; frames: number; miou: Record<string, number> }[];
      retrieval: { hits: number; total: number };
      settings: { frames: number };
    };
    expect(report.cells.map((c) => [c.size, c.condition, c.composition])).toEqual([
      ['160x96', 'fog', false],
      ['160x96', 'clear', false],
      ['160x96', 'fog+night', true],
      ['96x160', 'fog', false],
      ['96x160', 'clear', false],
      ['96x160', 'fog+night', true],
    ]);
    // per size: fog, clear and fog+night, then fog+night's second scene in its own video
    expect(report.settings.frames).toBe(2 * 4 * 8);
    expect(report.cells.map((c) => c.scenes)).toEqual([1, 1, 2, 1, 1, 2]);
    for (const c of report.cells) {
      const expected = [
        'base',
        'top1',
        'uniform',
        'weighted',
        'weightedCat',
        'guarded',
        ...(c.condition === 'fog' ? ['oracle'] : []),
        ...(c.composition ? ['oracleSingles', 'componentOracle'] : []),
      ];
      expect(Object.keys(c.miou).sort()).toEqual(expected.sort());
      for (const v of Object.values(c.miou)) expect(v).toBeGreaterThanOrEqual(0);
    }
    expect(report.retrieval.total).toBe(2); // the fog scene at each size
    const table = await run([...args, '--conditions', 'snow+night'], env);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/source 160x96/);
    expect(table.stdout).toMatch(/compositions \(mean\)/);
    expect(table.stdout).toMatch(/retrieval accuracy/);
    const short = await run([...args, '--frames', '4'], env);
    expect(short.code).not.toBe(0);
    expect(short.stderr).toMatch(/--frames must be at least 8/);
    const none = await run([...args, '--composition-scenes', '0'], env);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/--composition-scenes must be a positive integer, got "0"/);
  });
});
