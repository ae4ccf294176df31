import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScoreReport } from '../../src/eval/score-output.js';
import { maskLine, type MaskLine } from '../../src/workers/sink/mask-writer.js';
import { runCli } from '../helpers/cli.js';

/**
 * `streamseg score` as a user runs it: synth renders a tiny two-scene video with ground truth,
 * `streamseg run` segments it (own redis-server, the 64x64 fixture model), `score` compares.
 */

const TEST_MODEL = 'test/fixtures/test-model';
const ENV: NodeJS.ProcessEnv = { REDIS_URL: undefined, LOG_LEVEL: undefined, STREAMSEG_MODEL: TEST_MODEL };
const W = 160;
const H = 96;
const CLASS_NAMES = ['sky', 'road', 'sidewalk', 'building', 'vegetation', 'vehicle', 'person', 'pole'];

/** The table's data rows: scene rows and the whole-video row, split into their cells. */
function tableRows(stdout: string): { scenes: string[][]; whole: string[] | undefined } {
  const lines = stdout.split('\n');
  const scenes = lines.filter((l) => /^\d+\s/.test(l)).map((l) => l.split(/\s{2,}/));
  const whole = lines.find((l) => l.startsWith('whole video'))?.split(/\s{2,}/);
  return { scenes, whole };
}

/** The numeric cells (mIoU, base, gain) at the end of a row, after the adapters column. */
const miouOf = (row: string[], fromEnd = 0): number => Number(row[row.length - 1 - fromEnd]);

async function readLines(file: string): Promise<MaskLine[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MaskLine);
}

async function writeLines(dir: string, lines: readonly MaskLine[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'masks.ndjson'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}

describe('streamseg score', () => {
  let dir: string;
  let video: string;
  let truthDir: string;
  let outDir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-score-cli-'));
    video = path.join(dir, 'street.mp4');
    truthDir = path.join(dir, 'street.masks');
    const synth = await runCli(['synth', '--out', video, '--size', `${W}x${H}`, '--frames', '16', '--scene-conditions', 'clear,fog', '--seed', '1']);
    expect(synth.code, synth.stderr).toBe(0);
    outDir = path.join(dir, 'out');
    const run = await runCli(['run', video, '--out', outDir], ENV);
    expect(run.code, run.stderr).toBe(0);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints one row per ground-truth scene plus the whole video, mIoU in [0, 100], and writes a picture per scene', async () => {
    const pictures = path.join(dir, 'pictures');
    const result = await runCli(['score', outDir, '--truth', truthDir, '--pictures', pictures], ENV);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const { scenes, whole } = tableRows(result.stdout);
    expect(scenes.map((r) => [r[0], r[1], r[2]])).toEqual([
      ['0', 'clear', '8'],
      ['1', 'fog', '8'],
    ]);
    expect(whole?.[1]).toBe('16');
    for (const row of [...scenes, whole!]) {
      expect(row[row.length - 2]).toMatch(/^(base|[\w+-]+ \d\.\d\d(, [\w+-]+ \d\.\d\d)*)$/); // the fixture model has no adapters: base
      expect(row[row.length - 1]).toMatch(/^\d{1,3}\.\d$/);
      expect(miouOf(row)).toBeGreaterThanOrEqual(0);
      expect(miouOf(row)).toBeLessThanOrEqual(100);
    }
    for (const name of ['scene-00-clear.png', 'scene-01-fog.png']) {
      const meta = await sharp(path.join(pictures, name)).metadata();
      expect([meta.width, meta.height], name).toEqual([3 * W + 8, H]);
    }

    const json = await runCli(['score', outDir, '--truth', truthDir, '--json'], ENV);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as ScoreReport;
    expect(report.scenes.map((s) => [s.scene, s.condition, s.frames, s.adaptersUsed])).toEqual([
      [0, 'clear', 8, 'base'],
      [1, 'fog', 8, 'base'],
    ]);
    // The table rounds what --json prints.
    expect(report.scenes.map((s) => s.miou!.toFixed(1))).toEqual(scenes.map((r) => r[r.length - 1]));
    expect(report.whole.miou!.toFixed(1)).toBe(whole![whole!.length - 1]);
  });

  it('scores the ground truth itself 100, one frame corrupted to all zeros lower (in its scene and overall), with gain against a baseline', async () => {
    // The run's own lines with their masks replaced by the ground truth's: a perfect output.
    const lines = await readLines(path.join(outDir, 'masks.ndjson'));
    const perfect: MaskLine[] = [];
    for (const line of lines) {
      const png = path.join(truthDir, `${String(line.index).padStart(6, '0')}.png`);
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      const mask = Uint8Array.from({ length: W * H }, (_, i) => data[i * info.channels]!);
      perfect.push(maskLine({ ...line, inferenceMs: 0, workerId: 'test' }, mask, H, W, CLASS_NAMES));
    }
    const perfectDir = path.join(dir, 'perfect');
    await writeLines(perfectDir, perfect);
    // Frame 12 (the fog scene) predicted as all class 0 (sky).
    const corruptDir = path.join(dir, 'corrupt');
    await writeLines(
      corruptDir,
      perfect.map((l) => (l.index === 12 ? maskLine({ ...l, inferenceMs: 0, workerId: 'test' }, new Uint8Array(W * H), H, W, CLASS_NAMES) : l)),
    );

    const good = await runCli(['score', perfectDir, '--truth', truthDir, '--baseline', corruptDir], ENV);
    expect(good.code, good.stderr).toBe(0);
    const g = tableRows(good.stdout);
    expect(g.scenes.map((r) => miouOf(r, 2))).toEqual([100, 100]);
    expect(miouOf(g.whole!, 2)).toBe(100);

    const bad = await runCli(['score', corruptDir, '--truth', truthDir, '--json'], ENV);
    expect(bad.code, bad.stderr).toBe(0);
    const report = JSON.parse(bad.stdout) as ScoreReport;
    expect(report.scenes[0]!.miou).toBe(100);
    expect(report.scenes[1]!.miou).toBeLessThan(100);
    expect(report.whole.miou).toBeLessThan(100);

    // The baseline columns: base = the corrupted run, gain = perfect − corrupted.
    expect(miouOf(g.scenes[0]!, 1)).toBe(100);
    expect(miouOf(g.scenes[0]!)).toBe(0);
    expect(miouOf(g.scenes[1]!, 1)).toBeCloseTo(report.scenes[1]!.miou!, 1);
    expect(miouOf(g.scenes[1]!)).toBeGreaterThan(0);
  });

  const MISSING: { name: string; args: (d: string) => string[]; names: (d: string) => string; says: RegExp }[] = [
    {
      name: 'a missing out dir',
      args: (d) => ['score', path.join(d, 'nope'), '--truth', path.join(d, 'street.masks')],
      names: (d) => path.join(d, 'nope'),
      says: /no such directory.*streamseg run/,
    },
    {
      name: 'an out dir without masks.ndjson',
      args: (d) => ['score', path.join(d, 'street.masks'), '--truth', path.join(d, 'street.masks')],
      names: (d) => path.join(d, 'street.masks', 'masks.ndjson'),
      says: /no such file.*streamseg run/,
    },
    {
      name: 'a missing truth dir',
      args: (d) => ['score', path.join(d, 'out'), '--truth', path.join(d, 'gone.masks')],
      names: (d) => path.join(d, 'gone.masks'),
      says: /no such directory.*--truth/,
    },
  ];

  it.each(MISSING)('$name: exit 1 and one line naming what is missing and what to do', async (c) => {
    const result = await runCli(c.args(dir), ENV);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^streamseg: E_SCORE_NOT_FOUND: [^\n]+\n$/);
    expect(result.stderr).toContain(c.names(dir));
    expect(result.stderr).toMatch(c.says);
  });
});
