import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptance, formatEvalTable, heldOutMeans, type EvalReport } from '../../src/eval/evaluate.js';
import { Confusion } from '../../src/eval/miou.js';
import { DEFAULT_EVAL_CONDITIONS, DEFAULT_EVAL_SEED, classRemap, clipSeed, loadTestSet, renderTestSet } from '../../src/eval/test-set.js';
import { parseCondition } from '../../src/synth/conditions.js';
import { planStill } from '../../src/synth/still.js';
import { DEFAULT_RETRIEVAL_OPTIONS } from '../../src/workers/adapters/retrieval.js';

describe('eval', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-eval-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('computes IoU per class and mIoU over present classes (hand-computed), ignoring 255', () => {
    const c = new Confusion(3);
    // gt:   0 0 1 1 255 ; pred: 0 1 1 1 2
    c.add(Uint8Array.from([0, 0, 1, 1, 255]), Uint8Array.from([0, 1, 1, 1, 2]));
    const iou = c.iou();
    expect(iou[0]).toBeCloseTo(1 / 2, 12); // tp 1, gt 2, pred 1
    expect(iou[1]).toBeCloseTo(2 / 3, 12); // tp 2, gt 2, pred 3
    expect(Number.isNaN(iou[2]!)).toBe(true); // class 2 only predicted on an ignored pixel
    expect(c.miou()).toBeCloseTo((1 / 2 + 2 / 3) / 2, 12);
    expect(() => c.add(Uint8Array.of(0), Uint8Array.of(0, 1))).toThrow(/sizes differ/);
  });

  it('renders deterministic clips with exact masks in the model class order', () => {
    const opts = { seed: 11, conditions: ['fog', 'rain+dusk'], clips: 1, frames: 2, width: 32, height: 32, modelClasses: ['road', 'sky', 'building', 'vegetation', 'vehicle', 'person', 'pole', 'sidewalk'] };
    const a = renderTestSet(opts);
    const b = renderTestSet(opts);
    expect(a.map((c) => [c.condition, c.heldOut, c.frames.length])).toEqual([['fog', false, 2], ['rain+dusk', true, 2]]);
    expect(a[0]!.frames[0]!.length).toBe(32 * 32 * 3);
    expect(Buffer.from(a[1]!.frames[1]!).equals(Buffer.from(b[1]!.frames[1]!))).toBe(true);
    expect(Math.max(...a[0]!.masks[0]!)).toBeLessThan(8);
    const remap = classRemap(opts.modelClasses);
    expect([remap[0], remap[1], remap[7], remap[8]]).toEqual([1, 0, 6, 255]);
    expect(() => renderTestSet({ ...opts, conditions: ['hail'] })).toThrow(/unknown condition "hail"/);
  });

  it('never renders a scene the training stills used (default seed vs training run seeds)', () => {
    // training/streamseg_train/data.py: run seed 1 000 000 + 100 000·k per condition (k < 6), evaluate.py 9 000 000 + …
    const training = new Set<number>();
    const clear = parseCondition('clear')!;
    for (const base of [1_000_000, 9_000_000]) {
      for (let k = 0; k <= 50; k++) {
        for (let i = 0; i < 3000; i++) training.add(planStill({ index: i, runSeed: base + 100_000 * k, condition: clear, width: 8, height: 8 }).seed);
      }
    }
    for (let c = 0; c < DEFAULT_EVAL_CONDITIONS.length; c++) {
      for (let k = 0; k < 100; k++) expect(training.has(clipSeed(DEFAULT_EVAL_SEED, c, k))).toBe(false);
    }
  });

  it('loads a stills test set, grouping frames by clip and resizing to the model input', async () => {
    await mkdir(path.join(dir, 'images'));
    await mkdir(path.join(dir, 'masks'));
    const meta = [
      { id: 0, condition: 'fog', clip: 'a' },
      { id: 1, condition: 'fog', clip: 'a' },
      { id: 2, condition: 'night+snow' },
    ];
    for (const m of meta) {
      const name = `${String(m.id).padStart(6, '0')}.png`;
      await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 10 * m.id, g: 0, b: 0 } } }).png().toFile(path.join(dir, 'images', name));
      await sharp(Buffer.alloc(200, m.id + 1), { raw: { width: 20, height: 10, channels: 1 } }).png().toFile(path.join(dir, 'masks', name));
    }
    await writeFile(path.join(dir, 'meta.jsonl'), meta.map((m) => JSON.stringify(m)).join('\n'));
    const clips = await loadTestSet(dir, 16, 16);
    expect(clips.map((c) => [c.condition, c.heldOut, c.frames.length])).toEqual([['fog', false, 2], ['snow+night', true, 1]]);
    expect(clips[0]!.frames[0]!.length).toBe(16 * 16 * 3);
    expect(clips[1]!.masks[0]!.every((v) => v === 3)).toBe(true);
    await expect(loadTestSet(path.join(dir, 'nope'), 16, 16)).rejects.toMatchObject({ code: 'E_INPUT_NOT_FOUND' });
  });

  it('formats the table and checks the acceptance on held-out compositions', () => {
    const report: EvalReport = {
      conditions: [
        { name: 'fog', heldOut: false, miou: { base: 0.5, oracle: 0.7, top1: 0.7, uniform: 0.6, weighted: 0.68, weightedCat: 0.69 }, clips: 2, mix: { fog: 0.9, night: 0.1 } },
        { name: 'fog+night', heldOut: true, miou: { base: 0.3, top1: 0.4, uniform: 0.42, weighted: 0.45, weightedCat: 0.44 }, clips: 2, mix: { fog: 0.5, night: 0.5 } },
        { name: 'rain+dusk', heldOut: true, miou: { base: 0.35, top1: 0.45, uniform: 0.4, weighted: 0.44, weightedCat: 0.46 }, clips: 2, mix: { rain: 0.6, dusk: 0.4 } },
      ],
      retrievalAccuracy: 0.9,
      settings: { model: 'm@1', retrieval: { ...DEFAULT_RETRIEVAL_OPTIONS }, embeddingFrames: 4, clips: 6, frames: 24, seconds: 1 },
    };
    expect(heldOutMeans(report)).toMatchObject({ base: 0.325, top1: 0.425, weighted: 0.445 });
    expect(acceptance(report)).toEqual({ beatsBaseEverywhere: true, beatsTop1OnAverage: true });
    const table = formatEvalTable(report);
    expect(table).toMatch(/fog\+night\s+yes\s+30\.0\s+—\s+40\.0\s+42\.0\s+45\.0\s+44\.0\s+fog 0\.50, night 0\.50/);
    expect(table).toMatch(/held-out mean\s+32\.5/);
    expect(table).toContain('retrieval accuracy (single conditions, top-1 = own adapter): 90.0%');
  });
});
