import { join } from 'node:path';
import { BROADCAST_REQUEST, BroadcastReply } from '@clarion/contracts';
import { connectNats, createInbox, headers, type NatsConnection } from '@clarion/nats';
import { createList, postImport, sampleRss, startContacts, writeContactsCsv } from './import.js';
import type { Bench } from './types.js';

/**
 * The baseline: `n` JetStream publishes of dial-job-sized messages with at most `window` acks
 * outstanding (core publish with a reply inbox, acks on one subscription), as fast as JetStream takes them.
 */
async function barePublish(nc: NatsConnection, n: number, window = 4096): Promise<number> {
  const prefix = createInbox();
  let acked = 0;
  let sent = 0;
  let wake: (() => void) | undefined;
  const sub = nc.subscribe(`${prefix}.*`, {
    callback: () => {
      acked++;
      wake?.();
    },
  });
  const encoder = new TextEncoder();
  const run = `bare${Date.now()}`;
  const started = performance.now();
  while (sent < n) {
    while (sent - acked >= window) await new Promise<void>((resolve) => (wake = resolve));
    const h = headers();
    h.set('Nats-Msg-Id', `${run}.c${sent}.1`);
    const job = { broadcastId: run, contactId: `c${String(sent).padStart(16, '0')}`, number: '+12125550100', attempt: 1, name: `Person ${sent}`, vars: { Site: `Site ${sent % 50}` } };
    nc.publish(`dial.job.${run}`, encoder.encode(JSON.stringify(job)), { reply: `${prefix}.${sent}`, headers: h });
    sent++;
  }
  while (acked < n) await new Promise<void>((resolve) => (wake = resolve));
  const ms = performance.now() - started;
  sub.unsubscribe();
  return ms;
}

/**
 * Enqueueing a broadcast of N list contacts (DESIGN.md §8: ≤ 1.25 × a bare JetStream publish of N
 * messages in the same run; first dialable job ≤ 250 ms). `npm run bench -- enqueue [contacts]`.
 * The contacts process runs alone (no dialer), its list imported from a generated CSV first.
 */
export const run: Bench = async (args) => {
  const n = Number(args[0] ?? 1_000_000);
  const service = await startContacts('clarion-bench-enqueue-');
  const nc = await connectNats({ servers: service.nats.url, name: 'bench-enqueue' });
  try {
    const file = join(service.dir, 'contacts.csv');
    await writeContactsCsv(file, n);
    const listId = await createList(service, 'bench enqueue');
    const imported = await postImport(service, listId, file);

    // The first dial job on the wire: JetStream-published messages are seen by core subscribers too.
    let firstJobAt: number | undefined;
    const firstJob = nc.subscribe('dial.job.>', { max: 1, callback: () => {
        firstJobAt ??= performance.now();
      },
    });
    const rss = sampleRss(service.contacts.pid());
    const started = performance.now();
    const response = await nc.request(
      BROADCAST_REQUEST,
      JSON.stringify({ name: 'bench enqueue', message: { text: 'Bench.' }, audience: { listIds: [listId] }, retry: { maxAttempts: 1 } }),
      { timeout: 600_000 },
    );
    const enqueueMs = performance.now() - started;
    const memory = rss.stop();
    firstJob.unsubscribe();
    const reply = BroadcastReply.parse(response.json());
    if (!reply.ok) throw new Error(reply.error.message);

    const bareMs = await barePublish(nc, n);
    return {
      contacts: n,
      imported: imported.imported,
      counts: reply.counts,
      enqueueSeconds: Number((enqueueMs / 1000).toFixed(2)),
      rowsPerSecond: Math.round(n / (enqueueMs / 1000)),
      firstJobMs: firstJobAt === undefined ? null : Math.round(firstJobAt - started),
      bareSeconds: Number((bareMs / 1000).toFixed(2)),
      ratioToBare: Number((enqueueMs / bareMs).toFixed(2)),
      ...memory,
      store: 'embedded (journaled)',
    };
  } finally {
    await nc.close();
    await service.stop();
  }
};
