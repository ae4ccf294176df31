import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EVAL_SEED, renderEvalVideos, type EvalVideo } from '../../src/eval/eval-videos.js';
import { evaluateVideos, type EvalCell, type EvalReport } from '../../src/eval/evaluate.js';
import { formatEvalReport } from '../../src/eval/report-table.js';
import { createLogger } from '../../src/shared/logger.js';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { planModelInput } from '../../src/shared/model-input-plan.js';
import { REPO_ROOT } from '../helpers/cli.js';

/**
 * A small version of `streamseg eval` on the shipped model: held-out videos at a 16:9 and a
 * portrait size go through the product's decode, scene cuts, resize, retrieval, engine and
 * upscaling, and the masks at source resolution must keep the quality the README states (with
 * margin for 8-frame scenes). A regression anywhere on that path fails here.
 */
describe('product-path evaluation of models/default', () => {
  let dir: string;
  let videos: EvalVideo[];
  let report: EvalReport;
  const sizes = ['320x180', '360x640'];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-product-eval-'));
    const pkg = await loadModelPackage(path.join(REPO_ROOT, 'models/default'));
    videos = await renderEvalVideos({
      dir,
      sizes,
      conditions: ['clear', 'fog', 'night', 'fog+night'],
      scenesPerCondition: 1,
      compositionScenes: 2,
      framesPerScene: 8,
      seed: DEFAULT_EVAL_SEED,
    });
    report = await evaluateVideos({ pkg, videos, methods: ['base', 'weightedCat', 'oracle'], intraOpThreads: 2, logger: createLogger('warn') });
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cell = (size: string, condition: string): EvalCell => {
    const found = report.cells.find((c) => c.size === size && c.condition === condition);
    if (!found) throw new Error(`no cell ${condition} at ${size}`);
    return found;
  };

  it('feeds the model the input the producer plans for each size, and scores every frame', async () => {
    const { manifest } = await loadModelPackage(path.join(REPO_ROOT, 'models/default'));
    for (const size of sizes) {
      const [w, h] = size.split('x').map(Number) as [number, number];
      const plan = planModelInput(manifest.input, w, h);
      expect(cell(size, 'clear').input).toBe(`${plan.width}x${plan.height}`);
    }
    // 4 conditions, plus the composition's second scene in its own video per size
    expect(report.settings.videos).toBe(sizes.length * 2);
    expect(report.settings.frames).toBe(sizes.length * 5 * 8);
    expect(formatEvalReport(report)).toContain('source 360x640');
  });

  it('scores each composition on its extra scenes too, and counts the scenes where the product lost to the base', () => {
    for (const size of sizes) {
      expect(cell(size, 'fog+night').scenes).toBe(2);
      expect(cell(size, 'clear').scenes).toBe(1);
      for (const c of report.cells.filter((c) => c.size === size)) {
        expect(c.scenesBelowBase).toBeGreaterThanOrEqual(0);
        expect(c.scenesBelowBase).toBeLessThanOrEqual(c.scenes);
        // a one-scene cell's mIoU is its scene's, so the count follows from the cell's figures
        if (c.scenes === 1) expect(c.scenesBelowBase).toBe(c.miou.weightedCat! < c.miou.base! ? 1 : 0);
      }
    }
    const table = formatEvalReport(report);
    expect(table).toContain('scenes < base');
    expect(table).toMatch(/fog\+night .* [0-2]\/2 /);
  });

  it.each(sizes)('at %s: the base model is good on clear, the own adapter lifts fog and night, retrieval finds them', (size) => {
    expect(cell(size, 'clear').miou.base!).toBeGreaterThan(0.6);
    for (const condition of ['fog', 'night']) {
      const c = cell(size, condition);
      expect(c.miou.oracle! - c.miou.base!).toBeGreaterThan(0.1);
      expect(Object.keys(c.mix)[0]).toBe(condition);
    }
    const composed = cell(size, 'fog+night');
    expect(composed.miou.weightedCat!).toBeGreaterThan(composed.miou.base!);
  });
});
