/** `sockmesh demo`: the local demo mesh (see src/demo/demo.ts). */
import { Command, Option } from 'commander';
import { cleanupCrashedDemo, runDemo } from '../../demo/demo';

export function demoCommand(): Command {
  return new Command('demo')
    .description('run a local demo mesh: 5 pods in network namespaces and cgroups, the agent, traffic through VIPs')
    .option('-d, --duration <seconds>', 'stop after this many seconds (default: until Ctrl-C)', '0')
    .option('--metrics-address <host:port>', 'where the demo agent serves /metrics', '127.0.0.1:9464')
    .addOption(new Option('-o, --output <format>', 'live table, or one JSON summary at the end').choices(['table', 'json']).default('table'))
    .addOption(new Option('--log-level <level>').choices(['debug', 'info', 'warn', 'error']).default('warn'))
    .option('--cleanup', 'remove whatever a crashed demo left behind, then exit')
    .action(async (raw: { duration: string; metricsAddress: string; output: 'table' | 'json'; logLevel: 'debug' | 'info' | 'warn' | 'error'; cleanup?: boolean }) => {
      if (raw.cleanup) {
        const removed = await cleanupCrashedDemo();
        process.stdout.write(removed.length ? `removed:\n  ${removed.join('\n  ')}\n` : 'nothing to clean up\n');
        return;
      }
      const durationS = Number(raw.duration);
      if (!Number.isFinite(durationS) || durationS < 0) throw new Error(`--duration must be a number of seconds >= 0, got ${raw.duration}`);
      const summary = await runDemo({ durationS, metricsAddress: raw.metricsAddress, output: raw.output, logLevel: raw.logLevel });
      if (raw.output === 'json') process.stdout.write(JSON.stringify(summary) + '\n');
      else process.stdout.write(`\ndemo stopped; removed ${summary.removed.length} things it made.\n`);
    });
}
