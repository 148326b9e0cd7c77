/** The typed face of the kernel path. */
export { BpfError, VerifierError, BpfArgumentError } from './errors';
export { BpfObjectSpec, Collection } from './object';
export type { ConstantValue } from './object';
export { Program } from './program';
export { BpfMap, mapTypeName } from './map';
export type { MapEntry, UpdateMode } from './map';
export { IteratorWalk, Link } from './link';
export { RingBufferReader, forEachRecord } from './ringbuf';
export type { RingBufferOptions, RecordHandler, RingBufferStats } from './ringbuf';
export { struct, StructLayout } from './layout';
export { native } from './native';
export { objectPath } from './objects';
export { RunTimeStats, programCosts, costDelta } from './stats';
export type { ProgramCost } from './stats';
