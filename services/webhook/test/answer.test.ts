import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, waitFor, type NatsServerHandle } from '@clarion/testkit';
import { PUBLIC_URL, b64, request, startHarness, type Harness } from './harness.js';
import { validateNcco } from './ncco-rules.js';
import { answerNcco } from '../src/ncco.js';

let nats: NatsServerHandle;
let h: Harness;

beforeAll(async () => {
  nats = await startNatsServer();
  h = await startHarness(nats.url);
  await h.putSpec('text', request({ message: { text: 'Hello {{name}}, water is off in {{ area }} until {{until}}. {{nope}}Bye.', language: 'en-GB', style: 3, repeat: 2 } }));
  await h.putSpec('audio', request({ message: { audioUrl: 'https://audio.example.test/flood.mp3', repeat: 3 } }));
  await h.putSpec('ack', request({ acknowledgement: { prompt: 'Press 1 to confirm.', key: '1', timeoutSeconds: 7 } }));
});
afterAll(async () => {
  await h?.close();
  await nats?.dispose();
});

async function answer(query: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${h.base}/webhooks/answer?${query}`, init);
  return { status: res.status, body: await res.json() };
}

describe('answer webhook', () => {
  it('speaks the text with per-contact variables, language, style and repeat', async () => {
    const v = b64({ name: 'Ada', vars: { area: 'Riverside', until: '18:00' } });
    const { status, body } = await answer(`b=text&c=c1&a=1&v=${v}&uuid=u1&to=14155550100`);
    expect(status).toBe(200);
    expect(validateNcco(body)).toEqual([]);
    expect(body).toEqual([
      { action: 'talk', text: 'Hello Ada, water is off in Riverside until 18:00. Bye.', language: 'en-GB', style: 3, loop: 2 },
    ]);
  });

  it("uses the contact's language when it has one and fills missing variables with nothing", async () => {
    const { body } = await answer(`b=text&c=c2&a=1&v=${b64({ language: 'fr-FR' })}`);
    expect(body).toEqual([{ action: 'talk', text: 'Hello , water is off in  until . Bye.', language: 'fr-FR', style: 3, loop: 2 }]);
  });

  it('ignores an undecodable v and still speaks the message', async () => {
    const { status, body } = await answer('b=text&c=c3&a=1&v=%%%not-base64');
    expect(status).toBe(200);
    expect(validateNcco(body)).toEqual([]);
    expect((body as { text: string }[])[0]?.text).toBe('Hello , water is off in  until . Bye.');
  });

  it('streams audio instead of text', async () => {
    const { body } = await answer('b=audio&c=c1&a=1');
    expect(validateNcco(body)).toEqual([]);
    expect(body).toEqual([{ action: 'stream', streamUrl: ['https://audio.example.test/flood.mp3'], loop: 3 }]);
  });

  it('asks for acknowledgement with a prompt and a DTMF input posting to /webhooks/input', async () => {
    const v = b64({ name: 'Bo' });
    const { body } = await answer(`b=ack&c=c9&a=2&v=${v}`);
    expect(validateNcco(body)).toEqual([]);
    const ncco = body as Record<string, unknown>[];
    expect(ncco).toHaveLength(3);
    expect(ncco[0]).toMatchObject({ action: 'talk', text: 'Hello Bo, water is off in  until .', language: 'en-US', loop: 1 });
    expect(ncco[1]).toEqual({ action: 'talk', text: 'Press 1 to confirm.', language: 'en-US', style: 0, bargeIn: true });
    expect(ncco[2]).toMatchObject({ action: 'input', type: ['dtmf'], dtmf: { maxDigits: 1, timeOut: 7 }, eventMethod: 'POST' });
    const url = new URL((ncco[2] as { eventUrl: string[] }).eventUrl[0] ?? '');
    expect(`${url.origin}${url.pathname}`).toBe(`${PUBLIC_URL}/webhooks/input`);
    expect(Object.fromEntries(url.searchParams)).toEqual({ b: 'ack', c: 'c9', a: '2', v });
  });

  it('answers POST (answer_method POST) the same way', async () => {
    const { status, body } = await answer('b=audio&c=c1&a=1', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ uuid: 'u', to: '14155550100', from: '14155550199' }),
    });
    expect(status).toBe(200);
    expect(validateNcco(body)).toEqual([]);
  });

  it('serves a spec written after start (the watch keeps the cache fresh)', async () => {
    await h.putSpec('late', request({ message: { text: 'Late news.' } }));
    const { body } = await answer('b=late&c=c1&a=1');
    expect(body).toEqual([{ action: 'talk', text: 'Late news.', language: 'en-US', style: 0, loop: 1 }]);
  });

  it('follows updates and deletions of a cached spec through the KV watch', async () => {
    await h.putSpec('changing', request({ message: { text: 'First version.' } }));
    await waitFor(async () => JSON.stringify((await answer('b=changing&c=c1&a=1')).body).includes('First version.'));
    await h.putSpec('changing', request({ message: { text: 'Second version.' } }));
    await waitFor(() => h.webhook.specs.peek('changing')?.request.message.text === 'Second version.', { message: 'watch saw the update' });
    expect(JSON.stringify((await answer('b=changing&c=c1&a=1')).body)).toContain('Second version.');
    await h.buckets.broadcasts.delete('changing');
    await waitFor(() => h.webhook.specs.peek('changing') === undefined, { message: 'watch saw the delete' });
  });

  it('serves the NCCO of the current spec, byte for byte, after the spec changes through the KV watch', async () => {
    // Variables whose characters JSON or SSML must escape, and Vonage's own query parameters.
    const contact = { name: 'Zoë "Z" \\ O\'Neil <&>', language: 'cy-GB', vars: { area: 'Mill\tRoad\n🌊', until: '\u0007 18:00' } };
    const v = b64(contact);
    const vonage = 'to=14155550100&from=14155550199&uuid=u-1&region_url=https%3A%2F%2Fapi-us-3.vonage.com';
    const query = `b=edits&c=c1&a=2&v=${v}&${vonage}`;
    const expectBody = async (spec: Parameters<typeof answerNcco>[0]) => {
      const res = await fetch(`${h.base}/webhooks/answer?${query}`);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const body = await res.text();
      expect(body).toBe(JSON.stringify(answerNcco(spec, contact, { b: 'edits', c: 'c1', a: 2 }, PUBLIC_URL, v)));
      // Bytes, not characters: the text has non-ASCII letters and an emoji.
      expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(body)));
      expect(validateNcco(JSON.parse(body))).toEqual([]);
      return body;
    };
    const first = await h.putSpec(
      'edits',
      request({ message: { text: 'Hello {{name}}, {{area}} until {{until}}.' }, acknowledgement: { prompt: 'Press 1.' } }),
    );
    await waitFor(() => h.webhook.specs.peek('edits')?.createdAt === first.createdAt, { message: 'watch saw the first version' });
    const before = await expectBody(first);
    expect(before).toContain('Zoë \\"Z\\" \\\\ O\'Neil <&>');
    // Same id, new text, language, SSML and prompt: a new spec object, so new cached fragments.
    const second = await h.putSpec(
      'edits',
      request({
        message: { text: '<speak>Dear {{name}}: {{area}}.</speak>', language: 'en-GB', style: 2, repeat: 3 },
        acknowledgement: { prompt: 'Press 5 now.', key: '5', timeoutSeconds: 9 },
      }),
    );
    const current = () => h.webhook.specs.peek('edits')?.request.message.text ?? '';
    await waitFor(() => current().startsWith('<speak>'), { message: 'watch saw the second version' });
    const after = await expectBody(second);
    expect(after).toContain('Dear Zoë &quot;Z&quot; \\\\ O&apos;Neil &lt;&amp;&gt;: Mill\\tRoad\\n🌊.');
    expect(after).toContain('Press 5 now.');
    expect(after).not.toBe(before);
  });

  it('apologises for an unknown broadcast instead of failing', async () => {
    const { status, body } = await answer('b=gone&c=c1&a=1');
    expect(status).toBe(200);
    expect(validateNcco(body)).toEqual([]);
    expect(body).toEqual([{ action: 'talk', text: 'Sorry, this message is no longer available.', language: 'en-US', style: 0 }]);
  });

  it('refuses a URL without a valid broadcast, contact or attempt with 400', async () => {
    for (const query of ['c=c1&a=1', 'b=text&a=1', 'b=text&c=c1', 'b=te.xt&c=c1&a=1', 'b=text&c=c1&a=zero']) {
      const { status, body } = await answer(query);
      expect(status, query).toBe(400);
      expect((body as { error: { code: string } }).error.code).toBe('invalid_request');
    }
  });
});

describe('ops endpoints', () => {
  it('serves /healthz, /readyz and /metrics', async () => {
    expect((await fetch(`${h.base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { nats: true, broadcasts: true } });
    const metrics = await (await fetch(`${h.base}/metrics`)).text();
    expect(metrics).toContain('http_request_duration_seconds_bucket');
    expect(metrics).toMatch(/webhook_answers_total\{result="message",service="webhook"\} \d+/);
    expect(metrics).toContain('webhook_answers_total{result="apology"');
  });

  it('counts every answer in the request, answer and duration series, fast path or not', async () => {
    const read = async () => {
      const text = await (await fetch(`${h.base}/metrics`)).text();
      // The value of the series `name` that has all of `labels` (in whatever order prom-client writes them).
      const value = (name: string, ...labels: string[]) => {
        const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)));
        return Number(line?.split(' ').pop() ?? 0);
      };
      const answerRoute = 'route="/webhooks/answer"';
      return {
        ok: value('webhook_requests_total', answerRoute, 'status="200"'),
        bad: value('webhook_requests_total', answerRoute, 'status="400"'),
        message: value('webhook_answers_total', 'result="message"'),
        apology: value('webhook_answers_total', 'result="apology"'),
        timed: value('http_request_duration_seconds_count', 'method="GET"', answerRoute, 'status="200"'),
      };
    };
    const before = await read();
    for (let i = 0; i < 5; i++) expect((await answer(`b=text&c=m${i}&a=1&v=${b64({ name: 'Ada' })}`)).status).toBe(200);
    expect((await answer('b=gone-too&c=c1&a=1')).status).toBe(200);
    expect((await answer('b=text&c=c1&a=0')).status).toBe(400);
    const after = await read();
    expect({
      ok: after.ok - before.ok,
      bad: after.bad - before.bad,
      message: after.message - before.message,
      apology: after.apology - before.apology,
      timed: after.timed - before.timed,
    }).toEqual({ ok: 6, bad: 1, message: 5, apology: 1, timed: 6 });
  });
});
