import { fileURLToPath } from 'node:url';
import { freePort, startServiceProcess, waitFor, type ServiceProcess } from '@clarion/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { privateKey, World, type SeenCall } from './harness.js';

// The concurrency caps (ACCOUNT_MAX_CONCURRENT, a broadcast's pacing.maxConcurrent) hold across
// dialer replicas. The judge is the provider's side: the fake Voice API below keeps each call in
// progress from its create until the provider ends it, and only then sends the final events.

const world = new World();
let seq = 0;
const newId = (label: string) => `${label}-${++seq}-${Date.now().toString(36)}`;

/** Calls in progress as the provider sees them, ended after `durationMs` (or by `end`). */
class Provider {
  readonly live = new Map<string, SeenCall>();
  maxLive = 0;
  readonly maxLiveOf = new Map<string, number>();
  /** How long a call lasts; undefined: until `end` is called. */
  durationMs: ((call: SeenCall) => number) | undefined;

  constructor(private readonly world: World) {
    world.api.onCreated = (call) => this.started(call);
  }

  liveOf(broadcastId: string): number {
    return [...this.live.values()].filter((c) => c.b === broadcastId).length;
  }

  private started(call: SeenCall): void {
    this.live.set(call.uuid, call);
    this.maxLive = Math.max(this.maxLive, this.live.size);
    this.maxLiveOf.set(call.b, Math.max(this.maxLiveOf.get(call.b) ?? 0, this.liveOf(call.b)));
    const duration = this.durationMs?.(call);
    if (duration !== undefined) setTimeout(() => void this.end(call), duration);
  }

  /** The person hangs up: the call stops counting, then its events go out (as the webhook would publish them). */
  async end(call: SeenCall): Promise<void> {
    if (!this.live.delete(call.uuid)) return;
    await this.world.callEvents(call, ['started', 'ringing', 'answered', 'completed']);
  }

  async endAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((call) => this.end(call)));
  }
}

let provider: Provider;
const finals = (bid: string, on = world) => on.of('contact', bid);
const calledOnce = (bid: string, count: number, on = world) => {
  const contacts = on.api.callsFor(bid).map((c) => c.c);
  expect(contacts).toHaveLength(count);
  expect(new Set(contacts).size).toBe(count);
};

beforeAll(() => world.start());
beforeEach(() => {
  provider = new Provider(world);
});
afterEach(async () => {
  provider.durationMs = () => 0;
  await provider.endAll();
  await world.stopDialers();
  await world.resetSlots();
  world.api.onCreated = undefined;
  world.api.reply = () => ({ status: 201 });
});
afterAll(() => world.stop());

describe('call slots shared by dialer replicas', () => {
  it('three replicas together never have more calls in progress than the account cap', { timeout: 90_000 }, async () => {
    const cap = 4;
    await Promise.all([0, 1, 2].map(() => world.dialer({ accountMaxConcurrent: cap })));
    provider.durationMs = (call) => 250 + (Number(call.c.slice(1)) % 4) * 100;
    const first = newId('acct-a');
    const second = newId('acct-b');
    await world.broadcast(first);
    await world.broadcast(second);
    await Promise.all([world.jobs(first, 15), world.jobs(second, 15)]);
    await waitFor(() => finals(first).length === 15 && finals(second).length === 15, { timeoutMs: 60_000, message: 'every contact final' });
    // Per replica the cap would allow three times as many: the cap is reached, never passed.
    expect(provider.maxLive).toBe(cap);
    calledOnce(first, 15);
    calledOnce(second, 15);
    expect([...finals(first), ...finals(second)].every((e) => e.state === 'answered')).toBe(true);
  });

  it('a broadcast cap holds across replicas without holding back other broadcasts', { timeout: 90_000 }, async () => {
    await Promise.all([0, 1, 2].map(() => world.dialer()));
    provider.durationMs = () => 400;
    const capped = newId('bcap');
    const free = newId('bfree');
    await world.broadcast(capped, { pacing: { maxConcurrent: 2 } });
    await world.broadcast(free);
    await world.jobs(capped, 12);
    await world.jobs(free, 12);
    await waitFor(() => finals(capped).length === 12 && finals(free).length === 12, { timeoutMs: 60_000, message: 'every contact final' });
    expect(provider.maxLiveOf.get(capped)).toBe(2);
    // The other broadcast's calls ran alongside: they did not queue behind the capped one's.
    expect(provider.maxLiveOf.get(free)).toBeGreaterThan(2);
    calledOnce(capped, 12);
    calledOnce(free, 12);
  });

  it('freed slots go to a critical broadcast ahead of a normal one, whichever replica holds its jobs', { timeout: 90_000 }, async () => {
    const cap = 2;
    await Promise.all([0, 1, 2].map(() => world.dialer({ accountMaxConcurrent: cap })));
    const normal = newId('slot-normal');
    const critical = newId('slot-critical');
    await world.broadcast(normal);
    await world.jobs(normal, 12);
    await waitFor(() => provider.live.size === cap, { message: 'account full of normal calls' });
    await world.broadcast(critical, { priority: 'critical' });
    await world.jobs(critical, 4);
    // Give every replica time to pull the critical jobs and queue them.
    await waitFor(async () => (await world.jsm.consumers.info('DIAL', `dialer-jobs-${critical}`)).num_pending === 0, { message: 'critical jobs pulled' });
    await new Promise((r) => setTimeout(r, 300));
    provider.durationMs = () => 150;
    await provider.endAll();
    await waitFor(() => world.api.callsFor(critical).length === 4, { timeoutMs: 30_000, message: 'critical calls placed' });
    const order = world.api.calls.filter((c) => c.b === normal || c.b === critical).map((c) => c.b);
    const normalBeforeLastCritical = order.slice(cap, order.lastIndexOf(critical)).filter((b) => b === normal).length;
    // Only a normal job that entered the queue at the same moment as the account filled may go first.
    expect(normalBeforeLastCritical).toBeLessThanOrEqual(1);
    await waitFor(() => finals(normal).length === 12 && finals(critical).length === 4, { timeoutMs: 60_000, message: 'every contact final' });
    expect(provider.maxLive).toBeLessThanOrEqual(cap);
  });

  it('a slot whose final event never comes is released after the slot timeout', async () => {
    await world.dialer({ accountMaxConcurrent: 2, callSlotTimeoutMs: 2000 });
    const bid = newId('slot-timeout');
    await world.broadcast(bid);
    await world.jobs(bid, 3);
    const [a, b] = await waitFor(() => (world.api.callsFor(bid).length >= 2 ? world.api.callsFor(bid) : undefined), { message: 'two calls' });
    const third = await waitFor(() => world.api.callsFor(bid)[2], { timeoutMs: 10_000, message: 'third call after the timeout' });
    expect(third.at - Math.min(a!.at, b!.at)).toBeGreaterThanOrEqual(1500);
    calledOnce(bid, 3);
  });

  it('the slot timeout counts from the grant, not from when a job started waiting', async () => {
    await world.dialer({ accountMaxConcurrent: 1, callSlotTimeoutMs: 3000 });
    const normal = newId('grant-normal');
    const critical = newId('grant-critical');
    await world.broadcast(normal);
    await world.broadcast(critical, { priority: 'critical' });
    await world.jobs(normal, 1);
    const first = await waitFor(() => world.api.callsFor(normal)[0], { message: 'first call' });
    // A critical job queues behind it, a normal one waits for room; no call ever ends.
    await world.jobs(critical, 1);
    await world.jobs(normal, 1, {}, 1);
    const queued = await waitFor(() => world.api.callsFor(critical)[0], { timeoutMs: 15_000, message: 'critical call after the first slot timed out' });
    const last = await waitFor(() => world.api.callsFor(normal)[1], { timeoutMs: 15_000, message: 'normal call after the second slot timed out' });
    expect(queued.at - first.at).toBeGreaterThanOrEqual(2500);
    // The critical job waited about 3 s for its slot; the slot still lasted the whole timeout.
    expect(last.at - queued.at).toBeGreaterThanOrEqual(2500);
  });

  it('jobs that stop waiting (pause) give their place in the queue back', async () => {
    await Promise.all([0, 1].map(() => world.dialer({ accountMaxConcurrent: 1 })));
    const normal = newId('give-normal');
    const critical = newId('give-critical');
    await world.broadcast(normal);
    await world.jobs(normal, 2);
    const first = await waitFor(() => world.api.callsFor(normal)[0], { message: 'first call' });
    // Critical jobs queue ahead of the second normal one, then their broadcast is paused.
    await world.broadcast(critical, { priority: 'critical' });
    await world.jobs(critical, 2);
    await waitFor(async () => (await world.jsm.consumers.info('DIAL', `dialer-jobs-${critical}`)).num_pending === 0, { message: 'critical jobs pulled' });
    await new Promise((r) => setTimeout(r, 300));
    await world.setControl(critical, 'paused');
    await new Promise((r) => setTimeout(r, 300));
    await provider.end(first);
    // With the paused jobs' keys still queued the account would stay full until they timed out (60 s).
    await waitFor(() => world.api.callsFor(normal)[1], { timeoutMs: 15_000, message: 'second normal call' });
    expect(world.api.callsFor(critical)).toHaveLength(0);
  });
});

describe('a dialer replica killed while it holds call slots', () => {
  // Its own NATS: a fresh replica would also dial what earlier tests left queued.
  const crash = new World();
  let victim: ServiceProcess | undefined;
  let calls: Provider;
  beforeAll(() => crash.start());
  afterAll(async () => {
    if (victim?.running()) await victim.kill('SIGKILL');
    await crash.stop();
  });

  it('its calls free their slots through the final events the others process, and the broadcast completes', { timeout: 120_000 }, async () => {
    const cap = 3;
    calls = new Provider(crash);
    const bid = newId('kill');
    await crash.broadcast(bid);
    await crash.jobs(bid, 12);
    // A real process, so SIGKILL leaves its keys and unacked jobs as a crash would (dist/main.js: turbo builds before testing).
    victim = await startServiceProcess({
      name: 'dialer-victim',
      script: fileURLToPath(new URL('../dist/main.js', import.meta.url)),
      port: await freePort(),
      env: {
        NATS_URL: crash.nats.url,
        VOICE_API_URL: crash.api.url,
        VONAGE_APPLICATION_ID: 'app-test',
        VONAGE_PRIVATE_KEY: privateKey,
        WEBHOOK_PUBLIC_URL: 'http://127.0.0.1:9/hooks',
        ACCOUNT_CPS: '50',
        ACCOUNT_MAX_CONCURRENT: String(cap),
        ACK_WAIT_MS: '2000',
        OUTCOME_SETTLE_MS: '200',
        LOG_LEVEL: 'warn',
      },
    });
    await waitFor(() => calls.live.size === cap, { timeoutMs: 20_000, message: 'victim holds every slot' });
    // The others see the victim's slots: nothing more is placed while its calls last.
    // (Every replica sets the dial consumers' ack wait: the victim's unacked jobs come back after 2 s.)
    await Promise.all([0, 1].map(() => crash.dialer({ accountMaxConcurrent: cap, ackWaitMs: 2000 })));
    await new Promise((r) => setTimeout(r, 1000));
    expect(crash.api.callsFor(bid)).toHaveLength(cap);

    await victim.kill('SIGKILL');
    calls.durationMs = () => 200;
    await calls.endAll();
    await waitFor(() => finals(bid, crash).length === 12, { timeoutMs: 60_000, message: 'every contact final' });
    expect(calls.maxLive).toBe(cap);
    calledOnce(bid, 12, crash);
    expect(finals(bid, crash).every((e) => e.state === 'answered')).toBe(true);
  });
});
