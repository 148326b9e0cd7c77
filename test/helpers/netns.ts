/**
 * Network namespaces for tests: loopback only, no other interface, no route
 * out - a VIP whose program is missing is unreachable, never sent anywhere.
 */
import { execFileSync } from 'node:child_process';

export class TestNetns {
  private constructor(readonly name: string) {}

  static create(tag: string): TestNetns {
    const name = `smt-${process.pid}-${tag}`.slice(0, 30);
    execFileSync('ip', ['netns', 'add', name]);
    const ns = new TestNetns(name);
    try {
      ns.exec(['ip', 'link', 'set', 'lo', 'up']);
      // IPv6 loopback extras so fixtures can bind test addresses.
      ns.exec(['ip', '-6', 'addr', 'add', 'fd77::1/128', 'dev', 'lo']);
    } catch (err) {
      ns.remove();
      throw err;
    }
    return ns;
  }

  exec(cmd: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...cmd], { encoding: 'utf8' });
  }

  /** argv prefix that runs a command inside this namespace. */
  prefix(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  /** Idempotent. */
  remove(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch { /* already gone */ }
  }
}
