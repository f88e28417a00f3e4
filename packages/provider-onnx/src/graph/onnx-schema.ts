/**
 * The subset of `onnx.proto` (package `onnx`, proto2 syntax) that the graph builder writes, as a protobufjs
 * JSON descriptor. Field numbers and enum values are those of onnx/onnx.proto; fields we never write
 * (sparse tensors, training info, functions, segments, ...) are left out, which protobuf allows because a
 * reader treats absent fields as unset.
 *
 * The descriptor lives in TypeScript rather than a `.proto` asset so the compiled package needs no extra
 * files at run time.
 */
import protobuf from 'protobufjs';

/** ONNX `TensorProto.DataType` values the builder uses. */
export const OnnxDataType = Object.freeze({
  FLOAT: 1,
  INT32: 6,
  INT64: 7,
} as const);

/** ONNX `AttributeProto.AttributeType` values the builder uses. */
export const OnnxAttributeType = Object.freeze({
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  FLOATS: 6,
  INTS: 7,
} as const);

const descriptor = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            refAttrName: { type: 'string', id: 21 },
            docString: { type: 'string', id: 13 },
            type: { type: 'AttributeType', id: 20 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            g: { type: 'GraphProto', id: 6 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            strings: { rule: 'repeated', type: 'bytes', id: 9 },
            tensors: { rule: 'repeated', type: 'TensorProto', id: 10 },
            graphs: { rule: 'repeated', type: 'GraphProto', id: 11 },
          },
          nested: {
            AttributeType: {
              values: {
                UNDEFINED: 0,
                FLOAT: 1,
                INT: 2,
                STRING: 3,
                TENSOR: 4,
                GRAPH: 5,
                SPARSE_TENSOR: 11,
                TYPE_PROTO: 13,
                FLOATS: 6,
                INTS: 7,
                STRINGS: 8,
                TENSORS: 9,
                GRAPHS: 10,
                SPARSE_TENSORS: 12,
                TYPE_PROTOS: 14,
              },
            },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { type: 'string', id: 1 },
            type: { type: 'TypeProto', id: 2 },
            docString: { type: 'string', id: 3 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            domain: { type: 'string', id: 7 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            docString: { type: 'string', id: 6 },
          },
        },
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            producerName: { type: 'string', id: 2 },
            producerVersion: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            modelVersion: { type: 'int64', id: 5 },
            docString: { type: 'string', id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            metadataProps: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
        StringStringEntryProto: {
          fields: {
            key: { type: 'string', id: 1 },
            value: { type: 'string', id: 2 },
          },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            docString: { type: 'string', id: 10 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            valueInfo: { rule: 'repeated', type: 'ValueInfoProto', id: 13 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            floatData: { rule: 'repeated', type: 'float', id: 4, options: { packed: true } },
            int32Data: { rule: 'repeated', type: 'int32', id: 5, options: { packed: true } },
            stringData: { rule: 'repeated', type: 'bytes', id: 6 },
            int64Data: { rule: 'repeated', type: 'int64', id: 7, options: { packed: true } },
            name: { type: 'string', id: 8 },
            docString: { type: 'string', id: 12 },
            rawData: { type: 'bytes', id: 9 },
            externalData: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
            doubleData: { rule: 'repeated', type: 'double', id: 10, options: { packed: true } },
            uint64Data: { rule: 'repeated', type: 'uint64', id: 11, options: { packed: true } },
          },
          nested: {
            DataType: {
              values: {
                UNDEFINED: 0,
                FLOAT: 1,
                UINT8: 2,
                INT8: 3,
                UINT16: 4,
                INT16: 5,
                INT32: 6,
                INT64: 7,
                STRING: 8,
                BOOL: 9,
                FLOAT16: 10,
                DOUBLE: 11,
                UINT32: 12,
                UINT64: 13,
                COMPLEX64: 14,
                COMPLEX128: 15,
                BFLOAT16: 16,
              },
            },
          },
        },
        TensorShapeProto: {
          fields: {
            dim: { rule: 'repeated', type: 'Dimension', id: 1 },
          },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
              fields: {
                dimValue: { type: 'int64', id: 1 },
                dimParam: { type: 'string', id: 2 },
                denotation: { type: 'string', id: 3 },
              },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensorType'] } },
          fields: {
            tensorType: { type: 'Tensor', id: 1 },
            denotation: { type: 'string', id: 6 },
          },
          nested: {
            Tensor: {
              fields: {
                elemType: { type: 'int32', id: 1 },
                shape: { type: 'TensorShapeProto', id: 2 },
              },
            },
          },
        },
        OperatorSetIdProto: {
          fields: {
            domain: { type: 'string', id: 1 },
            version: { type: 'int64', id: 2 },
          },
        },
      },
    },
  },
};

/** Plain-object shapes of the messages the builder writes (camelCase, as protobufjs names fields). */
export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

/** A `TensorProto` as the builder writes it: raw little-endian data. */
export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

/** A `TensorShapeProto.Dimension`: exactly one of `dimValue` (fixed size) or `dimParam` (symbolic name). */
export type OnnxDimension = { dimValue: number } | { dimParam: string };

/** A `ValueInfoProto` holding a tensor type. */
export interface OnnxValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: OnnxDimension[] } } };
  docString?: string;
}

/** A `NodeProto`. */
export interface OnnxNode {
  name: string;
  opType: string;
  input: string[];
  output: string[];
  attribute: OnnxAttribute[];
  domain?: string;
}

/** A `ModelProto` with the fields the builder sets. */
export interface OnnxModel {
  irVersion: number;
  opsetImport: { domain: string; version: number }[];
  producerName: string;
  producerVersion?: string;
  docString?: string;
  graph: {
    name: string;
    node: OnnxNode[];
    initializer: OnnxTensor[];
    input: OnnxValueInfo[];
    output: OnnxValueInfo[];
    docString?: string;
  };
  metadataProps: { key: string; value: string }[];
}

let modelType: protobuf.Type | undefined;

function getModelType(): protobuf.Type {
  // Resolved lazily and once: building the reflection tree costs a few milliseconds we need not pay at import.
  if (!modelType) {
    // protobufjs reads JSON-described messages as proto3, whose implicit presence drops zero values (an INT
    // attribute with i = 0 would carry no value field at all). onnx.proto is proto2, so say so per message.
    const messages = Object.fromEntries(
      Object.entries(descriptor.nested.onnx.nested).map(([name, type]) => [
        name,
        { ...type, edition: 'proto2' },
      ]),
    );
    modelType = protobuf.Root.fromJSON({ nested: { onnx: { nested: messages } } }).lookupType(
      'onnx.ModelProto',
    );
  }
  return modelType;
}

/**
 * Serialises a model to ONNX protobuf bytes. `verify` runs first, so a field of the wrong kind fails here
 * with protobufjs's message instead of producing a file onnxruntime rejects later.
 *
 * The result may be a view over a slightly larger `ArrayBuffer`: honour `byteOffset`/`byteLength` (Node's
 * `fs.writeFile` and onnxruntime do) rather than using `.buffer` directly.
 */
export function encodeModel(model: OnnxModel): Uint8Array {
  const type = getModelType();
  const problem = type.verify(model);
  if (problem) throw new Error(`Invalid ONNX model: ${problem}`);
  // A writer grows by doubling and copies out on finish(); for a ~100 MB model those fresh buffers cost more
  // than the encoding itself. Starting from a buffer that already fits and returning a view of it leaves one
  // allocation. The estimate only has to be close: the writer still grows if it falls short.
  const writer = protobuf.Writer.create();
  writer.buf = allocate(estimateEncodedSize(model));
  return type.encode(type.fromObject(model), writer).finish(true);
}

const allocate = (size: number): Uint8Array =>
  typeof Buffer === 'function' ? Buffer.allocUnsafe(size) : new Uint8Array(size);

function estimateEncodedSize(model: OnnxModel): number {
  let size = 64 * 1024;
  for (const t of model.graph.initializer) size += t.rawData.length + t.name.length + 16 + 11 * t.dims.length;
  for (const n of model.graph.node) {
    size += 32 + n.name.length + n.opType.length;
    for (const v of [...n.input, ...n.output]) size += v.length + 2;
    for (const a of n.attribute)
      size += 24 + a.name.length + 11 * (a.ints?.length ?? 0) + 5 * (a.floats?.length ?? 0);
  }
  for (const e of model.metadataProps) size += e.key.length * 3 + e.value.length * 3 + 8;
  return size;
}

/**
 * Parses ONNX bytes back into plain objects (int64 fields as numbers, bytes as `Uint8Array`). Meant for
 * tests and tooling that inspect what the builder wrote; it only knows the fields listed above.
 */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  const type = getModelType();
  return type.toObject(type.decode(bytes), { longs: Number, defaults: false, arrays: true }) as OnnxModel;
}
