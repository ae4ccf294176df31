import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConditions } from '../../src/synth/options.js';
import { planScenes, renderVideo, type ScenesFile } from '../../src/synth/index.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('sceneConditions: one scene per listed condition, in order', () => {
  it('plans exactly the listed conditions, repeats allowed, whatever --scenes says', () => {
    const sceneConditions = parseConditions('clear,fog,fog,fog+night');
    for (const seed of [1, 2, 3]) {
      const plan = planScenes({ frames: 64, scenes: 2, seed, conditions: parseConditions('snow'), sceneConditions });
      expect(plan.map((s) => s.condition)).toEqual(['clear', 'fog', 'fog', 'fog+night']);
      expect(plan.at(-1)!.endFrame).toBe(64);
    }
  });

  it('renders a video whose scenes.json lists those conditions in order', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'synth-scene-conditions-'));
    dirs.push(dir);
    const out = path.join(dir, 'eval.mp4');
    const sceneConditions = parseConditions('clear,fog,fog+night');
    const result = await renderVideo({ out, frames: 24, scenes: 1, width: 64, height: 48, fps: 12, seed: 4, conditions: sceneConditions, sceneConditions });
    const doc = JSON.parse(await readFile(result.scenesPath, 'utf8')) as ScenesFile;
    expect(doc.scenes.map((s) => s.condition)).toEqual(['clear', 'fog', 'fog+night']);
    await expect(
      renderVideo({ out, frames: 16, scenes: 1, width: 64, height: 48, fps: 12, seed: 4, conditions: sceneConditions, sceneConditions }),
    ).rejects.toThrow(/too few/);
  }, 60_000);
});
