import { describe, expect, it } from 'vitest';
import { argmaxMasks, meanConfidence } from '../../src/workers/segmentation/argmax.js';
import { ClassVocabulary } from '../../src/workers/segmentation/class-vocabulary.js';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { TEST_MODEL_DIR } from '../fixtures/test-model.js';

/** Logits [N,C,H,W] from per-frame, per-pixel rows of C values. */
function logits(frames: number[][][]): { data: Float32Array; dims: number[] } {
  const n = frames.length;
  const hw = frames[0]!.length;
  const c = frames[0]![0]!.length;
  const data = new Float32Array(n * c * hw);
  frames.forEach((pixels, f) => pixels.forEach((values, p) => values.forEach((v, k) => (data[f * c * hw + k * hw + p] = v))));
  return { data, dims: [n, c, 1, hw] };
}

describe('argmaxMasks', () => {
  it('picks the highest channel per pixel, per frame', () => {
    const { data, dims } = logits([
      [
        [1, 5, 2],
        [9, 0, 0],
        [0, 0, 3],
      ],
      [
        [0, 0, 1],
        [0, 2, 1],
        [7, 1, 1],
      ],
    ]);
    const masks = argmaxMasks(data, dims, Uint8Array.from([0, 1, 2]));
    expect(masks.map((m) => [...m])).toEqual([
      [1, 0, 2],
      [2, 1, 0],
    ]);
  });

  it('maps a class subset back to model class indices', () => {
    // The job asked for [road, sky, pole] = model classes [1, 0, 7]: channel k means class modelClassOf[k].
    const { data, dims } = logits([
      [
        [3, 1, 0],
        [0, 4, 1],
        [0, 1, 2],
      ],
    ]);
    const [mask] = argmaxMasks(data, dims, Uint8Array.from([1, 0, 7]));
    expect([...mask!]).toEqual([1, 0, 7]);
  });

  it('breaks ties towards the first channel, like numpy.argmax', () => {
    const { data, dims } = logits([
      [
        [2, 2, 1],
        [0, 3, 3],
      ],
    ]);
    expect([...argmaxMasks(data, dims, Uint8Array.from([4, 5, 6]))[0]!]).toEqual([4, 5]);
  });

  it('checks shapes', () => {
    expect(() => argmaxMasks(new Float32Array(6), [1, 2, 3], Uint8Array.from([0, 1]))).toThrow(/\[N,C,H,W\]/);
    expect(() => argmaxMasks(new Float32Array(6), [1, 2, 1, 3], Uint8Array.from([0]))).toThrow(/fed 1/);
    expect(() => argmaxMasks(new Float32Array(5), [1, 2, 1, 3], Uint8Array.from([0, 1]))).toThrow(/needs 6/);
  });
});

describe('ClassVocabulary', () => {
  it('feeds the job classes in the job order and maps them to model indices', async () => {
    const { manifest } = await loadModelPackage(TEST_MODEL_DIR);
    const vocabulary = new ClassVocabulary(manifest);
    const all = vocabulary.forJob();
    expect(all.embeddings.dims).toEqual([8, 8]);
    expect([...all.modelClassOf]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const subset = vocabulary.forJob(['pole', 'sky', 'pole']);
    expect(subset.embeddings.dims).toEqual([2, 8]);
    expect([...subset.modelClassOf]).toEqual([7, 0]);
    expect([...(subset.embeddings.data as Float32Array).subarray(0, 8)]).toEqual(manifest.classes[7]!.embedding.map(Math.fround));
    expect(vocabulary.forJob(['pole', 'sky', 'pole'])).toBe(subset);
    expect(() => vocabulary.forJob(['sky', 'dragon'])).toThrow(/"dragon" not in the model/);
  });
});

describe('meanConfidence', () => {
  it('is the mean winning-class softmax probability per frame', () => {
    // frame 0: two pixels, one certain (logits 10, 0), one a tie (0, 0); frame 1: a 3:1 pixel pair
    const logits = Float32Array.from([10, 0, 0, 0, Math.log(3), Math.log(3), 0, 0]);
    const conf = meanConfidence(logits, [2, 2, 1, 2]);
    const certain = 1 / (1 + Math.exp(-10));
    expect(conf[0]).toBeCloseTo((certain + 0.5) / 2, 6);
    expect(conf[1]).toBeCloseTo(0.75, 6);
  });

  it('does not depend on a shift of all logits (numerically stable)', () => {
    const a = meanConfidence(Float32Array.from([1, 2, 3, 4]), [1, 2, 1, 2]);
    const b = meanConfidence(Float32Array.from([1001, 1002, 1003, 1004]), [1, 2, 1, 2]);
    expect(b[0]).toBeCloseTo(a[0]!, 5);
  });
});
