import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { ConfigError } from '../../src/shared/errors/index.js';

describe('loadConfig', () => {
  it('applies defaults and coerces environment strings', () => {
    const config = loadConfig({}, { STREAMSEG_BATCH_FRAMES: '4', STREAMSEG_OVERLAY_ALPHA: '0.25' });
    expect(config.batchFrames).toBe(4);
    expect(config.overlayAlpha).toBe(0.25);
    expect(config.modelDir).toBe('models/default');
    expect(config.redisUrl).toBeUndefined();
  });

  it('lets flags override the environment', () => {
    expect(loadConfig({ batchFrames: '2' }, { STREAMSEG_BATCH_FRAMES: '4' }).batchFrames).toBe(2);
  });

  it('reports every bad value once, naming the variable or flag that set it', () => {
    let error: unknown;
    try {
      loadConfig({ fps: '-3' }, { REDIS_URL: 'http://x', STREAMSEG_OVERLAY_ALPHA: '2', STREAMSEG_BATCH_FRAMES: 'many' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems.find((p) => p.startsWith('REDIS_URL='))).toMatch(/redis:\/\//);
    expect(problems.find((p) => p.startsWith('--fps='))).toBeDefined();
    expect(problems.find((p) => p.startsWith('STREAMSEG_OVERLAY_ALPHA='))).toBeDefined();
    expect(problems.find((p) => p.startsWith('STREAMSEG_BATCH_FRAMES='))).toBeDefined();
    expect((error as ConfigError).code).toBe('E_CONFIG');
  });
});
