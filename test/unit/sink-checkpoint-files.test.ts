import { mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FrameResult } from '../../src/shared/frame-store.js';
import { MaskWriter } from '../../src/workers/sink/mask-writer.js';
import { SegmentFiles } from '../../src/workers/sink/segment-files.js';

const record = (index: number): FrameResult => ({ index, timestampMs: index * 40, scene: 0, adapters: [], cacheHit: null, inferenceMs: 1, workerId: 'w' });
const mask = Uint8Array.from([0, 1, 1, 0]);

describe('MaskWriter checkpoints', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-masks-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes only on flush, returns the synced length, and a writer reopened at a checkpoint truncates what came after', async () => {
    const file = path.join(dir, 'masks.ndjson');
    const first = await MaskWriter.open(file, ['sky', 'road']);
    first.write(record(0), mask, 2, 2);
    first.write(record(1), mask, 2, 2);
    expect(await readFile(`${file}.partial`, 'utf8')).toBe('');
    const checkpoint = await first.flush();
    expect(checkpoint).toBe((await readFile(`${file}.partial`)).length);
    first.write(record(2), mask, 2, 2);
    await first.flush(); // written after the checkpoint: lost to the next owner on purpose
    await first.abort();
    await writeFile(`${file}.partial`, '{"half a line', { flag: 'a' });

    const second = await MaskWriter.open(file, ['sky', 'road'], checkpoint);
    second.write(record(2), mask, 2, 2);
    await second.close();
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number });
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2]);
    expect(await readdir(dir)).toEqual(['masks.ndjson']);
  });

  it('reopens a file already renamed into place (the writer died while finishing)', async () => {
    const file = path.join(dir, 'done.ndjson');
    const writer = await MaskWriter.open(file, ['sky']);
    writer.write(record(0), mask, 2, 2);
    const bytes = await writer.flush();
    await writer.close();
    const again = await MaskWriter.open(file, ['sky'], bytes);
    await again.close();
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('refuses to resume when the file is shorter than the checkpoint (another machine, no shared directory)', async () => {
    await expect(MaskWriter.open(path.join(dir, 'missing.ndjson'), ['sky'], 100)).rejects.toMatchObject({ code: 'E_SINK_RESUME' });
  });
});

describe('SegmentFiles.recover', () => {
  it('keeps checkpointed segments, removes partial and later ones, and refuses when one is missing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ss-segments-'));
    try {
      const segments = new SegmentFiles(dir);
      await segments.recover(0);
      for (const k of [0, 1, 2]) await writeFile(segments.path(k), 'mp4');
      await writeFile(`${segments.path(3)}.partial`, 'half');
      await segments.recover(2);
      expect((await readdir(segments.dir)).sort()).toEqual(['seg-000000.mp4', 'seg-000001.mp4']);
      await rename(segments.path(1), path.join(dir, 'moved'));
      await expect(segments.recover(2)).rejects.toMatchObject({ code: 'E_SINK_RESUME', message: expect.stringContaining('segment 1') });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
