#!/usr/bin/env node
// The README's test command (npm test): every compiled test under dist/test,
// unit tests first, then kernel tests one file at a time (they share the
// kernel: cgroups, programs, bpffs). Builds nothing: run `npm run build` first.
// `npm test -- NAME` runs only the files whose path contains NAME.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'dist', 'test');
if (!fs.existsSync(root)) {
  console.error('dist/test is missing: run `npm run build` first (needs clang, libbpf-dev, bpftool; see README).');
  process.exit(2);
}

function find(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' ? [] : find(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  }).sort();
}

const filter = process.argv[2];
const pick = (files) => (filter ? files.filter((f) => f.includes(filter)) : files);
const unit = pick(find(path.join(root, 'unit')));
const kernel = pick(find(path.join(root, 'kernel')));
if (unit.length + kernel.length === 0) {
  console.error(`no test files${filter ? ` matching "${filter}"` : ''} under dist/test`);
  process.exit(2);
}
const res = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=120000', ...unit, ...kernel], { stdio: 'inherit' });
process.exit(res.status ?? 1);
