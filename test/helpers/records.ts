/**
 * Records for tests that feed an Aggregator: a connection's totals plus what
 * the kernel adds for counting (src/telemetry/record.ts RecordCounts).
 */
import type { Connection, RecordCounts } from '../../src/telemetry/record';

/** The connection's only record (or its first): everything in it is new. */
export function whole<T extends Connection>(c: T): T & RecordCounts {
  return { ...c, first: true, newBytesSent: c.bytesSent, newBytesReceived: c.bytesReceived, newRetransmits: c.retransmits };
}

/** A later record of a connection whose previous record reported `prior`. */
export function after<T extends Connection>(c: T, prior: Pick<Connection, 'bytesSent' | 'bytesReceived' | 'retransmits'>): T & RecordCounts {
  return {
    ...c, first: false, newBytesSent: c.bytesSent - prior.bytesSent,
    newBytesReceived: c.bytesReceived - prior.bytesReceived, newRetransmits: c.retransmits - prior.retransmits,
  };
}
