/**
 * Undo stack for tests: every resource is registered as it is made and
 * released in reverse order, also when the test fails half-way.
 */
export class Cleanup {
  private readonly steps: { what: string; fn: () => unknown }[] = [];

  /** Registers `fn`; returns `value` so creation and registration are one line. */
  add<T>(what: string, value: T, fn: (v: T) => unknown): T {
    this.steps.push({ what, fn: () => fn(value) });
    return value;
  }

  defer(what: string, fn: () => unknown): void {
    this.steps.push({ what, fn });
  }

  /** Runs every step even if some fail; throws one error listing the failures. */
  async run(): Promise<void> {
    const errors: string[] = [];
    while (this.steps.length) {
      const s = this.steps.pop()!;
      try {
        await s.fn();
      } catch (err) {
        errors.push(`${s.what}: ${(err as Error).message}`);
      }
    }
    if (errors.length) throw new Error(`cleanup failed:\n  ${errors.join('\n  ')}`);
  }
}
