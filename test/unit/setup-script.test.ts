import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

/**
 * scripts/setup.sh, the README's Quick start, decides whether to use sudo. Run with a PATH of
 * stubs only (id, sudo, apt-get, npm, node record their arguments; nothing is installed), as
 * root without sudo (a container), as a user with sudo, and as a user without it.
 */

const SCRIPT = path.join(REPO_ROOT, 'scripts/setup.sh');
const APT =
  'ffmpeg redis-server chromium python3 python3-torch python3-torchvision python3-onnx python3-numpy libopenblas0-pthread python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly';

let bin: string;
let log: string;

/** A stub that appends `name args` to the log, then runs `body`. */
async function stub(name: string, body = ''): Promise<void> {
  const file = path.join(bin, name);
  await writeFile(file, `#!/bin/bash\necho "${name} $*" >> "$STUB_LOG"\n${body}\n`);
  await chmod(file, 0o755);
}

beforeEach(async () => {
  bin = await mkdtemp(path.join(os.tmpdir(), 'ss-setup-'));
  log = path.join(bin, 'calls.log');
  // The real tools the script needs besides the stubs; nothing else is on PATH.
  for (const tool of ['bash', 'dirname', 'env'])
    await symlink(`/usr/bin/${tool}`, path.join(bin, tool)).catch(() => symlink(`/bin/${tool}`, path.join(bin, tool)));
  await stub('apt-get');
  await stub('npm', 'echo "npm sees ONNXRUNTIME_NODE_INSTALL=$ONNXRUNTIME_NODE_INSTALL" >> "$STUB_LOG"');
  await writeFile(path.join(bin, 'node'), '#!/bin/bash\necho "$FAKE_NODE_MAJOR"\n');
  await chmod(path.join(bin, 'node'), 0o755);
  await writeFile(path.join(bin, 'id'), '#!/bin/bash\n[ "$1" = "-u" ] && echo "$FAKE_UID"\n');
  await chmod(path.join(bin, 'id'), 0o755);
});

afterEach(async () => {
  await rm(bin, { recursive: true, force: true });
});

async function setup(env: { uid: number; nodeMajor?: number }): Promise<{ code: number; stderr: string; calls: string[] }> {
  const run = promisify(execFile);
  let code = 0;
  let stderr = '';
  try {
    ({ stderr } = await run('/usr/bin/env', ['bash', SCRIPT], {
      env: { PATH: bin, STUB_LOG: log, FAKE_UID: String(env.uid), FAKE_NODE_MAJOR: String(env.nodeMajor ?? 20) },
    }));
  } catch (error) {
    const failed = error as { code: number; stderr: string };
    code = failed.code;
    stderr = failed.stderr;
  }
  const calls = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { code, stderr, calls };
}

const APT_CALLS = ['env DEBIAN_FRONTEND=noninteractive apt-get update', `env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${APT}`];

describe('scripts/setup.sh', () => {
  it('as root without sudo (a container): apt-get directly, then npm install with ONNXRUNTIME_NODE_INSTALL=skip', async () => {
    const result = await setup({ uid: 0 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.calls).toEqual([
      'apt-get update',
      `apt-get install -y --no-install-recommends ${APT}`,
      'npm install --no-audit --no-fund',
      'npm sees ONNXRUNTIME_NODE_INSTALL=skip',
    ]);
  });

  it('as a user with sudo: apt-get through sudo, npm install as the user', async () => {
    await stub('sudo', 'exec "$@"');
    const result = await setup({ uid: 1000 });
    expect(result.code).toBe(0);
    expect(result.calls).toEqual([
      `sudo ${APT_CALLS[0]}`,
      'apt-get update',
      `sudo ${APT_CALLS[1]}`,
      `apt-get install -y --no-install-recommends ${APT}`,
      'npm install --no-audit --no-fund',
      'npm sees ONNXRUNTIME_NODE_INSTALL=skip',
    ]);
  });

  it('as a user without sudo: one line saying what to do, nothing installed', async () => {
    const result = await setup({ uid: 1000 });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('setup.sh: installing packages needs root: run this script as root, or install sudo\n');
    expect(result.calls).toEqual([]);
  });

  it('with a Node older than 20: one line, nothing installed', async () => {
    const result = await setup({ uid: 0, nodeMajor: 18 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^setup\.sh: Node\.js .* is too old: streamseg needs Node 20 or later\n$/);
    expect(result.calls).toEqual([]);
  });

  it("is what the README's Quick start and .ci/run call; .ci/run then runs exactly the README's test command", async () => {
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1));
    expect(quickStart).toMatch(/```sh\nscripts\/setup\.sh && /);
    expect(quickStart).toContain('```sh\nnpm test\n```');
    const ci = (await readFile(path.join(REPO_ROOT, '.ci/run'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
    expect(ci).toContain('scripts/setup.sh');
    expect(ci.at(-1)).toBe('npm test');
  });
});
