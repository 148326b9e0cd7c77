/**
 * `sockmesh agent --config mesh.yaml`: runs the node agent in the foreground.
 * The one place where signals are handled: SIGINT/SIGTERM stop (pinned state
 * stays and keeps serving traffic), SIGHUP reloads the mesh file.
 * `--uninstall` removes every program, link, map and pin of the instance.
 * Either refuses while another agent runs the instance (src/agent/instance-lock.ts).
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { Agent } from '../../agent/agent';
import { desiredOf } from '../../agent/compile';
import { InstanceLock } from '../../agent/instance-lock';
import { startAddons } from '../../agent/addons';
import { createLogger } from '../../agent/log';
import { ConfigIssue, formatConfigIssue, SettingsError } from '../../config/errors';
import { parseMesh, readMeshText } from '../../config/load';
import { mergeSettings, readFileLayer, SETTINGS } from '../../config/settings';
import { Dataplane } from '../../dataplane/dataplane';
import { VERSION } from '../../version';

function unreadableAgentSection(file: string, issues: readonly ConfigIssue[]): Error {
  return new Error(`${file}: cannot tell which instance, cgroup root and pins this agent is for: the file's agent: section, ` +
    'or the YAML around it, is invalid. Nothing was started or removed (programs already pinned keep serving). ' +
    `Fix these, then run the command again:\n${issues.map(formatConfigIssue).join('\n')}`);
}

export function agentCommand(): Command {
  const cmd = new Command('agent')
    .description('run the sockmesh node agent: load the mesh programs, apply the mesh file, export telemetry')
    .option('-c, --config <file>', 'the mesh file (YAML), reloaded on change and on SIGHUP (required, except with --uninstall)')
    .option('--uninstall', 'remove every program, link, map and pin of this instance, then exit')
    .option('--no-watch', 'do not watch the mesh file (SIGHUP still reloads)');
  for (const s of Object.values(SETTINGS)) cmd.addOption(new Option(`${s.flag} <value>`, `${s.description} (env ${s.env})`));
  return cmd.action(async (raw: Record<string, unknown>) => {
    const file = typeof raw.config === 'string' ? raw.config : undefined;
    // --uninstall needs only the instance (flags, env, or the file's agent: section if one is given).
    if (file === undefined && raw.uninstall !== true) throw new Error('--config is required: the path to your mesh YAML (see examples/mesh.yaml)');
    if (file !== undefined) {
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (!st) throw new Error(`mesh file ${file} not found: pass --config with the path to your mesh YAML (see examples/mesh.yaml)`);
      if (!st.isFile()) throw new Error(`mesh file ${file} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}: pass --config with the path to your mesh YAML (see examples/mesh.yaml)`);
    }
    const parsed = file !== undefined ? parseMesh(readMeshText(file), file) : undefined;
    // The file's agent: section names the instance, cgroup root and pins. An
    // invalid service leaves it usable (the agent starts, keeps or rejects the
    // mesh); an unreadable section must not become the defaults: they would
    // start, or uninstall, another instance than the one this file runs.
    if (parsed && !parsed.ok && !parsed.agentLayer) throw unreadableAgentSection(file!, parsed.issues);
    const flags = Object.fromEntries(Object.entries(raw).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
    const merged = mergeSettings({ flags, env: process.env, ...(parsed?.agentLayer ? { file: parsed.agentLayer } : {}) });
    if (!merged.ok) throw new SettingsError([...merged.issues, ...(parsed && !parsed.ok ? parsed.issues.map((i) => ({ ...i, origin: 'file' as const })) : [])]);
    const settings = merged.settings;
    const log = createLogger(settings.logLevel, { instance: settings.instance });

    if (raw.uninstall === true) {
      // Never from under a running agent: it would go on with handles to what this removes.
      const holder = { pid: process.pid, instance: settings.instance, version: VERSION, startedAt: new Date().toISOString(), apiSocket: settings.apiSocket };
      const lock = await InstanceLock.acquire(settings.bpffsDir, holder);
      try {
        const removed = Dataplane.pinned(settings.bpffsDir) ? Dataplane.uninstallPinned(settings.bpffsDir) : [];
        log.info('uninstalled', { bpffsDir: settings.bpffsDir, removed });
      } finally {
        await lock.release();
      }
      return;
    }

    // Parsed once: the agent starts from this instead of reading the file again.
    const initialMesh = parsed?.ok ? { config: parsed.config, desired: desiredOf(parsed.config) } : undefined;
    const fileSettings = parsed?.agentLayer ? readFileLayer(parsed.agentLayer.values).values : undefined;
    const agent = new Agent({
      settings, meshFile: file!, log, watch: raw.watch !== false, ...(initialMesh ? { initialMesh } : {}), ...(fileSettings ? { fileSettings } : {}),
    });
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info('stopping; programs stay attached and pinned', { signal });
      agent.stop().then(() => process.exit(0), (err: unknown) => {
        log.error('stop failed', { err });
        process.exit(1);
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => void agent.reload('SIGHUP'));

    await agent.start();
    try {
      await startAddons(agent, log);
    } catch (err) {
      // e.g. the metrics port is taken: no half-started agent. A fresh install
      // is rolled back whole; adopted state keeps serving, as with any stop.
      if (agent.dataplane.outcome.kind === 'installed') await agent.uninstall();
      else await agent.stop();
      throw err;
    }
    log.info('agent running', { pid: process.pid, metrics: `${settings.metricsAddress.host}:${settings.metricsAddress.port}`, api: settings.apiSocket });
  });
}
