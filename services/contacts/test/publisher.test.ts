import { connectNats, DiscardPolicy, jetstreamManager, type NatsConnection } from '@clarion/nats';
import { startNatsServer, type NatsServerHandle } from '@clarion/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublishError, WindowedPublisher } from '../src/publisher.js';

let nats: NatsServerHandle;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'publisher-test' });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'PUBOK', subjects: ['pub.ok.>'] });
  // Room for three messages, then JetStream refuses new ones.
  await jsm.streams.add({ name: 'PUBFULL', subjects: ['pub.full.>'], max_msgs: 3, discard: DiscardPolicy.New });
});
afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

describe('WindowedPublisher', () => {
  it('stores every message once, duplicates by message id included, with a small window', async () => {
    const publisher = new WindowedPublisher(nc, 8);
    for (let i = 0; i < 200; i++) {
      const wait = publisher.publish(`pub.ok.${i % 3}`, { i }, `ok-${i % 150}`);
      if (wait) await wait;
    }
    await publisher.flush();
    publisher.close();
    const info = await (await jetstreamManager(nc)).streams.info('PUBOK');
    expect(info.state.messages).toBe(150);
  });

  it('reports a message JetStream refuses instead of losing it', async () => {
    const publisher = new WindowedPublisher(nc, 16);
    for (let i = 0; i < 5; i++) publisher.publish('pub.full.x', { i }, `full-${i}`);
    await expect(publisher.flush()).rejects.toThrow(PublishError);
    await expect(publisher.flush()).rejects.toThrow(/JetStream refused a message/);
    publisher.close();
  });
});
