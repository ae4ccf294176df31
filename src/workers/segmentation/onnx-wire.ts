/**
 * The few pieces of the protobuf wire format, and of onnx.proto's field numbers, that rewriting
 * an ONNX graph at load needs (lora-fold.ts, class-map-head.ts, node-rewrite.ts and its rewrites).
 * Written by hand rather than with protobufjs: a schema-driven decode and encode drops every field its schema
 * lacks (newer ONNX IR fields, vendor extensions), where this copies each record it does not
 * change byte for byte, and needs no .proto at run time.
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

/** The tag and length that start a length-delimited record of `length` bytes (its payload follows). */
function lenHeader(field: number, length: number): Uint8Array {
  return Uint8Array.from([...varint(field * 8 + WIRE_LEN), ...varint(length)]);
}

/** A length-delimited record: a string, bytes or an embedded message. */
export function lenRecord(field: number, payload: Uint8Array): Uint8Array {
  const head = lenHeader(field, payload.length);
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

/** Whether `text` occurs anywhere in `bytes` (a cheap test before parsing a message field by field). */
export function containsText(bytes: Uint8Array, text: string): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(text);
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

// Field numbers of onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto).
export const MODEL_IR_VERSION = 1;
export const MODEL_GRAPH = 7;
export const MODEL_OPSET_IMPORT = 8;
export const OPSET_DOMAIN = 1;
export const OPSET_VERSION = 2;
export const GRAPH_NODE = 1;
export const GRAPH_INITIALIZER = 5;
export const GRAPH_INPUT = 11;
export const GRAPH_OUTPUT = 12;
export const GRAPH_VALUE_INFO = 13;
export const NODE_INPUT = 1;
export const NODE_OUTPUT = 2;
export const NODE_NAME = 3;
export const NODE_OP_TYPE = 4;
export const NODE_ATTRIBUTE = 5;
export const ATTRIBUTE_NAME = 1;
export const ATTRIBUTE_FLOAT = 2;
export const ATTRIBUTE_INT = 3;
export const ATTRIBUTE_STRING = 4;
export const ATTRIBUTE_INTS = 8;
export const ATTRIBUTE_TYPE = 20;
export const ATTRIBUTE_TYPE_INT = 2;
export const ATTRIBUTE_TYPE_INTS = 7;
export const TENSOR_DIMS = 1;
export const TENSOR_DATA_TYPE = 2;
export const TENSOR_FLOAT_DATA = 4;
export const TENSOR_NAME = 8;
export const TENSOR_RAW_DATA = 9;
export const TENSOR_DATA_LOCATION = 14;
export const VALUE_INFO_NAME = 1;
export const VALUE_INFO_TYPE = 2;
export const TYPE_TENSOR = 1;
export const TENSOR_TYPE_ELEM = 1;
export const TENSOR_TYPE_SHAPE = 2;
export const SHAPE_DIM = 1;
export const DIM_VALUE = 1;
export const DIM_PARAM = 2;
// TensorProto.DataType
export const FLOAT = 1;
export const UINT8 = 2;
export const INT64 = 7;

/**
 * The model of `modelFields` with its graph made of `graph` (the GraphProto's records, in order),
 * every other record as it was; the records are copied once, straight behind the graph's length.
 */
export function withGraph(modelFields: readonly WireField[], graph: readonly Uint8Array[]): Uint8Array {
  const length = graph.reduce((sum, part) => sum + part.length, 0);
  return concatBytes(modelFields.flatMap((f) => (f.field === MODEL_GRAPH ? [lenHeader(MODEL_GRAPH, length), ...graph] : [f.record])));
}

/** The fields of a node's attribute `name` (AttributeProto), given the node's fields; undefined when it has none. */
export function nodeAttribute(nodeFields: readonly WireField[], name: string): WireField[] | undefined {
  for (const f of nodeFields) {
    if (f.field !== NODE_ATTRIBUTE) continue;
    const fields = readFields(f.payload);
    if (fields.some((a) => a.field === ATTRIBUTE_NAME && textOf(a.payload) === name)) return fields;
  }
  return undefined;
}

/** A NodeProto's fields, with its op type, inputs and outputs read out. */
export interface GraphNode {
  fields: WireField[];
  opType: string;
  inputs: string[];
  outputs: string[];
}

export function parseNode(payload: Uint8Array): GraphNode {
  const fields = readFields(payload);
  const strings = (field: number) => fields.filter((f) => f.field === field).map((f) => textOf(f.payload));
  return { fields, opType: strings(NODE_OP_TYPE)[0] ?? '', inputs: strings(NODE_INPUT), outputs: strings(NODE_OUTPUT) };
}

/** An INT attribute of a node; undefined when it has none. */
export function intAttribute(node: GraphNode, name: string): number | undefined {
  const attribute = nodeAttribute(node.fields, name);
  return attribute ? repeatedVarints(attribute, ATTRIBUTE_INT)[0] : undefined;
}

/** The name of a ValueInfoProto (a graph input, output or value_info entry). */
export function valueInfoName(payload: Uint8Array): string {
  const name = readFields(payload).find((f) => f.field === VALUE_INFO_NAME);
  return name ? textOf(name.payload) : '';
}

/** An INT AttributeProto. */
export function intAttributeRecord(name: string, value: number): Uint8Array {
  return concatBytes([stringRecord(ATTRIBUTE_NAME, name), varintRecord(ATTRIBUTE_INT, value), varintRecord(ATTRIBUTE_TYPE, ATTRIBUTE_TYPE_INT)]);
}

/** A TensorProto of int64 `values` (1-D), for an initializer: raw_data, little-endian as ONNX stores it. */
export function int64Initializer(name: string, values: readonly number[]): Uint8Array {
  const raw = new Uint8Array(8 * values.length);
  const view = new DataView(raw.buffer);
  values.forEach((value, i) => view.setBigInt64(8 * i, BigInt(value), true));
  return concatBytes([
    varintRecord(TENSOR_DIMS, values.length),
    varintRecord(TENSOR_DATA_TYPE, INT64),
    stringRecord(TENSOR_NAME, name),
    lenRecord(TENSOR_RAW_DATA, raw),
  ]);
}

/** A TensorProto of float32 `values` with shape `dims` ([] for a scalar), for an initializer: raw_data, little-endian. */
export function floatInitializer(name: string, values: readonly number[], dims: readonly number[]): Uint8Array {
  const raw = new Uint8Array(4 * values.length);
  const view = new DataView(raw.buffer);
  values.forEach((value, i) => view.setFloat32(4 * i, value, true));
  return concatBytes([
    ...dims.map((dim) => varintRecord(TENSOR_DIMS, dim)),
    varintRecord(TENSOR_DATA_TYPE, FLOAT),
    stringRecord(TENSOR_NAME, name),
    lenRecord(TENSOR_RAW_DATA, raw),
  ]);
}

/** An INTS AttributeProto. */
export function intsAttributeRecord(name: string, values: readonly number[]): Uint8Array {
  return concatBytes([
    stringRecord(ATTRIBUTE_NAME, name),
    ...values.map((value) => varintRecord(ATTRIBUTE_INTS, value)),
    varintRecord(ATTRIBUTE_TYPE, ATTRIBUTE_TYPE_INTS),
  ]);
}

/** ValueInfoProto of a tensor of `elemType` (TensorProto.DataType); a string dim is symbolic, no dims: any shape. */
export function tensorValueInfo(name: string, elemType: number, dims?: readonly (number | string)[]): Uint8Array {
  const shape =
    dims && concatBytes(dims.map((dim) => lenRecord(SHAPE_DIM, typeof dim === 'number' ? varintRecord(DIM_VALUE, dim) : stringRecord(DIM_PARAM, dim))));
  const tensorType = concatBytes([varintRecord(TENSOR_TYPE_ELEM, elemType), ...(shape ? [lenRecord(TENSOR_TYPE_SHAPE, shape)] : [])]);
  return concatBytes([stringRecord(VALUE_INFO_NAME, name), lenRecord(VALUE_INFO_TYPE, lenRecord(TYPE_TENSOR, tensorType))]);
}

/** A NodeProto, named after its one output. */
export function nodeRecord(opType: string, inputs: readonly string[], output: string, attributes: readonly Uint8Array[] = []): Uint8Array {
  return lenRecord(
    GRAPH_NODE,
    concatBytes([
      ...inputs.map((name) => stringRecord(NODE_INPUT, name)),
      stringRecord(NODE_OUTPUT, output),
      stringRecord(NODE_NAME, output),
      stringRecord(NODE_OP_TYPE, opType),
      ...attributes.map((attribute) => lenRecord(NODE_ATTRIBUTE, attribute)),
    ]),
  );
}

/** Whether a TensorProto's data lives in a file beside the model (data_location EXTERNAL). */
export function storedExternally(tensorFields: readonly WireField[]): boolean {
  return repeatedVarints(tensorFields, TENSOR_DATA_LOCATION)[0] === 1;
}
