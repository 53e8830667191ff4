import type { KV } from '@clarion/nats';
import type { AttemptOutcome, DialJob } from '@clarion/contracts';
import { attemptKey } from '@clarion/contracts';

/** One signal seen for an attempt; the set of these decides the outcome. */
export interface LedgerSignal {
  status: string;
  detail?: string;
  digits?: string;
}

/**
 * The call ledger entry of one attempt (`<bid>.<cid>.<attempt>`):
 * claimed → (sending) → placed | ambiguous | released, then final once the outcome is known.
 */
export interface LedgerEntry {
  state: 'claimed' | 'placed' | 'ambiguous' | 'released' | 'final';
  broadcastId: string;
  contactId: string;
  attempt: number;
  number: string;
  owner: string;
  claimedAt: number;
  /**
   * When the owner, still holding this exact claim, was about to send the create request. Without it
   * the claim surely placed no call: the owner died or still waits for the pacer.
   */
  sendingAt?: number;
  /** The holder of an unsent claim renews it while waiting for the pacer (every third of the grace). */
  renewedAt?: number;
  /** How many create requests this attempt made (re-placed after an unresolved ambiguity). */
  tries: number;
  uuid?: string;
  placedAt?: number;
  ambiguousSince?: number;
  signals: LedgerSignal[];
  /** The job as claimed (without notBefore), so retries and finals need no other lookup. */
  job?: DialJob;
  outcome?: AttemptOutcome;
  /** When a final status (completed, rejected, error) was first applied. */
  finalSeenAt?: number;
  finalAt?: number;
  /** True once the outcome event and the retry job or contact final were published. */
  followedUp?: boolean;
  /** A late event upgraded the outcome from this one after the follow-up; the correction is being published. */
  upgradePending?: AttemptOutcome;
  retryAt?: number;
  reason?: string;
  /** Status checks (`GET /v1/calls/{uuid}`) the watchdog made for this attempt. */
  checks?: number;
  /** The watchdog looks again at (epoch ms); set by the replica that won the check. */
  nextCheckAt?: number;
  /** Re-queues after 429s or an unreachable API (the retry budget spent so far). */
  transientFailures?: number;
}

export interface Versioned<T> {
  value: T;
  revision: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The call ledger on top of the `call-ledger` bucket; every write is compare-and-set. */
export class Ledger {
  constructor(private readonly kv: KV) {}

  key(broadcastId: string, contactId: string, attempt: number): string {
    return attemptKey(broadcastId, contactId, attempt);
  }

  async get(key: string): Promise<Versioned<LedgerEntry> | undefined> {
    const entry = await this.kv.get(key);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    return { value: JSON.parse(decoder.decode(entry.value)) as LedgerEntry, revision: entry.revision };
  }

  /** Create the claim; resolves undefined when the key already exists (someone else holds it). */
  async create(key: string, value: LedgerEntry): Promise<Versioned<LedgerEntry> | undefined> {
    try {
      const revision = await this.kv.create(key, encoder.encode(JSON.stringify(value)));
      return { value, revision };
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  /** Replace at a known revision; resolves undefined when the revision moved on (conflict). */
  async replace(key: string, value: LedgerEntry, revision: number): Promise<Versioned<LedgerEntry> | undefined> {
    try {
      const next = await this.kv.update(key, encoder.encode(JSON.stringify(value)), revision);
      return { value, revision: next };
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  /**
   * Read-modify-write with retries on conflict; `change` returns undefined to leave it as it is. With
   * `known` (a version this process wrote or read), the first try skips the read.
   */
  async modify(
    key: string,
    change: (current: LedgerEntry) => LedgerEntry | undefined,
    known?: Versioned<LedgerEntry>,
  ): Promise<{ entry: LedgerEntry; changed: boolean; revision: number } | undefined> {
    for (let tries = 0; tries < 50; tries += 1) {
      const current = tries === 0 && known ? known : await this.get(key);
      if (!current) return undefined;
      const next = change(structuredClone(current.value));
      if (!next) return { entry: current.value, changed: false, revision: current.revision };
      const written = await this.replace(key, next, current.revision);
      if (written) return { entry: next, changed: true, revision: written.revision };
    }
    throw new Error(`ledger entry ${key} kept changing`);
  }
}

function isConflict(error: unknown): boolean {
  const text = String((error as { message?: string })?.message ?? error);
  return /wrong last sequence|key exists|10071|10164/i.test(text);
}
