import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { CLASSES } from '../../src/synth/classes.js';
import { parseCondition } from '../../src/synth/conditions.js';
import { renderStills } from '../../src/synth/stills.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'synth-stills-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const conditions = ['clear', 'fog', 'snow+night'].map((c) => parseCondition(c)!);

describe('renderStills', () => {
  it('writes images, class-index masks and meta.jsonl, one line per still', async () => {
    const dir = await tempDir();
    const summary = await renderStills({ dir, count: 9, width: 64, height: 48, seed: 5, conditions, workers: 1 });
    expect(summary.count).toBe(9);
    expect((await readdir(path.join(dir, 'images'))).sort()).toEqual(Array.from({ length: 9 }, (_, i) => `${String(i).padStart(6, '0')}.png`));
    expect((await readdir(path.join(dir, 'masks'))).length).toBe(9);

    const lines = (await readFile(path.join(dir, 'meta.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(9);
    expect(lines[0]).toMatchObject({ id: '000000', condition: 'clear', components: ['clear'], intensity: 0 });
    expect(lines[1]).toMatchObject({ id: '000001', condition: 'fog', components: ['fog'] });
    expect(lines[2]).toMatchObject({ id: '000002', condition: 'snow+night', components: ['snow', 'night'] });
    for (const line of lines.filter((l) => l.condition !== 'clear')) {
      expect(line.intensity).toBeGreaterThanOrEqual(0.5);
      expect(line.intensity).toBeLessThanOrEqual(1);
      expect(Number.isInteger(line.seed)).toBe(true);
    }

    const image = await sharp(path.join(dir, 'images', '000001.png')).metadata();
    expect([image.width, image.height, image.channels]).toEqual([64, 48, 3]);
    const maskMeta = await sharp(path.join(dir, 'masks', '000001.png')).metadata();
    expect([maskMeta.width, maskMeta.height, maskMeta.channels, maskMeta.depth]).toEqual([64, 48, 1, 'uchar']);
    const mask = await sharp(path.join(dir, 'masks', '000001.png'))
      .extractChannel(0)
      .raw()
      .toBuffer();
    expect(Math.max(...mask)).toBeLessThan(CLASSES.length);
  });

  it('is byte-identical for the same seed, with worker threads or without', async () => {
    const a = await tempDir();
    const b = await tempDir();
    await renderStills({ dir: a, count: 16, width: 40, height: 40, seed: 77, conditions, workers: 1 });
    await renderStills({ dir: b, count: 16, width: 40, height: 40, seed: 77, conditions, workers: 2 });
    for (const sub of ['images', 'masks']) {
      for (const name of await readdir(path.join(a, sub))) {
        expect((await readFile(path.join(a, sub, name))).equals(await readFile(path.join(b, sub, name))), `${sub}/${name}`).toBe(true);
      }
    }
    expect(await readFile(path.join(a, 'meta.jsonl'), 'utf8')).toBe(await readFile(path.join(b, 'meta.jsonl'), 'utf8'));
  });

  it('honours an intensity override', async () => {
    const dir = await tempDir();
    const { metas } = await renderStills({
      dir,
      count: 4,
      width: 32,
      height: 32,
      seed: 1,
      conditions: [parseCondition('rain')!],
      intensity: [0.2, 0.3],
      workers: 1,
    });
    for (const m of metas) expect(m.intensity).toBeGreaterThanOrEqual(0.2);
    for (const m of metas) expect(m.intensity).toBeLessThanOrEqual(0.3);
  });
});
