/**
 * A real OTLP/gRPC trace receiver for tests: @grpc/grpc-js server on
 * 127.0.0.1, requests decoded with protobufjs from a minimal subset of the
 * opentelemetry-proto definitions (the fields the exporter sends; protobufjs
 * skips the rest, like events and links). Deliberately independent of the
 * OTel JS packages, so that the test checks the bytes on the wire.
 */
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

const COMMON = `
syntax = "proto3";
package opentelemetry.proto.common.v1;
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
`;

const RESOURCE = `
syntax = "proto3";
package opentelemetry.proto.resource.v1;
message Resource {
  repeated .opentelemetry.proto.common.v1.KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}
`;

const TRACE = `
syntax = "proto3";
package opentelemetry.proto.trace.v1;
message ResourceSpans {
  .opentelemetry.proto.resource.v1.Resource resource = 1;
  repeated ScopeSpans scope_spans = 2;
  string schema_url = 3;
}
message ScopeSpans {
  .opentelemetry.proto.common.v1.InstrumentationScope scope = 1;
  repeated Span spans = 2;
  string schema_url = 3;
}
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;
  enum SpanKind {
    SPAN_KIND_UNSPECIFIED = 0;
    SPAN_KIND_INTERNAL = 1;
    SPAN_KIND_SERVER = 2;
    SPAN_KIND_CLIENT = 3;
    SPAN_KIND_PRODUCER = 4;
    SPAN_KIND_CONSUMER = 5;
  }
  SpanKind kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated .opentelemetry.proto.common.v1.KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  Status status = 15;
}
message Status {
  reserved 1;
  string message = 2;
  enum StatusCode {
    STATUS_CODE_UNSET = 0;
    STATUS_CODE_OK = 1;
    STATUS_CODE_ERROR = 2;
  }
  StatusCode code = 3;
}
`;

const COLLECTOR = `
syntax = "proto3";
package opentelemetry.proto.collector.trace.v1;
service TraceService {
  rpc Export(ExportTraceServiceRequest) returns (ExportTraceServiceResponse) {}
}
message ExportTraceServiceRequest {
  repeated .opentelemetry.proto.trace.v1.ResourceSpans resource_spans = 1;
}
message ExportTraceServiceResponse {
  ExportTracePartialSuccess partial_success = 1;
}
message ExportTracePartialSuccess {
  int64 rejected_spans = 1;
  string error_message = 2;
}
`;

const root = new protobuf.Root();
for (const src of [COMMON, RESOURCE, TRACE, COLLECTOR]) protobuf.parse(src, root, { keepCase: true });
root.resolveAll();
const RequestType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const ResponseType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');

/** Span.SpanKind and Status.StatusCode values on the wire. */
export const WireSpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
export const WireStatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

/** An attribute value as sent: int_value -> bigint, double_value -> number, so tests see which one was used. */
export type AttrValue = string | boolean | bigint | number | Buffer | AttrValue[] | { [key: string]: AttrValue };

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Record<string, AttrValue>;
  status: { code: number; message: string };
  resource: Record<string, AttrValue>;
  scope: { name: string; version: string };
}

// protobufjs' toObject output is untyped: these narrow it field by field.
type Obj = Record<string, unknown>;
function obj(v: unknown): Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
}
function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
function int(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}
function hex(v: unknown): string {
  return v instanceof Uint8Array ? Buffer.from(v).toString('hex') : '';
}
function big(v: unknown): bigint {
  // toObject({ longs: String }): 64-bit values arrive as decimal strings, exact.
  return typeof v === 'string' && v !== '' ? BigInt(v) : 0n;
}

function anyValue(v: unknown): AttrValue {
  const o = obj(v);
  if ('string_value' in o) return str(o.string_value);
  if ('bool_value' in o) return o.bool_value === true;
  if ('int_value' in o) return big(o.int_value);
  if ('double_value' in o) return typeof o.double_value === 'number' ? o.double_value : Number.NaN;
  if ('bytes_value' in o) return o.bytes_value instanceof Uint8Array ? Buffer.from(o.bytes_value) : Buffer.alloc(0);
  if ('array_value' in o) return list(obj(o.array_value).values).map(anyValue);
  if ('kvlist_value' in o) return keyValues(obj(o.kvlist_value).values);
  throw new Error(`AnyValue with no value: ${JSON.stringify(o)}`);
}

function keyValues(v: unknown): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list(v)) {
    const o = obj(kv);
    out[str(o.key)] = anyValue(o.value);
  }
  return out;
}

/** Flattens one decoded request into its spans, each with its resource and scope. */
export function decodeRequest(buf: Uint8Array): ReceivedSpan[] {
  const msg = RequestType.decode(buf);
  const req = obj(RequestType.toObject(msg, { longs: String, enums: Number }));
  const spans: ReceivedSpan[] = [];
  for (const rs of list(req.resource_spans)) {
    const rso = obj(rs);
    const resource = keyValues(obj(rso.resource).attributes);
    for (const ss of list(rso.scope_spans)) {
      const sso = obj(ss);
      const scope = obj(sso.scope);
      for (const sp of list(sso.spans)) {
        const s = obj(sp);
        const status = obj(s.status);
        spans.push({
          traceId: hex(s.trace_id),
          spanId: hex(s.span_id),
          parentSpanId: hex(s.parent_span_id),
          name: str(s.name),
          kind: int(s.kind),
          startTimeUnixNano: big(s.start_time_unix_nano),
          endTimeUnixNano: big(s.end_time_unix_nano),
          attributes: keyValues(s.attributes),
          status: { code: int(status.code), message: str(status.message) },
          resource,
          scope: { name: str(scope.name), version: str(scope.version) },
        });
      }
    }
  }
  return spans;
}

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export class OtlpReceiver {
  /** every span received, in arrival order */
  readonly spans: ReceivedSpan[] = [];
  /** Export calls seen, failed ones included */
  requests = 0;
  private failures: { code: grpc.status; left: number } | undefined;

  private constructor(private readonly server: grpc.Server, readonly port: number) {}

  /** Starts listening on 127.0.0.1:port (0: a free port). */
  static start(port = 0): Promise<OtlpReceiver> {
    const server = new grpc.Server();
    let receiver: OtlpReceiver | undefined;
    const definition: grpc.ServiceDefinition = {
      Export: {
        path: EXPORT_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: (req: Buffer): Buffer => req,
        requestDeserialize: (buf: Buffer): Buffer => buf,
        responseSerialize: (res: Uint8Array): Buffer => Buffer.from(res),
        responseDeserialize: (buf: Buffer): Buffer => buf,
      },
    };
    const exportCall: grpc.handleUnaryCall<Buffer, Uint8Array> = (call, callback) => {
      if (!receiver) return callback({ code: grpc.status.UNAVAILABLE, details: 'starting' });
      receiver.handle(call.request, callback);
    };
    server.addService(definition, { Export: exportCall });
    return new Promise((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) {
          server.forceShutdown();
          reject(err);
          return;
        }
        receiver = new OtlpReceiver(server, bound);
        resolve(receiver);
      });
    });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next `times` Export calls fail with gRPC status `code` (nothing is recorded from them). */
  failNext(times: number, code: grpc.status): void {
    this.failures = { code, left: times };
  }

  private handle(request: Buffer, callback: grpc.sendUnaryData<Uint8Array>): void {
    this.requests++;
    if (this.failures && this.failures.left > 0) {
      this.failures.left--;
      callback({ code: this.failures.code, details: 'injected failure' });
      return;
    }
    let spans: ReceivedSpan[];
    try {
      spans = decodeRequest(request);
    } catch (e) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: e instanceof Error ? e.message : String(e) });
      return;
    }
    this.spans.push(...spans);
    callback(null, ResponseType.encode(ResponseType.create({})).finish());
  }

  /** Stops at once, dropping open connections (a collector going away). */
  close(): Promise<void> {
    this.server.forceShutdown();
    return Promise.resolve();
  }
}
