/** Something that can be told when capacity may have freed up. */
export interface GateTicket {
  priority: 'critical' | 'normal';
  /** Extra condition (e.g. the broadcast still running); checked at each pump. */
  eligible: () => boolean;
  grant: () => void;
  reject: (error: Error) => void;
}

/** The gate was closed (shutdown) or the waiter gave up. */
export class GateClosedError extends Error {
  override readonly name = 'GateClosedError';
  readonly code = 'gate_closed';
}

/**
 * A local priority semaphore (one replica's pipeline places; the call caps shared by all replicas
 * are in slots.ts): critical waiters are admitted before normal ones, normal ones in arrival order
 * (so broadcasts sharing the account take turns). Waiters whose own condition does not hold are
 * skipped without blocking those behind them.
 */
export class PriorityGate {
  private inUse = 0;
  private readonly waiters: GateTicket[] = [];

  constructor(private capacity: number) {}

  get size(): number {
    return this.inUse;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Wait for a place; the returned function gives it back (idempotent). */
  enter(priority: 'critical' | 'normal', eligible: () => boolean, signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new GateClosedError('aborted'));
      const ticket: GateTicket = {
        priority,
        eligible,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.inUse -= 1;
            this.pump();
          });
        },
        reject,
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(ticket);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new GateClosedError('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(ticket);
      this.pump();
    });
  }

  /** Re-check waiters (call after any change to their conditions). */
  pump(): void {
    for (const priority of ['critical', 'normal'] as const) {
      for (let i = 0; i < this.waiters.length && this.inUse < this.capacity; ) {
        const ticket = this.waiters[i]!;
        if (ticket.priority !== priority || !ticket.eligible()) {
          i += 1;
          continue;
        }
        this.waiters.splice(i, 1);
        this.inUse += 1;
        ticket.grant();
      }
      // Normal waiters never overtake an eligible critical one still waiting.
      if (this.waiters.some((t) => t.priority === 'critical' && t.eligible())) return;
    }
  }

  /** Reject every waiter (shutdown). */
  close(): void {
    for (const ticket of this.waiters.splice(0)) ticket.reject(new GateClosedError('closed'));
  }
}
