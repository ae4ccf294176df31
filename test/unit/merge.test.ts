import { describe, expect, it } from 'vitest';
import type { LoraTarget } from '../../src/shared/model-manifest.js';
import type { AdapterTarget, LoadedAdapter } from '../../src/shared/adapters/adapter-loader.js';
import { denseDelta, mergeAdapters, mergedDelta, relativeError, type WeightedAdapter } from '../../src/workers/adapters/merge.js';
import { TEST_TARGETS, randomMatrix, rng } from '../fixtures/adapters/adapter-fixtures.js';

function makeAdapter(name: string, seed: number, r: number, alpha: number, targets: readonly LoraTarget[] = TEST_TARGETS, skip: string[] = []): LoadedAdapter {
  const random = rng(seed);
  const map = new Map<string, AdapterTarget>();
  for (const t of targets) {
    if (skip.includes(t.module)) continue;
    map.set(t.module, { module: t.module, in: t.in, out: t.out, r, A: randomMatrix(r, t.in, random), B: randomMatrix(t.out, r, random), scaling: alpha / r });
  }
  return { name, version: `v${seed}`, r, alpha, targets: map, byteLength: 0, source: name };
}

function frobenius(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

const inputs: WeightedAdapter[] = [
  { adapter: makeAdapter('fog', 1, 4, 8), weight: 0.5 },
  { adapter: makeAdapter('night', 2, 8, 8), weight: 0.3 },
  { adapter: makeAdapter('rain', 3, 2, 16, TEST_TARGETS, ['head.proj']), weight: 0.2 },
];

describe('merge', () => {
  it('cat equals the dense reference ΔW = Σ w_i s_i B_i A_i (relative error ≤ 1e-5)', () => {
    const merged = mergeAdapters(inputs, TEST_TARGETS, { method: 'cat' });
    for (const target of TEST_TARGETS) {
      const m = merged.get(target.module)!;
      const expectedRank = target.module === 'head.proj' ? 12 : 14;
      expect(m.r).toBe(expectedRank);
      expect(m.A.length).toBe(expectedRank * target.in);
      expect(m.B.length).toBe(target.out * expectedRank);
      expect(relativeError(mergedDelta(m), denseDelta(inputs, target))).toBeLessThanOrEqual(1e-5);
    }
  });

  it('svd with rank ≥ rank ΔW equals the dense reference', () => {
    const merged = mergeAdapters(inputs, TEST_TARGETS, { method: 'svd', svdRank: 64 });
    for (const target of TEST_TARGETS) {
      const m = merged.get(target.module)!;
      // rank ΔW ≤ min(in, out, Σ r_i); the merge never returns more than Σ r_i components
      expect(m.r).toBeLessThanOrEqual(14);
      expect(relativeError(mergedDelta(m), denseDelta(inputs, target))).toBeLessThanOrEqual(1e-5);
    }
  });

  it('svd truncation is the optimal rank-k approximation (Pythagoras: ‖ΔW‖² = ‖ΔW_k‖² + ‖ΔW − ΔW_k‖²)', () => {
    const target = TEST_TARGETS[1]!; // 16 → 48, Σ r_i = 14
    const dense = denseDelta(inputs, target);
    const errors: number[] = [];
    for (const k of [1, 4, 8, 13]) {
      const m = mergeAdapters(inputs, [target], { method: 'svd', svdRank: k }).get(target.module)!;
      expect(m.r).toBe(k);
      const approx = mergedDelta(m);
      const residual = dense.map((v, i) => v - approx[i]!);
      expect(frobenius(dense) ** 2).toBeCloseTo(frobenius(approx) ** 2 + frobenius(residual) ** 2, 3);
      // residual is orthogonal to the approximation
      let dot = 0;
      for (let i = 0; i < dense.length; i++) dot += residual[i]! * approx[i]!;
      expect(Math.abs(dot)).toBeLessThan(1e-6 * frobenius(dense) ** 2);
      errors.push(relativeError(approx, dense));
    }
    for (let i = 1; i < errors.length; i++) expect(errors[i]!).toBeLessThan(errors[i - 1]!);
    // default rank: the largest input rank (8)
    expect(mergeAdapters(inputs, [target], { method: 'svd' }).get(target.module)!.r).toBe(8);
  });

  it('svd handles rank-deficient inputs (duplicate adapter, zero B) exactly', () => {
    const a = makeAdapter('a', 9, 4, 4);
    const zeroB = makeAdapter('z', 10, 4, 4);
    for (const t of zeroB.targets.values()) t.B.fill(0);
    const dup: WeightedAdapter[] = [
      { adapter: a, weight: 0.5 },
      { adapter: a, weight: 0.25 },
      { adapter: zeroB, weight: 0.25 },
    ];
    const merged = mergeAdapters(dup, TEST_TARGETS, { method: 'svd', svdRank: 12 });
    for (const target of TEST_TARGETS) {
      const m = merged.get(target.module)!;
      expect(relativeError(mergedDelta(m), denseDelta(dup, target))).toBeLessThanOrEqual(1e-5);
      // components beyond rank ΔW (= 4) carry nothing
      const extra = Array.from(m.B).filter((_, i) => i % m.r >= 4);
      expect(frobenius(extra)).toBeLessThan(1e-6);
    }
  });

  // Both shapes: the merge takes the QR of the factor with fewer rows (Acᵀ when in < out, else Bc).
  it.each([
    [40, 96],
    [96, 40],
  ])('svd stays at working precision on ill-conditioned (graded) factors, in %i, out %i', (cin, cout) => {
    // Columns of B and rows of A decay by 10× per index: each factor has condition number ~1e7
    // and ΔW's singular values span ~14 decades. A merge that rebuilt a factor through the
    // inverse of a Gram/Cholesky R, or from the core's less accurate singular vectors, loses the
    // small components here; one that keeps Q from Gram–Schmidt and an orthogonal V does not.
    const target: LoraTarget = { module: 'm', in: cin, out: cout, inputA: 'm.lora_A', inputB: 'm.lora_B' };
    const random = rng(42);
    const graded = (seed: number, weight: number): WeightedAdapter => {
      const r = 6;
      const A = randomMatrix(r, target.in, random);
      const B = randomMatrix(target.out, r, random);
      for (let j = 0; j < r; j++) {
        for (let c = 0; c < target.in; c++) A[j * target.in + c] = A[j * target.in + c]! * 0.1 ** j;
        for (let o = 0; o < target.out; o++) B[o * r + j] = B[o * r + j]! * 0.1 ** j;
      }
      const adapter: LoadedAdapter = {
        name: `g${seed}`,
        version: `v${seed}`,
        r,
        alpha: 12,
        targets: new Map([['m', { module: 'm', in: target.in, out: target.out, r, A, B, scaling: 2 }]]),
        byteLength: 0,
        source: `g${seed}`,
      };
      return { adapter, weight };
    };
    const mix = [graded(1, 0.5), graded(2, 0.3), graded(3, 0.2)];
    const dense = denseDelta(mix, target);
    const full = mergeAdapters(mix, [target], { method: 'svd', svdRank: 18 }).get('m')!;
    // float32 outputs: a few units of float32 rounding
    expect(relativeError(mergedDelta(full), dense)).toBeLessThanOrEqual(1e-6);
    const top = mergeAdapters(mix, [target], { method: 'svd', svdRank: 6 }).get('m')!;
    const approx = mergedDelta(top);
    const residual = dense.map((v, i) => v - approx[i]!);
    const total = frobenius(dense) ** 2;
    expect(Math.abs(total - frobenius(approx) ** 2 - frobenius(residual) ** 2) / total).toBeLessThan(1e-7);
  });

  it('linear averages A and B separately, scaling folded into B (hand-computed)', () => {
    const target: LoraTarget = { module: 'm', in: 2, out: 1, inputA: 'm.lora_A', inputB: 'm.lora_B' };
    const one = (name: string, A: number[], B: number[], alpha: number): LoadedAdapter => ({
      name,
      version: name,
      r: 1,
      alpha,
      targets: new Map([['m', { module: 'm', in: 2, out: 1, r: 1, A: Float32Array.from(A), B: Float32Array.from(B), scaling: alpha }]]),
      byteLength: 0,
      source: name,
    });
    const merged = mergeAdapters(
      [
        { adapter: one('p', [1, 2], [3], 1), weight: 0.25 },
        { adapter: one('q', [0, 1], [2], 2), weight: 0.75 },
      ],
      [target],
      { method: 'linear' },
    ).get('m')!;
    // A = 0.25·[1,2] + 0.75·[0,1] = [0.25, 1.25]; B = 0.25·1·3 + 0.75·2·2 = 3.75
    expect(Array.from(merged.A)).toEqual([0.25, 1.25]);
    expect(Array.from(merged.B)).toEqual([3.75]);
    expect(Array.from(mergedDelta(merged))).toEqual([0.9375, 4.6875]);
  });

  it('linear of one adapter with weight 1 is that adapter exactly; differing ranks are zero-padded', () => {
    const single = [{ adapter: inputs[0]!.adapter, weight: 1 }];
    for (const target of TEST_TARGETS) {
      const m = mergeAdapters(single, TEST_TARGETS, { method: 'linear' }).get(target.module)!;
      expect(relativeError(mergedDelta(m), denseDelta(single, target))).toBeLessThanOrEqual(1e-6);
    }
    const mixed = mergeAdapters(inputs, TEST_TARGETS, { method: 'linear' });
    expect(mixed.get('enc.attn0.qkv')!.r).toBe(8);
  });

  it('gives rank 0 for a target no adapter touches and skips zero weights', () => {
    const only = [{ adapter: makeAdapter('x', 5, 2, 2, TEST_TARGETS, ['head.proj']), weight: 1 }];
    for (const method of ['linear', 'cat', 'svd'] as const) {
      const m = mergeAdapters(only, TEST_TARGETS, { method }).get('head.proj')!;
      expect(m.r).toBe(0);
      expect(m.A.length).toBe(0);
    }
    const zero = mergeAdapters([...inputs.slice(0, 1), { adapter: inputs[1]!.adapter, weight: 0 }], TEST_TARGETS, { method: 'cat' });
    expect(zero.get('head.proj')!.r).toBe(4);
  });

  it('rejects impossible options', () => {
    expect(() => mergeAdapters(inputs, TEST_TARGETS, { method: 'svd', svdRank: 0 })).toThrow(/svdRank must be a positive integer/);
    expect(() => mergeAdapters([{ adapter: inputs[0]!.adapter, weight: Number.NaN }], TEST_TARGETS, { method: 'cat' })).toThrow(/must be finite/);
  });
});
