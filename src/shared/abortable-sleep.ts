/**
 * Waits `ms`, or rejects with the signal's own reason as soon as it aborts. Hand-written
 * rather than node:timers/promises, whose rejection is a generic AbortError: callers here
 * rethrow the reason (e.g. a shutdown or hand-back error) and must see it unchanged.
 */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
