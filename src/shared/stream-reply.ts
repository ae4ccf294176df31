export type RawStreamEntry = [id: string, fields: string[] | null];

/**
 * The entries of the first stream in an XREAD/XREADGROUP reply, whichever shape the client
 * decoded it to: RESP2 `[[key, entries]]`, a RESP3 map flattened to `[key, entries]`, or a Map.
 */
export function entriesOfFirstStream(reply: unknown): RawStreamEntry[] {
  if (reply instanceof Map) return ([...reply.values()][0] ?? []) as RawStreamEntry[];
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (typeof reply[0] === 'string' || Buffer.isBuffer(reply[0])) return (reply[1] ?? []) as RawStreamEntry[];
  return ((reply[0] as unknown[])[1] ?? []) as RawStreamEntry[];
}
