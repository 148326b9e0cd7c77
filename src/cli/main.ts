#!/usr/bin/env node
/**
 * The sockmesh CLI. Each subcommand lives in its own module under commands/
 * and exports a factory returning a commander Command; adding one (agent,
 * status, services, ...) is one module plus one line in COMMANDS.
 */
import { Command } from 'commander';
import { VERSION } from '../version';
import { agentCommand } from './commands/agent';
import { demoCommand } from './commands/demo';
import { doctorCommand } from './commands/doctor';
import { statusCommand } from './commands/status';
import { servicesCommand } from './commands/services';
import { backendsCommand } from './commands/backends';
import { connectionsCommand } from './commands/connections';
import { edgesCommand } from './commands/edges';
import { validateCommand } from './commands/validate';

const COMMANDS: ReadonlyArray<() => Command> = [agentCommand, demoCommand, doctorCommand, statusCommand, servicesCommand, backendsCommand, edgesCommand, connectionsCommand, validateCommand];

export function buildProgram(): Command {
  const program = new Command('sockmesh')
    .description('sidecarless service mesh node agent (eBPF)')
    .version(VERSION)
    .showHelpAfterError('(add --help for usage)');
  // addCommand() does not pass settings down the way .command() does.
  for (const make of COMMANDS) program.addCommand(make().copyInheritedSettings(program));
  return program;
}

/**
 * The reader of our output went away (`sockmesh connections | head`): stop
 * the way a pipe's writer does instead of dying on an unhandled EPIPE with a
 * stack trace. Through SIGTERM, so the agent and the demo stop by their own
 * handlers (and clean up); the other commands have none and simply end.
 */
export function stopOnClosedStdout(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    stream.destroy();
    process.kill(process.pid, 'SIGTERM');
  });
}

if (require.main === module) {
  stopOnClosedStdout();
  buildProgram().parseAsync(process.argv).catch((err: unknown) => {
    // Usage errors exit inside commander; this is everything else.
    process.stderr.write(`sockmesh: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  });
}
