import type { IncomingMessage, ServerResponse } from 'node:http';
import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { AttemptQuery, answerQuerystring, plainAnswerQuery } from './answer-query.js';

/** What the full path reads: Koa's query object (URLSearchParams, repeated keys as arrays), then the schema. */
function fullPath(querystring: string) {
  const params = new URLSearchParams(querystring);
  const query: Record<string, string | string[]> = {};
  for (const key of params.keys()) {
    const values = params.getAll(key);
    query[key] = values.length <= 1 ? (values[0] ?? '') : values;
  }
  const ids = AttemptQuery.safeParse({ b: query.b, c: query.c, a: query.a });
  return { ids, v: typeof query.v === 'string' ? query.v : undefined };
}

const V = 'eyJuYW1lIjoiQWRhIn0';
const VONAGE = 'to=14155550100&from=14155550199&uuid=63f61863-4a51-4f6b-86e1-46edebcf9356&conversation_uuid=CON-f972836a&region_url=https%3A%2F%2Fapi-us-3.vonage.com';

const ACCEPTED = [
  `b=b-1&c=c_2&a=1&v=${V}`,
  `b=b1&c=c1&a=100`,
  `a=7&c=C&b=B&v=`,
  `b=b1&c=c1&a=2&v=${V}&${VONAGE}`,
  `${VONAGE}&b=b1&c=c1&a=99&v=${V}`,
  `b=b1&&c=c1&a=3&v`,
  `b=${'x'.repeat(64)}&c=c1&a=1`,
  `b=b1&c=c1&a=1&r=2&vv=3&bb=%62`,
];

const REFUSED = [
  '',
  'b=b1&c=c1',
  'b=b1&a=1',
  'c=c1&a=1',
  'b=b1&c=c1&a=0',
  'b=b1&c=c1&a=101',
  'b=b1&c=c1&a=01',
  'b=b1&c=c1&a=1.0',
  'b=b1&c=c1&a=+1',
  'b=b1&c=c1&a= 1',
  'b=b1&c=c1&a=1e1',
  'b=b1&c=c1&a=0x10',
  'b=b1&c=c1&a=zero',
  'b=te.xt&c=c1&a=1',
  'b=&c=c1&a=1',
  'b&c=c1&a=1',
  `b=${'x'.repeat(65)}&c=c1&a=1`,
  'b=b%31&c=c1&a=1',
  '%62=b1&c=c1&a=1',
  'b=b1&c=c1&a=1&b=b2',
  'b=b1&c=c1&a=1&a=2',
  `b=b1&c=c1&a=1&v=${V}&v=${V}`,
  'b=b1&c=c1&a=1&v=abc%3D',
  'b=b1&c=c1&a=1&v=a+b',
  'b=b1&c=c1&a=1&%76=x',
  'b=bä&c=c1&a=1',
];

describe('plainAnswerQuery', () => {
  it('reads plainly written ids and v exactly as the full path (Koa query + AttemptQuery) does', () => {
    for (const query of ACCEPTED) {
      const plain = plainAnswerQuery(query);
      expect(plain, query).toBeDefined();
      const full = fullPath(query);
      expect(full.ids.success, query).toBe(true);
      expect(plain?.ids, query).toEqual(full.ids.data);
      expect(plain?.v, query).toBe(full.v);
    }
  });

  it('leaves encoded, repeated, missing or out-of-range values to the full path', () => {
    for (const query of REFUSED) expect(plainAnswerQuery(query), query).toBeUndefined();
  });

  it('never accepts what the full path would refuse or read differently', () => {
    // Every query built from these pieces: whatever the plain reader accepts, the full path agrees with.
    const pieces = ['b=b1', 'c=c1', 'a=1', 'a=100', 'a=0', `v=${V}`, 'v=', 'b=x.y', 'c=%63', 'a=1%30', 'v=a%2Bb', 'b', '%61=1', 'to=1'];
    let accepted = 0;
    for (const x of pieces) {
      for (const y of pieces) {
        for (const z of pieces) {
          for (const w of ['', `&${pieces[5]}`, '&a=2', '&c=c2']) {
            const query = `${x}&${y}&${z}${w}`;
            const plain = plainAnswerQuery(query);
            if (!plain) continue;
            accepted++;
            const full = fullPath(query);
            expect(full.ids.success, query).toBe(true);
            expect(plain.ids, query).toEqual(full.ids.data);
            expect(plain.v, query).toBe(full.v);
          }
        }
      }
    }
    expect(accepted).toBeGreaterThan(10);
  });
});

describe('answerQuerystring', () => {
  it("returns Koa's ctx.querystring exactly when Koa's ctx.path is /webhooks/answer, or leaves the URL to Koa", () => {
    const koa = new Koa();
    const koaRead = (url: string) => {
      const ctx = koa.createContext({ url, method: 'GET', headers: {}, socket: {} } as IncomingMessage, {} as ServerResponse);
      return { path: ctx.path, querystring: ctx.querystring };
    };
    const urls = [
      `/webhooks/answer?b=b1&c=c1&a=1&v=${V}`,
      `/webhooks/answer?b=b1&c=c1&a=1&${VONAGE}`,
      '/webhooks/answer?',
      '/webhooks/answer?a=1?b=2',
      '/webhooks/answer?b=b1&c=c1&a=1&v=abc#frag',
      '/webhooks/answer?b=b1&c=c1&a=1&v=a b',
      '/webhooks/answer?b=b1&c=c1&a=1&v=a\tb',
      '/webhooks/answer?b=b1&c=c1&a=1&v=a\u00a0b',
      '/webhooks/answer?b=b1&c=c1&a=1&v=a\ufeffb',
      '/webhooks/answer?b=é&c="<>"&a=1&v={|}^`',
      '/webhooks/answer',
      '/webhooks/answer/?b=b1&c=c1&a=1',
      '/webhooks/answers?b=b1&c=c1&a=1',
      '/webhooks/Answer?b=b1&c=c1&a=1',
      '/webhooks/event?b=b1&c=c1&a=1',
      '//webhooks/answer?b=b1&c=c1&a=1',
      'http://hooks.example.test/webhooks/answer?b=b1&c=c1&a=1',
      '/webhooks/answer#?b=b1',
    ];
    let read = 0;
    for (const url of urls) {
      const querystring = answerQuerystring(url);
      if (querystring === undefined) continue;
      read++;
      expect(koaRead(url), url).toEqual({ path: '/webhooks/answer', querystring });
    }
    expect(read).toBe(5);
    expect(answerQuerystring(`/webhooks/answer?b=b1&c=c1&a=1&${VONAGE}`)).toBe(`b=b1&c=c1&a=1&${VONAGE}`);
    expect(answerQuerystring(undefined)).toBeUndefined();
  });
});
