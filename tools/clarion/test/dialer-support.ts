import { waitFor } from '@clarion/testkit';
import { attemptOf } from '../src/demo.js';
import { restClient } from '../src/client.js';
import type { Stack } from '../src/stack.js';

/** One call in voice-sim's ground truth (the fields these tests read). */
export interface SimCall {
  uuid: string;
  to: string;
  created_at: string;
  event_url: string;
}

export interface Summary {
  status: string;
  audience: number;
  pending: number;
  counts: Record<string, number>;
  reason?: string;
}

/** voice-sim's ground truth, optionally only the calls of one broadcast (from the event URL's `b`). */
export async function simCalls(stack: Stack, broadcastId?: string): Promise<SimCall[]> {
  const { calls } = (await (await fetch(`${stack.url('voice-sim')}/_sim/calls`)).json()) as { calls: SimCall[] };
  if (broadcastId === undefined) return calls;
  return calls.filter((c) => new URL(c.event_url).searchParams.get('b') === broadcastId);
}

export async function simStats(stack: Stack): Promise<{ calls_placed: number; rejected_429: number; max_calls_in_rolling_second: number; timeouts_after_place: number }> {
  return (await (await fetch(`${stack.url('voice-sim')}/_sim/stats`)).json()) as never;
}

/** Deep-merge settings into voice-sim's runtime config. */
export async function simConfig(stack: Stack, patch: unknown): Promise<void> {
  const response = await fetch(`${stack.url('voice-sim')}/_sim/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(patch),
  });
  if (!response.ok) throw new Error(`PUT /_sim/config: HTTP ${response.status} ${await response.text()}`);
}

/** The most calls created within any window shorter than one second. */
export function maxInRollingSecond(calls: SimCall[]): number {
  const times = calls.map((c) => Date.parse(c.created_at)).sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; j < times.length; j += 1) {
    while (times[j]! - times[i]! >= 1000) i += 1;
    max = Math.max(max, j - i + 1);
  }
  return max;
}

/** `<contactId>#<attempt>` of each call placed more than once for the same attempt. */
export function doubledAttempts(calls: SimCall[]): string[] {
  const seen = new Map<string, number>();
  for (const call of calls) {
    const identity = attemptOf(call.event_url);
    if (!identity) continue;
    const key = `${identity.contactId}#${identity.attempt}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([key]) => key);
}

/** The contacts voice-sim saw a first attempt for. */
export function firstAttemptContacts(calls: SimCall[]): Set<string> {
  return new Set(calls.flatMap((c) => (attemptOf(c.event_url)?.attempt === 1 ? [attemptOf(c.event_url)!.contactId] : [])));
}

/** Poll the reporter until the broadcast's summary satisfies `done`. */
export async function waitForSummary(stack: Stack, broadcastId: string, done: (s: Summary) => boolean, timeoutMs = 120_000, message = 'broadcast summary'): Promise<Summary> {
  const reporter = restClient(stack.url('reporter'), stack.secrets.apiToken);
  return waitFor(
    async () => {
      const summary = await reporter.get<Summary>(`/v1/broadcasts/${broadcastId}`);
      return done(summary) ? summary : undefined;
    },
    { timeoutMs, intervalMs: 250, message: `${message} (${broadcastId})` },
  );
}

/** Sum of the final-state counts (everything but queued / in progress). */
export function finalTotal(summary: Summary, finalStates: readonly string[]): number {
  return finalStates.reduce((sum, state) => sum + (summary.counts[state] ?? 0), 0);
}
