import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADAPTER_REGISTRY_KEYS, cancelledKey, liveKeys, tokenKeys, videoKeys } from '../../src/shared/redis-keys.js';
import { REPO_ROOT } from '../helpers/cli.js';

/** Every string a key-layout object holds, calling its functions with a sample argument. */
function keysOf(layout: Record<string, unknown>): string[] {
  return Object.values(layout).flatMap((value) => {
    if (typeof value === 'string') return [value];
    if (typeof value === 'function') return [String((value as (...args: unknown[]) => unknown)(3, 'v1'))];
    return [];
  });
}

const globToRegExp = (glob: string) => new RegExp(`^${glob.replace(/[.+?^$()|[\]\\{}]/g, '\\$&').replace(/\*/g, '.*')}$`);

describe('Redis key layout', () => {
  it('keeps every key of a video (live, sink checkpoint, scene embedding, guard, owner) under its hash tag and clean-up pattern', () => {
    const keys = videoKeys('vid-1');
    const pattern = globToRegExp(keys.pattern);
    const all = [...keysOf(keys).filter((k) => k !== keys.pattern), ...keysOf(liveKeys('vid-1'))];
    expect(all.length).toBeGreaterThan(15);
    for (const key of all) {
      expect(key).toContain('{vid-1}');
      expect([key, pattern.test(key)]).toEqual([key, true]);
    }
    expect(new Set(all).size).toBe(all.length);
    // The tombstone outlives the video's clean-up on purpose; same slot through the tag.
    expect(pattern.test(cancelledKey('vid-1'))).toBe(false);
    expect(cancelledKey('vid-1')).toContain('{vid-1}');
  });

  it('keeps the adapter registry and token keys under one hash tag each', () => {
    for (const key of keysOf(ADAPTER_REGISTRY_KEYS)) expect(key.startsWith('ss:{adapters}:')).toBe(true);
    for (const key of keysOf(tokenKeys('t1'))) expect(key.startsWith('ss:token:{t1}:')).toBe(true);
  });

  it('is the only file in src that spells a key', async () => {
    const entries = await readdir(path.join(REPO_ROOT, 'src'), { recursive: true, withFileTypes: true });
    const offenders: string[] = [];
    for (const entry of entries) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const file = path.relative(REPO_ROOT, path.join(entry.parentPath, entry.name));
      if (file === path.join('src', 'shared', 'redis-keys.ts')) continue;
      const text = await readFile(path.join(REPO_ROOT, file), 'utf8');
      text.split('\n').forEach((line, i) => {
        if (/['"`]ss[:{]/.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
