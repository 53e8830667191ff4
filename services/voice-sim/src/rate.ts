/** A rolling one-second window: at most `limit` admissions in any 1000 ms; excess is refused, never queued. */
export class RollingWindow {
  private times: number[] = [];
  private head = 0;
  /** The most admissions ever seen inside one rolling second. */
  maxInWindow = 0;

  constructor(public limit: number) {}

  /** Admit at `nowMs` if the window has room (limit 0 = unlimited). */
  tryAcquire(nowMs: number): boolean {
    while (this.head < this.times.length && nowMs - (this.times[this.head] as number) >= 1000) this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
    const inWindow = this.times.length - this.head;
    if (this.limit > 0 && inWindow >= this.limit) return false;
    this.times.push(nowMs);
    this.maxInWindow = Math.max(this.maxInWindow, inWindow + 1);
    return true;
  }

  reset(): void {
    this.times = [];
    this.head = 0;
    this.maxInWindow = 0;
  }
}
