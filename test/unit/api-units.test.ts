import { describe, expect, it } from 'vitest';
import { TokenVerifier } from '../../src/api/auth/token-verifier.js';
import { parseRange } from '../../src/api/file-range.js';
import { resolveVideoOptions, submissionHash } from '../../src/api/services/video-request-options.js';
import { entriesOfFirstStream } from '../../src/shared/stream-reply.js';
import { loadConfig } from '../../src/shared/config.js';
import { ConfigError } from '../../src/shared/errors/index.js';
import { loadModelPackage } from '../../src/shared/model-manifest.js';

describe('HTTP Range parsing', () => {
  it('reads start-end, open-ended and suffix ranges, clamped to the file', () => {
    expect(parseRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=900-', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-100', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
    expect(parseRange('bytes=990-2000', 1000)).toEqual({ start: 990, end: 999 });
    expect(parseRange('bytes=0-9, 20-29', 1000)).toEqual({ start: 0, end: 29 });
  });

  it('ignores malformed headers and refuses ranges outside the file', () => {
    expect(parseRange(undefined, 1000)).toBeNull();
    expect(parseRange('items=0-1', 1000)).toBeNull();
    expect(parseRange('bytes=5-1', 1000)).toBeNull();
    expect(parseRange('bytes=-', 1000)).toBeNull();
    expect(parseRange('bytes=1000-', 1000)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 1000)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-0', 0)).toBe('unsatisfiable');
  });
});

describe('bearer tokens', () => {
  it('accepts any configured token and nothing else', () => {
    const verifier = new TokenVerifier(['a'.repeat(16), 'b'.repeat(20)]);
    expect(verifier.verify('a'.repeat(16))).toBe(true);
    expect(verifier.verify('b'.repeat(20))).toBe(true);
    expect(verifier.verify('a'.repeat(15))).toBe(false);
    expect(verifier.verify('')).toBe(false);
    expect(verifier.verify(undefined)).toBe(false);
    expect(() => new TokenVerifier([])).toThrow(/at least one/);
  });

  it('reads STREAMSEG_API_TOKENS as a comma-separated list of long enough tokens', () => {
    expect(loadConfig({}, { STREAMSEG_API_TOKENS: ' 0123456789abcdef , fedcba9876543210,' }).apiTokens).toEqual(['0123456789abcdef', 'fedcba9876543210']);
    expect(loadConfig({}, {}).apiTokens).toEqual([]);
    expect(() => loadConfig({}, { STREAMSEG_API_TOKENS: 'short' })).toThrow(/STREAMSEG_API_TOKENS/);
    expect(loadConfig({}, { PORT: '9000' }).port).toBe(9000);
  });
});

describe('submission options and dedup hash', () => {
  it('maps the API options onto the CLI flags (adapters=false is --no-adapters)', () => {
    expect(resolveVideoOptions({ fps: '5', classes: 'road, sky', topK: 3, merge: 'svd' })).toEqual({
      fps: 5,
      classes: ['road', 'sky'],
      retrieval: { topK: 3, method: 'svd' },
    });
    expect(resolveVideoOptions({ adapters: 'false' })).toEqual({ retrieval: { maxDistance: 0, beyondThreshold: 'base' } });
    expect(resolveVideoOptions({})).toEqual({});
    expect(resolveVideoOptions({ live: { rtspTransport: 'udp', endOnEof: true } })).toEqual({ live: { rtspTransport: 'udp', endOnEof: true } });
    expect(resolveVideoOptions({ live: '{"listen":true}' })).toEqual({ live: { listen: true } });
    expect(() => resolveVideoOptions({ live: { restreamUrl: 'http://x' } })).toThrow(/live.restreamUrl/);
    expect(() => resolveVideoOptions({ topK: 0 })).toThrow(/topK/);
    expect(() => resolveVideoOptions({ colour: 'red' })).toThrow(/invalid options/);
  });

  it("refuses classes the model does not know (400, naming them and the model's classes) before the video is accepted", async () => {
    const { manifest } = await loadModelPackage('test/fixtures/test-model');
    expect(resolveVideoOptions({ classes: 'road,vehicle' }, manifest)).toEqual({ classes: ['road', 'vehicle'] });
    const refused = (() => {
      try {
        resolveVideoOptions({ classes: ['road', 'cars'] }, manifest);
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).problems).toEqual([
      'classes: "cars" is not in the model (its classes: sky, road, sidewalk, building, vegetation, vehicle, person, pole)',
    ]);
  });

  it('hashes the source and the options, not their order', () => {
    const a = submissionHash({ url: 'https://x/a.mp4' }, { classes: ['sky', 'road'], retrieval: { topK: 2, method: 'cat' } });
    const b = submissionHash({ url: 'https://x/a.mp4' }, { retrieval: { method: 'cat', topK: 2 }, classes: ['road', 'sky'] });
    expect(a).toBe(b);
    expect(submissionHash({ url: 'https://x/a.mp4' }, { fps: 5 })).not.toBe(submissionHash({ url: 'https://x/a.mp4' }, {}));
    expect(submissionHash({ upload: 'abc' }, {})).not.toBe(submissionHash({ url: 'abc' }, {}));
  });
});

describe('stream replies', () => {
  it('finds the entries in RESP2, flattened RESP3 and Map shapes', () => {
    const entries: [string, string[]][] = [['1-0', ['record', '{}']]];
    expect(entriesOfFirstStream([['key', entries]])).toEqual(entries);
    expect(entriesOfFirstStream(['key', entries])).toEqual(entries);
    expect(entriesOfFirstStream(new Map([['key', entries]]))).toEqual(entries);
    expect(entriesOfFirstStream(null)).toEqual([]);
  });
});
