import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { planModelInput } from '../../src/shared/model-input-plan.js';
import { CLASSES } from '../../src/synth/classes.js';
import { parseCondition } from '../../src/synth/conditions.js';
import { parseModelInput, parseSizes } from '../../src/synth/options.js';
import { MASK_PADDING } from '../../src/synth/still.js';
import { renderStills } from '../../src/synth/stills.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'synth-model-input-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const conditions = ['clear', 'rain+night'].map((c) => parseCondition(c)!);

async function readMeta(dir: string): Promise<Record<string, unknown>[]> {
  return (await readFile(path.join(dir, 'meta.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function readMask(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

describe('--model-input: stills through planModelInput and the producer resizer', () => {
  it('parses fit and letterbox specs and rejects others', () => {
    expect(parseModelInput('fit:28672:16:448')).toMatchObject({ fit: { pixels: 28672, stride: 16, maxSide: 448 } });
    expect(parseModelInput('fit:28672:16:448:1.4').fit).toEqual({ pixels: 28672, stride: 16, maxSide: 448, smallSourceScale: 1.4 });
    expect(() => parseModelInput('fit:28672:16:448:0.5')).toThrow(/SMALLSCALE/);
    expect(parseModelInput('letterbox:256x192')).toEqual({ width: 256, height: 192 });
    expect(() => parseModelInput('fit:28672:16')).toThrow(/--model-input/);
    expect(() => parseModelInput('224x128')).toThrow(/fit:PIXELS:STRIDE:MAXSIDE/);
    expect(parseSizes('640x360, 1280x720')).toEqual([
      { width: 640, height: 360 },
      { width: 1280, height: 720 },
    ]);
  });

  it('fit: writes PNGs at the plan size, meta with source and model sizes, valid masks, across sizes of one aspect', async () => {
    const dir = await tempDir();
    const modelInput = parseModelInput('fit:28672:16:448');
    const sizes = [
      { width: 320, height: 180 },
      { width: 640, height: 360 },
    ];
    const plan = planModelInput(modelInput, 320, 180);
    expect([plan.width, plan.height]).toEqual([224, 128]);
    await renderStills({ dir, count: 4, width: 320, height: 180, sizes, modelInput, seed: 3, conditions, workers: 2 });
    const metas = await readMeta(dir);
    expect(metas.map((m) => [m.sourceWidth, m.sourceHeight, m.width, m.height])).toEqual([
      [320, 180, 224, 128],
      [320, 180, 224, 128],
      [640, 360, 224, 128],
      [640, 360, 224, 128],
    ]);
    for (const m of metas) {
      const image = await sharp(path.join(dir, 'images', `${String(m.id)}.png`)).metadata();
      expect([image.width, image.height, image.channels]).toEqual([224, 128, 3]);
      const mask = await readMask(path.join(dir, 'masks', `${String(m.id)}.png`));
      expect([mask.width, mask.height]).toEqual([224, 128]);
      expect(Math.max(...mask.data)).toBeLessThan(CLASSES.length);
      expect(new Set(mask.data).size).toBeGreaterThan(2);
    }
  });

  it('letterbox: pads the mask with 255 outside the plan rect and keeps classes inside', async () => {
    const dir = await tempDir();
    const modelInput = parseModelInput('letterbox:128x128');
    await renderStills({ dir, count: 1, width: 256, height: 144, modelInput, seed: 9, conditions, workers: 1 });
    const [meta] = await readMeta(dir);
    expect(meta).toMatchObject({ sourceWidth: 256, sourceHeight: 144, width: 128, height: 128 });
    const { rect } = planModelInput(modelInput, 256, 144);
    const mask = await readMask(path.join(dir, 'masks', '000000.png'));
    expect([mask.width, mask.height]).toEqual([128, 128]);
    for (let y = 0; y < 128; y++) {
      for (let x = 0; x < 128; x++) {
        const inside = x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height;
        const v = mask.data[y * 128 + x]!;
        if (inside) expect(v).toBeLessThan(CLASSES.length);
        else expect(v).toBe(MASK_PADDING);
      }
    }
    const image = await sharp(path.join(dir, 'images', '000000.png'))
      .raw()
      .toBuffer();
    expect(image[0]).toBe(0); // black padding, as the producer sends it
  });

  it('rejects sizes that map to different model input sizes, and several sizes without --model-input', async () => {
    const dir = await tempDir();
    const modelInput = parseModelInput('fit:28672:16:448');
    const sizes = [
      { width: 640, height: 360 },
      { width: 640, height: 480 },
    ];
    await expect(renderStills({ dir, count: 2, width: 640, height: 360, sizes, modelInput, seed: 1, conditions, workers: 1 })).rejects.toThrow(
      /different model input sizes/,
    );
    await expect(renderStills({ dir, count: 2, width: 640, height: 360, sizes, seed: 1, conditions, workers: 1 })).rejects.toThrow(/need --model-input/);
  });
});
