import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseCondition } from '../../src/synth/conditions.js';
import { parseConditions, parseFps, parseIntFlag, parseIntensity, parseSize } from '../../src/synth/options.js';
import { MIN_SCENE_FRAMES, planScenes } from '../../src/synth/scene-plan.js';
import { SynthError } from '../../src/synth/synth-error.js';

const run = promisify(execFile);

function optionError(fn: () => unknown): SynthError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SynthError) return error;
    throw error;
  }
  throw new Error('expected a SynthError');
}

describe('synth flag parsing', () => {
  it('parses sizes and rejects bad ones naming the flag', () => {
    expect(parseSize('256x128')).toEqual({ width: 256, height: 128 });
    const e = optionError(() => parseSize('256'));
    expect(e.code).toBe('E_SYNTH_OPTION');
    expect(e.message).toMatch(/^--size "256": expected WIDTHxHEIGHT/);
    expect(optionError(() => parseSize('255x256', '--size', { even: true })).message).toMatch(/even/);
    expect(optionError(() => parseSize('8x8')).message).toMatch(/between 32 and 4096/);
  });

  it('parses conditions into canonical compositions and rejects unknown ones', () => {
    expect(parseConditions('fog, night+fog,Rain').map((c) => c.name)).toEqual(['fog', 'fog+night', 'rain']);
    expect(parseCondition('dusk+snow')?.components).toEqual(['snow', 'dusk']);
    expect(parseCondition('fog+rain')).toBeNull();
    expect(parseCondition('night+dusk')).toBeNull();
    expect(optionError(() => parseConditions('fog,hail')).message).toMatch(/--conditions "hail": unknown condition; use one or more of clear, fog/);
  });

  it('parses numbers, intensities and frame rates', () => {
    expect(parseIntFlag('12', '--count', 1)).toBe(12);
    expect(optionError(() => parseIntFlag('0', '--count', 1)).message).toMatch(/--count "0"/);
    expect(optionError(() => parseIntFlag('1.5', '--frames', 8)).message).toMatch(/whole number/);
    expect(parseIntensity('0.7')).toEqual([0.7, 0.7]);
    expect(parseIntensity('0.5-1')).toEqual([0.5, 1]);
    expect(optionError(() => parseIntensity('0.9-0.2')).message).toMatch(/--intensity/);
    expect(parseFps('29.97')).toBeCloseTo(29.97);
    expect(optionError(() => parseFps('0')).message).toMatch(/--fps/);
  });
});

describe('planScenes', () => {
  const conditions = ['clear', 'fog', 'night', 'fog+night'].map((c) => parseCondition(c)!);

  it('splits frames into varied scenes of at least 8 frames that tile [0, N)', () => {
    for (const [frames, scenes] of [
      [120, 4],
      [32, 4],
      [500, 7],
      [9, 1],
    ] as const) {
      const plan = planScenes({ frames, scenes, seed: frames, conditions });
      expect(plan).toHaveLength(scenes);
      expect(plan[0]!.startFrame).toBe(0);
      expect(plan.at(-1)!.endFrame).toBe(frames);
      for (const [i, s] of plan.entries()) {
        expect(s.endFrame - s.startFrame).toBeGreaterThanOrEqual(MIN_SCENE_FRAMES);
        if (i > 0) {
          expect(s.startFrame).toBe(plan[i - 1]!.endFrame);
          expect(s.condition).not.toBe(plan[i - 1]!.condition);
          expect(s.layoutSeed).not.toBe(plan[i - 1]!.layoutSeed);
        }
      }
    }
    const lengths = planScenes({ frames: 500, scenes: 7, seed: 2, conditions }).map((s) => s.endFrame - s.startFrame);
    expect(new Set(lengths).size).toBeGreaterThan(3);
  });

  it('prefers a next condition sharing no component with the previous one', () => {
    const plan = planScenes({ frames: 400, scenes: 40, seed: 9, conditions });
    for (let i = 1; i < plan.length; i++) {
      const shared = plan[i]!.components.filter((c) => plan[i - 1]!.components.includes(c));
      expect(shared, `${plan[i - 1]!.condition} -> ${plan[i]!.condition}`).toEqual([]);
    }
  });

  it('is deterministic per seed', () => {
    expect(planScenes({ frames: 120, scenes: 4, seed: 5, conditions })).toEqual(planScenes({ frames: 120, scenes: 4, seed: 5, conditions }));
  });
});

describe('streamseg synth (CLI)', () => {
  const cli = ['tsx', 'src/cli/main.ts', 'synth'];
  async function fails(args: string[]): Promise<string> {
    try {
      await run('npx', [...cli, ...args], { cwd: process.cwd() });
    } catch (error) {
      const e = error as { code: number; stderr: string };
      expect(e.code).toBe(1);
      return e.stderr;
    }
    throw new Error('expected the command to fail');
  }

  it('fails with one line naming the flag', async () => {
    const [conditions, frames, mode] = await Promise.all([
      fails(['--stills', '/tmp/x', '--conditions', 'fog,hail']),
      fails(['--out', '/tmp/x.mp4', '--frames', '20', '--scenes', '3']),
      fails(['--frames', '20']),
    ]);
    expect(conditions).toMatch(/streamseg: E_SYNTH_OPTION: --conditions "hail"/);
    expect(frames).toMatch(/--frames 20 is too few for --scenes 3.*--frames >= 24/);
    expect(mode).toMatch(/exactly one of --out FILE.mp4 .* or --stills DIR/);
  });
});
