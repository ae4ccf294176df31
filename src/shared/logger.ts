import { pino, type Logger } from 'pino';
import { redactText } from './redact-credentials.js';

export type { Logger };

/** One root logger per process; roles take children (`logger.child({ role: 'sink' })`). */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  // Logs go to stderr so stdout stays clean for command output (ids, tables, JSON).
  // Every line passes through redaction: a URL's credentials (rtsp://user:pass@camera) never reach a log.
  return pino({ level, base: { pid: process.pid }, hooks: { streamWrite: redactText } }, pino.destination(2));
}
