/**
 * sockmesh's version: package.json's, the one place it is written. The CLI
 * prints it, and an agent reports it (status, its instance lock) - during a
 * rollout that is how an operator tells the nodes' agents apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './bpf/native';

function read(): string {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
    const v = typeof pkg === 'object' && pkg !== null ? (pkg as { version?: unknown }).version : undefined;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION: string = read();
