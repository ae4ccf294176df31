import { describe, expect, it } from 'vitest';
import { videoOptionsFromFlags } from '../../src/cli/options.js';
import { ConfigError } from '../../src/shared/errors/index.js';

describe('videoOptionsFromFlags (run/submit per-video flags)', () => {
  it('gives no retrieval overrides when no flag is set', () => {
    expect(videoOptionsFromFlags({ adapters: true })).toEqual({ classes: undefined });
  });

  it('maps --classes, --top-k and --merge onto the job options', () => {
    expect(videoOptionsFromFlags({ adapters: true, classes: ' road, vehicle ,,person', topK: '3', merge: 'svd' })).toEqual({
      classes: ['road', 'vehicle', 'person'],
      retrieval: { topK: 3, method: 'svd' },
    });
  });

  it('--no-adapters runs the base model: no adapter within distance 0, base beyond it', () => {
    expect(videoOptionsFromFlags({ adapters: false }).retrieval).toEqual({ maxDistance: 0, beyondThreshold: 'base' });
  });

  it('names the flag and the value it refuses', () => {
    let error: unknown;
    try {
      videoOptionsFromFlags({ adapters: true, topK: 'many' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('--top-k="many"');
    expect(() => videoOptionsFromFlags({ adapters: true, topK: '0' })).toThrow(/--top-k="0": /);
  });
});
