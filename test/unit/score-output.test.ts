import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeClassMask, decodeRleString, RleDecodeError } from '../../src/eval/coco-rle-decode.js';
import { Confusion } from '../../src/eval/miou.js';
import {
  adaptersLabel,
  buildScoreReport,
  formatScoreTable,
  mapClasses,
  middleFrame,
  pictureName,
  scoreRun,
  ScoreError,
  truthStem,
  type RunScore,
  type TruthScenes,
} from '../../src/eval/score-output.js';
import { writeMaskPng } from '../../src/synth/png-io.js';
import { encodeClasses, toString } from '../../src/workers/sink/coco-rle.js';
import { maskLine } from '../../src/workers/sink/mask-writer.js';

/** Deterministic PRNG (mulberry32): the same masks on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random class-index mask: either pixel noise or blocks (long runs across columns). */
function randomMask(random: () => number, h: number, w: number, classes: number, blocky: boolean): Uint8Array {
  const mask = new Uint8Array(h * w);
  if (!blocky) {
    for (let i = 0; i < mask.length; i++) mask[i] = Math.floor(random() * classes);
    return mask;
  }
  const rects = 1 + Math.floor(random() * 6);
  for (let r = 0; r < rects; r++) {
    const x0 = Math.floor(random() * w);
    const y0 = Math.floor(random() * h);
    const x1 = x0 + Math.floor(random() * (w - x0 + 1));
    const y1 = y0 + Math.floor(random() * (h - y0 + 1));
    const value = Math.floor(random() * classes);
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) mask[y * w + x] = value;
  }
  return mask;
}

/** What mask-writer puts in a masks.ndjson line for a class-index mask. */
function encodeLineMasks(mask: Uint8Array, h: number, w: number, names: readonly string[]): Record<string, { size: [number, number]; counts: string }> {
  const out: Record<string, { size: [number, number]; counts: string }> = {};
  for (const [value, rle] of encodeClasses(mask, h, w)) out[names[value]!] = { size: rle.size, counts: toString(rle.counts) };
  return out;
}

const NAMES = ['sky', 'road', 'sidewalk', 'building', 'vegetation', 'vehicle', 'person', 'pole'];

describe('COCO compressed RLE decoding (inverse of the sink encoder)', () => {
  it('round-trips random class masks through encodeClasses + toString', () => {
    const random = rng(7);
    const sizes: [number, number][] = [
      [1, 1],
      [1, 17],
      [17, 1],
      [2, 3],
      [9, 4],
      [33, 21],
      [96, 160],
      [37, 64],
    ];
    let checked = 0;
    for (const [h, w] of sizes) {
      for (let trial = 0; trial < 6; trial++) {
        const classes = 1 + Math.floor(random() * NAMES.length);
        const mask = randomMask(random, h, w, classes, trial % 2 === 1);
        const lineMasks = encodeLineMasks(mask, h, w, NAMES);
        const decoded = decodeClassMask(lineMasks, h, w, (name) => NAMES.indexOf(name));
        expect(Buffer.from(decoded).equals(Buffer.from(mask)), `${h}x${w} trial ${trial}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(sizes.length * 6);
  });

  it('decodes the masks pycocotools encoded (test/fixtures/rle-pycocotools.json)', () => {
    const fixture = JSON.parse(readFileSync(new URL('../fixtures/rle-pycocotools.json', import.meta.url), 'utf8')) as {
      cases: { h: number; w: number; rows: string[]; counts: string; area: number }[];
    };
    expect(fixture.cases.length).toBeGreaterThan(0);
    for (const c of fixture.cases) {
      const expected = Uint8Array.from(c.rows.join(''), (ch) => Number(ch));
      const decoded = decodeRleString({ size: [c.h, c.w], counts: c.counts });
      expect([...decoded], `${c.h}x${c.w}`).toEqual([...expected]);
      expect(decoded.reduce((a, b) => a + b, 0)).toBe(c.area);
      // As the single class of a frame: its pixels get the class value, the rest the fill.
      const classMask = decodeClassMask({ person: { size: [c.h, c.w], counts: c.counts } }, c.h, c.w, (n) => NAMES.indexOf(n), { fill: 255 });
      expect([...classMask]).toEqual([...expected].map((v) => (v ? 6 : 255)));
    }
  });

  it('gives unknown class names the `unknown` value and leaves unclaimed pixels at `fill`', () => {
    const mask = Uint8Array.from([0, 1, 1, 2, 2, 2]);
    const masks = encodeLineMasks(mask, 2, 3, ['sky', 'mystery', 'road']);
    delete masks.road;
    expect([...decodeClassMask(masks, 2, 3, (n) => (n === 'sky' ? 0 : undefined), { fill: 200, unknown: 9 })]).toEqual([0, 9, 9, 200, 200, 200]);
  });

  it('refuses a mask of the wrong size, counts that do not cover the frame, and overlapping classes', () => {
    const lookup = (n: string) => NAMES.indexOf(n);
    expect(() => decodeClassMask({ sky: { size: [2, 3], counts: '06' } }, 3, 2, lookup)).toThrow(RleDecodeError);
    // [0, 5] covers 5 of 6 pixels; [0, 7] covers 7.
    expect(() => decodeClassMask({ sky: { size: [2, 3], counts: toString([0, 5]) } }, 2, 3, lookup)).toThrow(/cover 5 pixels/);
    expect(() => decodeClassMask({ sky: { size: [2, 3], counts: toString([0, 7]) } }, 2, 3, lookup)).toThrow(/exceed/);
    expect(() =>
      decodeClassMask({ sky: { size: [2, 3], counts: toString([0, 4, 2]) }, road: { size: [2, 3], counts: toString([3, 3]) } }, 2, 3, lookup),
    ).toThrow(/two class masks/);
  });
});

describe('score-output helpers', () => {
  it('maps ground-truth classes onto model classes by name; names the model lacks are not scored (255)', () => {
    const mapping = mapClasses(['sky', 'road', 'pole', 'tram'], ['road', 'sky', 'person']);
    expect([...mapping.lut.slice(0, 5)]).toEqual([1, 0, 255, 255, 255]);
    expect(mapping.unmatched).toEqual(['pole', 'tram']);
  });

  it('derives paths and names from the synth layout', () => {
    expect(truthStem('demo/street.masks')).toBe('demo/street');
    expect(truthStem('demo/street.masks/')).toBe('demo/street');
    const scene = { index: 3, startFrame: 24, endFrame: 48, condition: 'snow+night' };
    expect(pictureName(scene)).toBe('scene-03-snow+night.png');
    expect(middleFrame(scene)).toBe(35);
    expect(middleFrame({ ...scene, startFrame: 0, endFrame: 1 })).toBe(0);
  });

  it('labels adapter shares, largest first', () => {
    expect(adaptersLabel([{ name: 'base', weight: 1 }])).toBe('base');
    expect(
      adaptersLabel([
        { name: 'fog', weight: 0.75 },
        { name: 'night', weight: 0.25 },
      ]),
    ).toBe('fog 0.75, night 0.25');
  });

  it('builds rows with mean adapter weights, baseline and gain, and a whole-video row', () => {
    const truth: TruthScenes = {
      classes: ['sky', 'road'],
      scenes: [
        { index: 0, startFrame: 0, endFrame: 2, condition: 'clear' },
        { index: 1, startFrame: 2, endFrame: 4, condition: 'fog+night' },
      ],
    };
    const mapping = mapClasses(truth.classes, ['sky', 'road']);
    const confusion = (gt: number[], pred: number[]) => {
      const c = new Confusion(2);
      c.add(Uint8Array.from(gt), Uint8Array.from(pred));
      return c;
    };
    const whole = (cs: Confusion[]) => {
      const c = new Confusion(2);
      for (const x of cs) x.counts.forEach((v, i) => (c.counts[i] = c.counts[i]! + v));
      return c;
    };
    const runScenes = [confusion([0, 0, 1, 1], [0, 0, 1, 1]), confusion([0, 0, 1, 1], [0, 1, 1, 1])];
    const baseScenes = [confusion([0, 0, 1, 1], [0, 0, 1, 1]), confusion([0, 0, 1, 1], [1, 1, 1, 1])];
    const run: RunScore = {
      scenes: runScenes,
      whole: whole(runScenes),
      frames: [2, 2],
      mix: [
        new Map([['base', 2]]),
        new Map([
          ['fog', 1.5],
          ['night', 0.5],
        ]),
      ],
      kept: new Map(),
      size: [2, 2],
    };
    const baseline: RunScore = { ...run, scenes: baseScenes, whole: whole(baseScenes), mix: [new Map(), new Map()] };
    const report = buildScoreReport({ outDir: 'out', truthDir: 't.masks', baselineDir: 'out/base', truth, mapping, run, baseline });
    expect(report.scenes.map((r) => r.adaptersUsed)).toEqual(['base', 'fog 0.75, night 0.25']);
    expect(report.scenes[0]!.miou).toBeCloseTo(100, 9);
    expect(report.scenes[1]!.miou).toBeCloseTo((100 * (0.5 + 2 / 3)) / 2, 9);
    expect(report.scenes[1]!.baseMiou).toBeCloseTo((100 * (0 + 0.5)) / 2, 9);
    expect(report.scenes[1]!.gain).toBeCloseTo(report.scenes[1]!.miou! - report.scenes[1]!.baseMiou!, 9);
    expect(report.whole.frames).toBe(4);
    expect(report.whole.adaptersUsed).toBe('base 0.50, fog 0.38, night 0.13');
    const table = formatScoreTable(report);
    const lines = table.split('\n');
    expect(lines.find((l) => l.startsWith('1 '))).toMatch(/^1\s+fog\+night\s+2\s+fog 0\.75, night 0\.25\s+58\.3\s+25\.0\s+\+33\.3$/);
    expect(lines.find((l) => l.startsWith('whole video'))).toMatch(/^whole video\s+4\s+base 0\.50, fog 0\.38, night 0\.13\s+\d+\.\d\s+\d+\.\d\s+\+\d+\.\d$/);
  });
});

describe('scoreRun on files', () => {
  let dir: string;
  const h = 6;
  const w = 10;
  const truth: TruthScenes = {
    classes: NAMES,
    scenes: [
      { index: 0, startFrame: 0, endFrame: 3, condition: 'clear' },
      { index: 1, startFrame: 3, endFrame: 6, condition: 'fog' },
    ],
  };
  const masks: Uint8Array[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-score-unit-'));
    await mkdir(path.join(dir, 'v.masks'));
    const random = rng(3);
    for (let i = 0; i < 6; i++) {
      const mask = randomMask(random, h, w, 5, true);
      mask[0] = 1; // at least two classes per frame
      mask[h * w - 1] = 2;
      masks.push(mask);
      await writeMaskPng(path.join(dir, 'v.masks', `${String(i).padStart(6, '0')}.png`), mask, w, h);
    }
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeRun(name: string, predict: (i: number) => Uint8Array): Promise<string> {
    const file = path.join(dir, `${name}.ndjson`);
    const lines = masks.map((_, i) => {
      const adapters = i < 3 ? [] : [{ name: 'fog', weight: 1 }];
      const line = maskLine(
        { index: i, timestampMs: i * 40, scene: i < 3 ? 0 : 1, adapters, cacheHit: null, inferenceMs: 1, workerId: 'w' },
        predict(i),
        h,
        w,
        NAMES,
      );
      return `${JSON.stringify(line)}\n`;
    });
    await writeFile(file, lines.join(''));
    return file;
  }

  it('scores a perfect prediction 100 and one all-zero frame lower, in its scene only', async () => {
    const mapping = mapClasses(truth.classes, NAMES);
    const perfect = await scoreRun({
      masksFile: await writeRun('perfect', (i) => masks[i]!),
      truthDir: path.join(dir, 'v.masks'),
      scenes: truth.scenes,
      mapping,
      keep: new Set([1]),
    });
    expect(perfect.frames).toEqual([3, 3]);
    expect(perfect.scenes.map((c) => c.miou())).toEqual([1, 1]);
    expect(perfect.kept.get(1)).toEqual(masks[1]);
    const corrupt = await scoreRun({
      masksFile: await writeRun('corrupt', (i) => (i === 4 ? new Uint8Array(h * w) : masks[i]!)),
      truthDir: path.join(dir, 'v.masks'),
      scenes: truth.scenes,
      mapping,
    });
    expect(corrupt.scenes[0]!.miou()).toBe(1);
    expect(corrupt.scenes[1]!.miou()).toBeLessThan(1);
    expect(corrupt.whole.miou()).toBeLessThan(perfect.whole.miou());
  });

  it('names the missing ground-truth PNG', async () => {
    const file = await writeRun('perfect', (i) => masks[i]!);
    const scenes = [{ index: 0, startFrame: 0, endFrame: 6, condition: 'clear' }];
    await expect(scoreRun({ masksFile: file, truthDir: path.join(dir, 'nothing.masks'), scenes, mapping: mapClasses(NAMES, NAMES) })).rejects.toThrow(
      ScoreError,
    );
    await expect(scoreRun({ masksFile: file, truthDir: path.join(dir, 'nothing.masks'), scenes, mapping: mapClasses(NAMES, NAMES) })).rejects.toThrow(
      /nothing\.masks\/000000\.png: no such file/,
    );
  });
});
