/**
 * The few pieces of the protobuf wire format that folding LoRA branches out of an ONNX graph
 * needs (lora-fold.ts). Written by hand rather than with protobufjs: a schema-driven decode and
 * encode drops every field its schema lacks (newer ONNX IR fields, vendor extensions), where
 * this copies each record it does not change byte for byte, and needs no .proto at run time.
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

/** One field record of a message, in the order it appears. */
export interface WireField {
  field: number;
  wire: number;
  /** The whole record (tag, length prefix, value), for copying it unchanged. */
  record: Uint8Array;
  /** WIRE_VARINT: the value (exact up to 2^53, which ONNX's dims and enums stay within). */
  value: number;
  /** WIRE_LEN: the payload; empty otherwise. */
  payload: Uint8Array;
}

export class WireFormatError extends Error {}

function readVarint(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = at; i < bytes.length && i < at + 10; i++) {
    const byte = bytes[i]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
  }
  throw new WireFormatError(`truncated varint at byte ${at}`);
}

/** The fields of one message. Throws WireFormatError on anything that is not well-formed. */
export function readFields(message: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  const empty = message.subarray(0, 0);
  let at = 0;
  while (at < message.length) {
    const start = at;
    const tag = readVarint(message, at);
    at = tag.next;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    let value = 0;
    let payload = empty;
    if (wire === WIRE_VARINT) {
      const read = readVarint(message, at);
      value = read.value;
      at = read.next;
    } else if (wire === WIRE_LEN) {
      const length = readVarint(message, at);
      at = length.next + length.value;
      payload = message.subarray(length.next, at);
    } else if (wire === WIRE_FIXED64) at += 8;
    else if (wire === WIRE_FIXED32) at += 4;
    else throw new WireFormatError(`unsupported wire type ${wire} at byte ${start}`);
    if (at > message.length || field === 0) throw new WireFormatError(`malformed field at byte ${start}`);
    fields.push({ field, wire, record: message.subarray(start, at), value, payload });
  }
  return fields;
}

function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

/** A length-delimited record: a string, bytes or an embedded message. */
export function lenRecord(field: number, payload: Uint8Array): Uint8Array {
  const head = [...varint(field * 8 + WIRE_LEN), ...varint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

export function varintRecord(field: number, value: number): Uint8Array {
  return Uint8Array.from([...varint(field * 8 + WIRE_VARINT), ...varint(value)]);
}

export function stringRecord(field: number, text: string): Uint8Array {
  return lenRecord(field, Buffer.from(text, 'utf8'));
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

export function textOf(payload: Uint8Array): string {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
}

/** The values of a repeated varint field, packed or not (proto2 writers use either). */
export function repeatedVarints(fields: readonly WireField[], field: number): number[] {
  const values: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === WIRE_VARINT) values.push(f.value);
    else if (f.wire === WIRE_LEN) {
      for (let at = 0; at < f.payload.length;) {
        const read = readVarint(f.payload, at);
        values.push(read.value);
        at = read.next;
      }
    }
  }
  return values;
}
