/**
 * From the kernel to a collector: the real agent process, real connections
 * through a VIP, and a real gRPC OTLP receiver that must get one CLIENT span
 * per connection with the semantic-convention and sockmesh attributes.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { lockPath } from '../../../src/agent/instance-lock';
import { cgroup2Root, ScratchCgroup } from '../../../src/platform/cgroup';
import { AgentProc, agentCli, writeMesh } from '../../helpers/agent-proc';
import { runInCgroup, startFixture } from '../../helpers/child';
import { Cleanup } from '../../helpers/cleanup';
import { needsKernel } from '../../helpers/kernel';
import { snapshot, waitForNoLeftovers } from '../../helpers/leftovers';
import { TestNetns } from '../../helpers/netns';
import { OtlpReceiver, WireSpanKind } from '../../helpers/otlp-receiver';
import { waitFor } from '../../helpers/wait';

test('the agent exports one span per connection to a real OTLP/gRPC receiver', { timeout: 60_000 }, async (t) => {
  if (!needsKernel(t)) return;
  const before = snapshot();
  const cleanup = new Cleanup();
  try {
    const receiver = cleanup.add('receiver', await OtlpReceiver.start(), (r) => r.close());
    const ns = cleanup.add('netns', TestNetns.create('otlp'), (n) => n.remove());
    const cg = cleanup.add('cgroup', ScratchCgroup.create(`sockmesh-test-${process.pid}-otlp`), (c) => c.remove());
    const be = await startFixture<{ ports: number[] }>(undefined, 'backend', ['127.0.0.1', '0'], ns.prefix());
    cleanup.defer('backend', be.stop);
    const port = be.ready.ports[0]!;
    const rel = path.relative(cgroup2Root()!, cg.path);
    const meshFile = writeMesh(`apiVersion: sockmesh.io/v1alpha1
kind: Mesh
network: { vipCIDRs: [127.77.0.0/16] }
services:
  - name: web
    vips: [127.77.0.60]
    ports: [{ name: http, port: 80, targetPort: ${port} }]
    backends: [{ address: 127.0.0.1, labels: { version: v1 } }]
workloads:
  - { name: client, cgroup: ${rel} }
`);
    cleanup.defer('mesh file', () => fs.rmSync(path.dirname(meshFile), { recursive: true, force: true }));
    const instance = `t${process.pid}otlp`;
    const args = ['-c', meshFile, '--instance', instance, '--cgroup-root', rel, '--metrics-address', '127.0.0.1:0',
      '--api-socket', `/tmp/sockmesh-${instance}.sock`, '--otlp-endpoint', receiver.endpoint];
    // Last: the lock file and API socket the agent and the uninstall leave (reverse order).
    cleanup.defer('lock file, api socket', () => [lockPath(`/sys/fs/bpf/sockmesh/${instance}`), `/tmp/sockmesh-${instance}.sock`].forEach((f) => fs.rmSync(f, { force: true })));
    cleanup.defer('uninstall', () => agentCli(['agent', ...args, '--uninstall']));
    const agent = AgentProc.start(args);
    cleanup.defer('agent', () => agent.kill('SIGKILL'));
    await agent.waitForLog('agent running');

    await runInCgroup(cg.path, 'vip-client', ['tcp', '127.77.0.60', '80', '5'], 30_000, ns.prefix());
    await waitFor(() => receiver.spans.length >= 5, 'five spans at the receiver', 20_000);
    assert.equal(receiver.spans.length, 5);
    for (const s of receiver.spans) {
      assert.equal(s.kind, WireSpanKind.CLIENT);
      assert.equal(s.name, 'tcp default/web:http');
      assert.ok(s.endTimeUnixNano > s.startTimeUnixNano);
      const a = s.attributes;
      assert.equal(a['network.transport'], 'tcp');
      assert.equal(a['network.type'], 'ipv4');
      assert.equal(a['server.address'], '127.77.0.60', 'server.address is the VIP the client dialled');
      assert.equal(a['server.port'], 80n);
      assert.equal(a['network.peer.address'], '127.0.0.1');
      assert.equal(a['network.peer.port'], BigInt(port));
      assert.equal(a['sockmesh.service'], 'default/web:http');
      assert.equal(a['sockmesh.backend'], `127.0.0.1:${port}`);
      assert.equal(a['sockmesh.workload'], 'default/client');
      assert.equal(a['sockmesh.close_cause'], 'fin');
      assert.ok(typeof a['sockmesh.bytes_received'] === 'bigint' && a['sockmesh.bytes_received'] > 0n);
      assert.equal(s.resource['service.name'], 'sockmesh-agent');
    }
    await agent.kill('SIGTERM');
  } finally {
    await cleanup.run();
  }
  assert.deepEqual(await waitForNoLeftovers(before), []);
});
