import { describe, expect, it } from 'vitest';
import { CLASSES, CLASS_NAMES } from '../../src/synth/classes.js';
import { CONDITIONS, parseCondition } from '../../src/synth/conditions.js';
import { renderScene } from '../../src/synth/render.js';

const SIZE = { width: 96, height: 96 };

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

describe('synth classes', () => {
  it('has the fixed class order with distinct palette colours', () => {
    expect(CLASS_NAMES).toEqual(['sky', 'road', 'sidewalk', 'building', 'vegetation', 'vehicle', 'person', 'pole']);
    expect(CLASSES.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(new Set(CLASSES.map((c) => c.color.join(','))).size).toBe(CLASSES.length);
  });
});

describe('renderScene', () => {
  it('is deterministic per seed, byte for byte, and differs between seeds', () => {
    const a = renderScene({ seed: 42, condition: 'rain+night', intensity: 0.8, t: 5, ...SIZE });
    const b = renderScene({ seed: 42, condition: 'rain+night', intensity: 0.8, t: 5, ...SIZE });
    const c = renderScene({ seed: 43, condition: 'rain+night', intensity: 0.8, t: 5, ...SIZE });
    expect(Buffer.from(a.rgb).equals(Buffer.from(b.rgb))).toBe(true);
    expect(Buffer.from(a.mask).equals(Buffer.from(b.mask))).toBe(true);
    expect(Buffer.from(a.mask).equals(Buffer.from(c.mask))).toBe(false);
    expect(a.rgb.length).toBe(96 * 96 * 3);
    expect(a.mask.length).toBe(96 * 96);
  });

  it('writes only valid class indices, and all classes appear across a few scenes', () => {
    const seen = new Array<number>(CLASSES.length).fill(0);
    for (let seed = 1; seed <= 8; seed++) {
      const { mask } = renderScene({ seed, width: 160, height: 160 });
      for (const v of mask) seen[v] = (seen[v] ?? 0) + 1;
    }
    expect(seen.length, 'no index beyond the class list').toBe(CLASSES.length);
    // Every class, small ones included, shows up with a usable number of pixels.
    for (const [i, count] of seen.entries()) expect(count, CLASS_NAMES[i]).toBeGreaterThan(100);
  });

  it.each(CONDITIONS.filter((c) => c !== 'clear'))('%s changes the image strongly but never the mask', (condition) => {
    const clear = renderScene({ seed: 7, condition: 'clear', t: 3, ...SIZE });
    const adverse = renderScene({ seed: 7, condition, intensity: 0.75, t: 3, ...SIZE });
    expect(Buffer.from(adverse.mask).equals(Buffer.from(clear.mask))).toBe(true);
    expect(meanAbsDiff(adverse.rgb, clear.rgb)).toBeGreaterThan(20);
  });

  it('scales the effect with intensity', () => {
    const clear = renderScene({ seed: 9, condition: 'fog', intensity: 0, ...SIZE });
    const light = renderScene({ seed: 9, condition: 'fog', intensity: 0.3, ...SIZE });
    const heavy = renderScene({ seed: 9, condition: 'fog', intensity: 1, ...SIZE });
    expect(meanAbsDiff(heavy.rgb, clear.rgb)).toBeGreaterThan(meanAbsDiff(light.rgb, clear.rgb));
  });

  it('keeps consecutive frames of a scene similar (smooth motion, no flicker)', () => {
    for (const condition of ['clear', 'rain', 'snow+night'] as const) {
      const f0 = renderScene({ seed: 11, condition, intensity: 0.9, t: 10, ...SIZE });
      const f1 = renderScene({ seed: 11, condition, intensity: 0.9, t: 11, ...SIZE });
      expect(meanAbsDiff(f0.rgb, f1.rgb), condition).toBeLessThan(12);
    }
  });

  it('keeps conditions apart in simple global colour statistics', () => {
    // Nearest centroid (leave one out) on mean/std/saturation/clipping features: an
    // embedding that sees only global colour and contrast must tell conditions apart.
    const features: { condition: string; f: number[] }[] = [];
    for (const condition of CONDITIONS) {
      for (let seed = 0; seed < 5; seed++) {
        const { rgb } = renderScene({ seed: 300 + seed, condition, intensity: 0.75, width: 64, height: 64 });
        features.push({ condition, f: stats(rgb) });
      }
    }
    const dims = features[0]!.f.length;
    const mu = Array.from({ length: dims }, (_, k) => features.reduce((s, x) => s + x.f[k]!, 0) / features.length);
    const sd = Array.from({ length: dims }, (_, k) => Math.sqrt(features.reduce((s, x) => s + (x.f[k]! - mu[k]!) ** 2, 0) / features.length) + 1e-9);
    for (const x of features) x.f = x.f.map((v, k) => (v - mu[k]!) / sd[k]!);
    let correct = 0;
    for (const [i, x] of features.entries()) {
      let best = '';
      let bestD = Infinity;
      for (const condition of CONDITIONS) {
        const others = features.filter((y, j) => j !== i && y.condition === condition);
        const centroid = Array.from({ length: dims }, (_, k) => others.reduce((s, y) => s + y.f[k]!, 0) / others.length);
        const d = centroid.reduce((s, v, k) => s + (v - x.f[k]!) ** 2, 0);
        if (d < bestD) {
          bestD = d;
          best = condition;
        }
      }
      if (best === x.condition) correct++;
    }
    expect(correct / features.length).toBeGreaterThan(0.8);
  });

  it('rejects unknown conditions', () => {
    expect(() => renderScene({ seed: 1, condition: 'hail' })).toThrow(/unknown condition/);
    expect(parseCondition('night+fog')?.name).toBe('fog+night');
  });
});

function stats(rgb: Uint8Array): number[] {
  const n = rgb.length / 3;
  const mean = [0, 0, 0];
  const sq = [0, 0, 0];
  let sat = 0;
  let bright = 0;
  let dark = 0;
  for (let i = 0; i < n; i++) {
    const r = rgb[i * 3]! / 255;
    const g = rgb[i * 3 + 1]! / 255;
    const b = rgb[i * 3 + 2]! / 255;
    for (const [k, v] of [r, g, b].entries()) {
      mean[k]! += v;
      sq[k]! += v * v;
    }
    sat += Math.max(r, g, b) - Math.min(r, g, b);
    const l = 0.3 * r + 0.59 * g + 0.11 * b;
    if (l > 0.75) bright++;
    if (l < 0.15) dark++;
  }
  const m = mean.map((v) => v / n);
  const s = sq.map((v, k) => Math.sqrt(Math.max(0, v / n - m[k]! ** 2)));
  return [...m, ...s, sat / n, bright / n, dark / n];
}
