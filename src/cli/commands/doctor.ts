/** `sockmesh doctor`: parse flags, run the checks, print, set the exit code. */
import { Command, Option } from 'commander';
import { runDoctor, ProgressFn } from '../../doctor/checks';
import { OUTPUT_FORMATS, OutputFormat, exitCode, render } from '../../doctor/render';

interface DoctorFlags {
  output: OutputFormat;
  mountBpffs: boolean;
}

/** Commander hands options over untyped; this is the one place they are checked. */
function parseFlags(raw: Record<string, unknown>): DoctorFlags {
  const output = raw.output;
  if (!OUTPUT_FORMATS.some((f) => f === output)) throw new Error(`unexpected output format ${String(output)}`);
  return { output: output as OutputFormat, mountBpffs: raw.mountBpffs === true };
}

/**
 * Progress on stderr, and only once a run is slow: the checks are
 * synchronous, so this is consulted between steps rather than on a timer.
 */
function slowProgress(thresholdMs: number, start = Date.now()): ProgressFn {
  return (step) => {
    const elapsed = Date.now() - start;
    if (elapsed >= thresholdMs) process.stderr.write(`doctor: ${step} (${(elapsed / 1000).toFixed(1)}s)\n`);
  };
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('check that this node can run the sockmesh agent (BTF, bpffs, cgroup v2, program/map types, attach, helpers)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .option('--mount-bpffs', 'mount bpffs at /sys/fs/bpf if it is not mounted', false)
    .action((_opts: unknown, cmd: Command) => {
      const flags = parseFlags(cmd.opts());
      const results = runDoctor({ mountBpffs: flags.mountBpffs, progress: slowProgress(1000) });
      process.stdout.write(render(flags.output, results));
      process.exitCode = exitCode(results);
    });
}
