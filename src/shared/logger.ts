import { pino, type Logger } from 'pino';

export type { Logger };

/** One root logger per process; roles take children (`logger.child({ role: 'sink' })`). */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  // Logs go to stderr so stdout stays clean for command output (ids, tables, JSON).
  return pino({ level, base: { pid: process.pid } }, pino.destination(2));
}
