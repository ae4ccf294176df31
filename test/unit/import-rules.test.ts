import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

const SRC = path.join(REPO_ROOT, 'src');

/** Every relative module a TypeScript file imports or re-exports (static, side-effect and dynamic imports). */
function relativeImports(text: string): string[] {
  const specifiers: string[] = [];
  const patterns = [/\b(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const pattern of patterns) for (const match of text.matchAll(pattern)) specifiers.push(match[1]!);
  return specifiers.filter((s) => s.startsWith('.'));
}

/** The folder under src a path lies in (`api`, `shared`…), or `index.ts` for the top file; null outside src. */
function area(file: string): string | null {
  const rel = path.relative(SRC, file);
  if (rel.startsWith('..')) return null;
  return rel.split(path.sep)[0]!;
}

/** Which areas each area may import, besides its own (data flow: producer → queue → worker → sink, no back edges). */
const FORBIDDEN: Record<string, { not?: string[]; only?: string[] }> = {
  shared: { only: ['shared'] },
  api: { only: ['api', 'shared'] },
  producers: { not: ['workers', 'api', 'cli'] },
  workers: { not: ['producers', 'api', 'cli'] },
};

async function importEdges(): Promise<{ from: string; to: string; line: string }[]> {
  const entries = await readdir(SRC, { recursive: true, withFileTypes: true });
  const edges: { from: string; to: string; line: string }[] = [];
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = path.join(entry.parentPath, entry.name);
    for (const specifier of relativeImports(await readFile(file, 'utf8'))) {
      edges.push({ from: file, to: path.resolve(path.dirname(file), specifier), line: specifier });
    }
  }
  return edges;
}

describe('import rules between the src folders', () => {
  it('finds the imports it checks', async () => {
    const edges = await importEdges();
    expect(edges.length).toBeGreaterThan(500);
    expect(
      relativeImports(
        "import { a } from './a.js';\nimport type {\n  B,\n} from '../b.js';\nexport { c } from './c.js';\nimport './d.js';\nawait import('../e.js');",
      ),
    ).toEqual(['./a.js', '../b.js', './c.js', './d.js', '../e.js']);
  });

  it('src/shared imports no other folder, src/api only src/shared, producers and workers not each other', async () => {
    const violations: string[] = [];
    for (const edge of await importEdges()) {
      const from = area(edge.from);
      const to = area(edge.to);
      if (!from || !to || from === to) continue;
      const rule = FORBIDDEN[from];
      if (!rule) continue;
      if ((rule.only && !rule.only.includes(to)) || rule.not?.includes(to)) {
        violations.push(`${path.relative(REPO_ROOT, edge.from)} imports ${edge.line} (src/${to})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it("src has no import cycle (the sink's parts share sink-types.ts instead of importing the orchestrator)", async () => {
    const graph = new Map<string, string[]>();
    for (const edge of await importEdges()) {
      const to = edge.to.replace(/\.js$/, '.ts');
      graph.set(edge.from, [...(graph.get(edge.from) ?? []), to]);
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, 'open');
      stack.push(file);
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open')
          cycles.push(
            stack
              .slice(stack.indexOf(next))
              .concat(next)
              .map((f) => path.relative(SRC, f))
              .join(' -> '),
          );
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  it('only src/shared/media starts processes, besides redis-server and the Python scripts of the CLI', async () => {
    const allowed = new Set(['src/cli/embedded-redis.ts', 'src/cli/commands/python-script.ts']);
    const entries = await readdir(SRC, { recursive: true, withFileTypes: true });
    const starters: string[] = [];
    for (const entry of entries) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const file = path.relative(REPO_ROOT, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      const text = await readFile(path.join(REPO_ROOT, file), 'utf8');
      // A value import of node:child_process (type-only imports start nothing).
      if (/^import\s+(?!type\b)[^;]*from\s*['"](node:)?child_process['"]/m.test(text) && !file.startsWith('src/shared/media/') && !allowed.has(file))
        starters.push(file);
    }
    expect(starters).toEqual([]);
  });
});
