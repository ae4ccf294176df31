import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

interface LockEntry {
  version?: string;
  engines?: { node?: string } | string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface PackageJson {
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

const read = async <T>(file: string): Promise<T> => JSON.parse(await readFile(path.join(REPO_ROOT, file), 'utf8')) as T;

/** The lowest Node major a `>=N` (or `^N`) engines range admits; null when the range has another shape. */
function lowestNodeMajor(range: string): number | null {
  const majors = range.split('||').map((part) => /^\s*(?:>=|\^)\s*v?(\d+)/.exec(part)?.[1]);
  if (majors.some((m) => m === undefined)) return null;
  return Math.min(...majors.map(Number));
}

describe('package.json and package-lock.json', () => {
  it('lock no package whose engines exclude the Node the README and engines promise (npm install prints no EBADENGINE)', async () => {
    const pkg = await read<PackageJson>('package.json');
    const promised = lowestNodeMajor(pkg.engines.node);
    expect(promised).toBe(20);
    const lock = await read<{ packages: Record<string, LockEntry> }>('package-lock.json');
    const refusing = Object.entries(lock.packages)
      .filter(([, entry]) => entry.engines && !Array.isArray(entry.engines) && entry.engines.node)
      .map(([where, entry]) => ({ where, node: (entry.engines as { node: string }).node }))
      .filter(({ node }) => {
        const lowest = lowestNodeMajor(node);
        return lowest !== null && lowest > promised!;
      });
    expect(refusing).toEqual([]);
  });

  it('lock what package.json asks for (npm install does not rewrite the lock)', async () => {
    const pkg = await read<PackageJson>('package.json');
    const lock = await read<{ packages: Record<string, LockEntry> }>('package-lock.json');
    const root = lock.packages[''];
    expect(root?.dependencies).toEqual(pkg.dependencies);
    expect(root?.devDependencies).toEqual(pkg.devDependencies);
    for (const name of [...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)]) {
      expect(lock.packages[`node_modules/${name}`]?.version, name).toBeDefined();
    }
  });
});
