import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BroadcastRequestInput } from '@clarion/contracts';
import { encodeContactVars } from '@clarion/contracts';
import { nccoProblems } from '@clarion/voice-sim';
import { startNatsServer, type NatsServerHandle } from '@clarion/testkit';
import { request, startHarness, type Harness } from './harness.js';
import { validateNcco } from './ncco-rules.js';

// Every broadcast option that shapes the NCCO, each checked by voice-sim's NCCO validation (the
// check that decides whether voice-sim plays the call) and by the stricter local rules.
const LONG = 'x'.repeat(1490);
const OPTIONS: Record<string, Partial<BroadcastRequestInput>> = {
  plain: { message: { text: 'The water is off.' } },
  vars: { message: { text: 'Hello {{name}}, {{area}} until {{until}}. {{missing}}', language: 'en-GB', style: 20, repeat: 10 } },
  ssml: { message: { text: '<speak>Hello {{name}}, <break time="1s"/> leave {{area}} now.</speak>' } },
  overlong: { message: { text: `${LONG} {{area}}` } },
  audio: { message: { audioUrl: 'https://audio.example.test/flood.mp3', repeat: 2 } },
  ack: { acknowledgement: {} },
  ackAllKeys: { acknowledgement: { prompt: 'Press 1 to confirm, 2 to repeat, 9 to stop.', key: '1', repeatKey: '2', optOutKey: '9', timeoutSeconds: 10 } },
  ackShortTimeout: { acknowledgement: { prompt: 'Press star.', key: '*', timeoutSeconds: 1 } },
  audioAck: { message: { audioUrl: 'https://audio.example.test/flood.mp3' }, acknowledgement: { prompt: 'Press 1.', timeoutSeconds: 3 } },
  machineHangup: { machine: { action: 'hangup', countAs: 'retry' }, acknowledgement: {} },
};
const CONTACTS = {
  none: undefined,
  full: encodeContactVars({ name: 'Ada <&> "Lovelace"', language: 'cy-GB', vars: { area: 'Riverside & Mill', until: '18:00' } }),
  badLanguage: encodeContactVars({ name: 'Bo', language: 'not a tag!' }),
  longVar: encodeContactVars({ vars: { area: 'y'.repeat(2000) } }),
};

let nats: NatsServerHandle;
let h: Harness;

beforeAll(async () => {
  nats = await startNatsServer();
  h = await startHarness(nats.url);
  for (const [id, overrides] of Object.entries(OPTIONS)) await h.putSpec(id, request(overrides));
});
afterAll(async () => {
  await h?.close();
  await nats?.dispose();
});

const query = (b: string, contact: string | undefined, extra = '') => `b=${b}&c=c1&a=1${contact ? `&v=${contact}` : ''}${extra}`;

describe('NCCO for every broadcast option', () => {
  it('the validators refuse what voice-sim would not play (so the checks below can fail)', () => {
    expect(nccoProblems([{ action: 'talk', text: 'Hi', bargeIn: true }])).not.toEqual([]);
    expect(nccoProblems([{ action: 'input', type: ['dtmf'], dtmf: { timeOut: 11 } }])).not.toEqual([]);
    expect(nccoProblems([{ action: 'talk', text: 'z'.repeat(1501) }])).not.toEqual([]);
    expect(validateNcco([{ action: 'stream', streamUrl: 'https://a.example.test/x.mp3' }])).not.toEqual([]);
  });

  it('answers every option and contact with an NCCO voice-sim accepts', async () => {
    let checked = 0;
    for (const b of Object.keys(OPTIONS)) {
      for (const [name, v] of Object.entries(CONTACTS)) {
        const res = await fetch(`${h.base}/webhooks/answer?${query(b, v)}`);
        expect(res.status, `${b}/${name}`).toBe(200);
        const ncco = await res.json();
        expect(validateNcco(ncco), `${b}/${name}`).toEqual([]);
        checked++;
      }
    }
    expect(checked).toBe(Object.keys(OPTIONS).length * Object.keys(CONTACTS).length);
  });

  it('keeps an overlong message within the talk limit', async () => {
    const ncco = (await (await fetch(`${h.base}/webhooks/answer?${query('overlong', CONTACTS.longVar)}`)).json()) as { text: string }[];
    expect(ncco[0]?.text.length).toBe(1500);
  });

  it('answers every key press (and silence) with an NCCO voice-sim accepts', async () => {
    const presses: [string | null, string][] = [
      ['1', ''],
      ['9', ''],
      ['2', ''],
      ['5', ''],
      ['5', '&r=1'],
      [null, ''],
      [null, '&r=1'],
      ['*', ''],
    ];
    let checked = 0;
    for (const b of ['ack', 'ackAllKeys', 'ackShortTimeout', 'audioAck', 'plain', 'unknown-broadcast']) {
      for (const [digits, extra] of presses) {
        const res = await fetch(`${h.base}/webhooks/input?${query(b, CONTACTS.full, extra)}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ uuid: `u-${b}`, conversation_uuid: 'CON-1', dtmf: { digits, timed_out: digits === null }, timestamp: '2026-03-01T10:00:00.000Z' }),
        });
        expect(res.status, `${b} ${String(digits)}${extra}`).toBe(200);
        expect(validateNcco(await res.json()), `${b} ${String(digits)}${extra}`).toEqual([]);
        checked++;
      }
    }
    expect(checked).toBe(48);
  });

  it('apologises for an unknown broadcast with an NCCO voice-sim accepts', async () => {
    const res = await fetch(`${h.base}/webhooks/answer?${query('unknown-broadcast', undefined)}`);
    expect(validateNcco(await res.json())).toEqual([]);
  });
});
