#!/usr/bin/env node
/**
 * npm run bench -- NAME [ARGS...]
 *
 * Runs the compiled bench dist/bench/NAME.js (from bench/NAME.ts) with node,
 * passing ARGS through, and exits with its status. Builds nothing: run
 * `npm run build` first. Without NAME, or with an unknown one, lists the
 * benches there are.
 */
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const srcDir = path.join(root, 'bench');
const distDir = path.join(root, 'dist', 'bench');

/** Bench names: top-level .ts files of bench/ (bench/lib/ holds helpers). */
function names(dir, ext) {
  try {
    return fs.readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith(ext) && !e.name.endsWith('.d.ts'))
      .map((e) => e.name.slice(0, -ext.length));
  } catch {
    return [];
  }
}

function listing() {
  const built = new Set(names(distDir, '.js'));
  const all = [...new Set([...names(srcDir, '.ts'), ...built])].sort();
  if (all.length === 0) return '  (none)';
  return all.map((n) => `  ${n}${built.has(n) ? '' : '  (not built: npm run build)'}`).join('\n');
}

function fail(msg) {
  process.stderr.write(`run-bench: ${msg}\n`);
  process.exit(2);
}

const [name, ...args] = process.argv.slice(2);
const usage = 'usage: npm run bench -- NAME [ARGS...]';

if (!name || name === '-h' || name === '--help') {
  const out = `${usage}\n\nbenches:\n${listing()}\n`;
  if (!name) fail(`no bench named.\n${out}`);
  process.stdout.write(out);
  process.exit(0);
}
if (!/^[A-Za-z0-9_-]+$/.test(name)) fail(`invalid bench name '${name}'.\n${usage}\n\nbenches:\n${listing()}`);

if (!fs.existsSync(path.join(root, 'dist'))) {
  fail('dist/ is missing: nothing is built. Run `npm run build` (or `npm run build:ts` if the BPF objects and the addon are built), then retry.');
}

const file = path.join(distDir, `${name}.js`);
if (!fs.existsSync(file)) {
  if (fs.existsSync(path.join(srcDir, `${name}.ts`))) {
    fail(`bench '${name}' is not built (no ${path.relative(root, file)}). Run \`npm run build\` (or \`npm run build:ts\`), then retry.`);
  }
  fail(`unknown bench '${name}'.\n\nbenches:\n${listing()}`);
}

// --expose-gc: benches may collect garbage between timed runs.
const child = spawn(process.execPath, ['--expose-gc', file, ...args], { stdio: 'inherit', cwd: root });
const forward = (sig) => () => {
  // Ctrl-C reaches the child through the terminal's process group; a signal
  // sent to this process alone is passed on so the bench can clean up.
  if (child.exitCode === null && child.signalCode === null) child.kill(sig);
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, forward(sig));
child.on('error', (err) => fail(`cannot start ${process.execPath}: ${err.message}`));
child.on('exit', (code, signal) => {
  if (signal) {
    process.stderr.write(`run-bench: ${name} ended by ${signal}\n`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
