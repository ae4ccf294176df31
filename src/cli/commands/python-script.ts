import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCode, isErrorCode, StreamsegError } from '../../shared/errors/index.js';

/** training/ at the repository (or package) root: three levels above src/cli/commands and dist/cli/commands. */
export function trainingScript(name: string): string {
  return fileURLToPath(new URL(`../../../training/${name}`, import.meta.url));
}

/** The Python that has torch and onnx: STREAMSEG_PYTHON, else Debian's /usr/bin/python3, else python3 on PATH. */
export function pythonExecutable(): string {
  if (process.env.STREAMSEG_PYTHON) return process.env.STREAMSEG_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

export interface PythonResult {
  /** The last stdout line that parses as JSON (the scripts end with one). */
  json: Record<string, unknown>;
}

/**
 * Runs one of the training/ scripts. Its progress (stderr) is shown as it comes, except a final
 * `E_CODE: message` line, which becomes the StreamsegError thrown when the script fails, so a
 * bad model or option ends the CLI with exactly that one line. A crash without such a line is
 * E_PYTHON_FAILED with the script's last stderr line.
 */
export function runPythonScript(script: string, args: readonly string[], options: { quiet?: boolean } = {}): Promise<PythonResult> {
  const file = trainingScript(script);
  if (!existsSync(file)) return Promise.reject(new StreamsegError(ErrorCode.PYTHON_SCRIPT, `${file} is missing (training/ must sit next to src/ or dist/)`));
  const python = pythonExecutable();
  return new Promise((resolve, reject) => {
    const child = spawn(python, [file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { OMP_WAIT_POLICY: 'PASSIVE', PYTHONUNBUFFERED: '1', ...process.env },
    });
    let stdout = '';
    let pending = '';
    let errorLine: string | undefined;
    let lastLine = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) handle(line);
    });
    const handle = (line: string) => {
      if (/^E_[A-Z0-9_]+: /.test(line)) {
        errorLine = line;
        return;
      }
      if (line.trim()) lastLine = line;
      if (!options.quiet) process.stderr.write(`${line}\n`);
    };
    child.on('error', (error) =>
      reject(
        new StreamsegError(
          ErrorCode.PYTHON,
          `cannot run ${python} (${error.message}): install Python 3 with torch and onnx (Debian: python3-torch python3-onnx), or set STREAMSEG_PYTHON`,
        ),
      ),
    );
    child.on('close', (code) => {
      if (pending) handle(pending);
      if (code === 0) {
        const line = stdout
          .trim()
          .split('\n')
          .reverse()
          .find((l) => l.startsWith('{'));
        try {
          resolve({ json: line ? (JSON.parse(line) as Record<string, unknown>) : {} });
        } catch {
          reject(new StreamsegError(ErrorCode.PYTHON_FAILED, `${script} printed no result line`));
        }
        return;
      }
      if (errorLine) {
        const at = errorLine.indexOf(': ');
        const code = errorLine.slice(0, at);
        // A code the catalogue does not know (a newer script?) keeps the whole line under E_PYTHON_FAILED.
        reject(isErrorCode(code) ? new StreamsegError(code, errorLine.slice(at + 2)) : new StreamsegError(ErrorCode.PYTHON_FAILED, errorLine));
        return;
      }
      const missing = /No module named '([^']+)'/.exec(lastLine);
      if (missing) {
        reject(
          new StreamsegError(
            ErrorCode.PYTHON,
            `${python} has no module ${missing[1]}: install python3-torch, python3-torchvision and python3-onnx (or set STREAMSEG_PYTHON)`,
          ),
        );
        return;
      }
      reject(new StreamsegError(ErrorCode.PYTHON_FAILED, `${script} failed (exit ${code}): ${lastLine || 'no output'}`));
    });
  });
}
