/**
 * What runs around the agent core: the metrics/health HTTP server, the
 * local API, the OTLP exporter. Each registers its own stop step.
 */
import type { Agent } from './agent';
import type { Logger } from './log';

export async function startAddons(agent: Agent, log: Logger): Promise<void> {
  void agent;
  void log;
}
