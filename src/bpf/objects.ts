/** Where the compiled BPF objects live (bpf/Makefile writes them). */
import fs from 'node:fs';
import path from 'node:path';
import { BpfArgumentError } from './errors';
import { repoRoot } from './native';

export const BPF_OUTPUT_DIR = path.join(repoRoot, 'bpf', '.output');

/** Path of bpf/.output/NAME.bpf.o; a clear error if it was never built. */
export function objectPath(name: string): string {
  const p = path.join(BPF_OUTPUT_DIR, `${name}.bpf.o`);
  if (!fs.existsSync(p)) throw new BpfArgumentError(`${p} does not exist: build the BPF objects with \`npm run build:bpf\``);
  return p;
}
