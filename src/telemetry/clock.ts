/**
 * The kernel's times (bpf_ktime_get_ns: CLOCK_MONOTONIC) on the wall clock,
 * for spans and for the times the API shows.
 */
import type { HrTime } from '@opentelemetry/api';

/**
 * CLOCK_MONOTONIC ns -> wall-clock HrTime. bpf_ktime_get_ns and
 * process.hrtime (libuv: clock_gettime(CLOCK_MONOTONIC)) share the clock, so
 * one offset converts every record; Date.now() limits it to ~1 ms accuracy,
 * but durations stay exact. The offset is taken again by sync(): the wall
 * clock steps (NTP's first sync after a node boots, an operator's date) while
 * the monotonic one does not, and spans must follow the wall clock. Integer
 * arithmetic in two parts because wall-clock ns (~1.7e18) is beyond 2^53.
 */
export class MonotonicClock {
  private offSec = 0;
  private offNs = 0;

  constructor(private readonly wallMs: () => number = Date.now) {
    this.sync();
  }

  sync(): void {
    const h0 = process.hrtime.bigint();
    const wallMs = this.wallMs();
    const h1 = process.hrtime.bigint();
    const offset = BigInt(wallMs) * 1_000_000n - (h0 + h1) / 2n;
    this.offSec = Number(offset / 1_000_000_000n);
    this.offNs = Number(offset % 1_000_000_000n);
  }

  toHrTime(monoNs: number): HrTime {
    // A garbage time must not poison the batch it travels in: clamp it.
    const ns = Number.isFinite(monoNs) && monoNs > 0 ? Math.round(monoNs) : 0;
    const s = Math.floor(ns / 1e9);
    let sec = s + this.offSec;
    let rem = ns - s * 1e9 + this.offNs;
    if (rem >= 1e9) {
      sec++;
      rem -= 1e9;
    } else if (rem < 0) {
      sec--;
      rem += 1e9;
    }
    return [sec, rem];
  }

  /** RFC 3339 with milliseconds, UTC. */
  toIso(monoNs: number): string {
    const [sec, ns] = this.toHrTime(monoNs);
    return new Date(sec * 1000 + Math.floor(ns / 1e6)).toISOString();
  }
}
