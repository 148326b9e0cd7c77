/**
 * What runs around the agent core: the metrics/health HTTP server, the local
 * API and the OTLP exporter. Each registers its own stop step, so the
 * agent's stop() takes them down in reverse order.
 */
import { startApiServer } from '../api/server';
import { OtlpConnectionExporter } from '../exporters/otlp';
import { PrometheusExporter } from '../exporters/prometheus';
import type { Agent } from './agent';
import { startHttpServer } from './http';
import type { Logger } from './log';

export async function startAddons(agent: Agent, log: Logger): Promise<{ metricsPort: number }> {
  const endpoint = agent.settings.otlpEndpoint;
  if (endpoint) {
    const otlp = new OtlpConnectionExporter({ endpoint, instance: agent.settings.instance });
    agent.aggregator.onRecord((rec, edge) => otlp.record(rec, edge.labels));
    agent.otlpStats = () => {
      const s = otlp.stats();
      return { endpoint, exported: s.exported, failed: s.failed, dropped: s.dropped };
    };
    // Last to stop: the exporter flushes what the pipeline handed it.
    agent.addStopStep(() => otlp.shutdown());
    log.info('exporting connection spans', { endpoint });
  }
  const prom = new PrometheusExporter();
  prom.attach(agent.aggregator);
  prom.setAgentCollector(() => {
    const st = agent.status();
    return {
      records: st.ringbuf.records,
      ringDropped: st.ringbuf.dropped,
      decodeErrors: st.ringbuf.decodeErrors,
      openConnections: st.openConnections,
      services: st.services,
      workloads: st.workloads ?? 0,
      configRejected: st.config.rejected !== undefined,
      ...(st.config.appliedAt ? { configAppliedAtMs: Date.parse(st.config.appliedAt) } : {}),
      ...(st.otlp ? { otlp: st.otlp } : {}),
      verdicts: agent.verdicts(),
      programs: st.bpfStats?.programs ?? [],
    };
  });
  const http = await startHttpServer({
    address: agent.settings.metricsAddress,
    exporter: prom,
    health: () => ({ live: true }),
    ready: () => agent.ready,
    onError: (err) => log.error('metrics server error', { err }),
  });
  agent.addStopStep(() => http.close());
  log.info('metrics listening', { address: `${agent.settings.metricsAddress.host}:${http.port}` });
  const api = await startApiServer(agent.settings.apiSocket, agent, { log: (msg) => log.warn(msg, { component: 'api' }) });
  agent.addStopStep(() => api.close());
  return { metricsPort: http.port };
}
