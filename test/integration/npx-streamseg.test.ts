import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

const run = promisify(execFile);

/** `streamseg` as the README tells a user to run it: `npx streamseg`, right after `npm install`. */
describe('npx streamseg', () => {
  let checkout: string;

  beforeAll(async () => {
    // A checkout just after `npm install`: source, bin and node_modules, no dist/ (never built).
    checkout = await mkdtemp(path.join(os.tmpdir(), 'ss-npx-'));
    await mkdir(path.join(checkout, 'bin'));
    await copyFile(path.join(REPO_ROOT, 'bin/streamseg.js'), path.join(checkout, 'bin/streamseg.js'));
    await copyFile(path.join(REPO_ROOT, 'package.json'), path.join(checkout, 'package.json'));
    for (const dir of ['src', 'node_modules', 'models']) await symlink(path.join(REPO_ROOT, dir), path.join(checkout, dir));
  });

  afterAll(async () => {
    await rm(checkout, { recursive: true, force: true });
  });

  it('runs in a checkout that was never built (package.json "bin" runs the source through tsx)', async () => {
    const { stdout } = await run(process.execPath, [path.join(checkout, 'bin/streamseg.js'), '--version'], { cwd: checkout });
    expect(stdout).toBe('0.1.0\n');
  });

  it('is what npx finds in this checkout', async () => {
    const { stdout } = await run('npx', ['--no-install', 'streamseg', '--version'], { cwd: REPO_ROOT });
    expect(stdout).toBe('0.1.0\n');
  });

  it('is the form of every example in the README', async () => {
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const bare = readme
      .split('\n')
      .filter((line) => /(^|[`(;&]\s*)streamseg (run|submit|status|watch|serve|stop|producer|worker|sink|synth|adapters|eval|score)\b/.test(line));
    expect(bare).toEqual([]);
    expect(readme).toContain('`npx streamseg run');
  });
});
