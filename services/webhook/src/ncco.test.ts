import { describe, expect, it } from 'vitest';
import { BroadcastRequest, type BroadcastRequestInput, type BroadcastSpec, type ContactVars } from '@clarion/contracts';
import { answerNcco, answerNccoJson, promptActions, renderText, type AttemptIds } from './ncco.js';

const spec = (id: string, overrides: Partial<BroadcastRequestInput>): BroadcastSpec => ({
  id,
  createdAt: '2026-01-01T00:00:00.000Z',
  request: BroadcastRequest.parse({ name: id, message: { text: 'Hello {{name}}.' }, audience: { numbers: ['+14155550100'] }, ...overrides }),
});

const SPECS = [
  spec('plain', { message: { text: 'The water is off.' } }),
  spec('vars', { message: { text: 'Hello {{name}}, {{ area }} until {{until}}. {{missing}}', language: 'en-GB', style: 20, repeat: 10 } }),
  spec('ssml', { message: { text: '<speak>Hello {{name}}, <break time="1s"/> leave {{area}} now.</speak>' } }),
  spec('overlong', { message: { text: `${'x'.repeat(1490)} {{area}}` } }),
  spec('audio', { message: { audioUrl: 'https://audio.example.test/flood.mp3', repeat: 2 } }),
  spec('ack', { acknowledgement: {} }),
  spec('ackPlain', { message: { text: 'No variables "here".', language: 'fr-FR' }, acknowledgement: { prompt: 'Appuyez sur 1.', key: '1', timeoutSeconds: 9 } }),
  spec('audioAck', { message: { audioUrl: 'https://audio.example.test/flood.mp3' }, acknowledgement: { prompt: 'Press 1.', timeoutSeconds: 3 } }),
  // Text that JSON escapes around the variables, inherited property names as variables, and
  // surrogates at the edges of the parts (a pair split by a placeholder that may be empty).
  spec('escapes', { message: { text: 'Say "{{name}}"\\ \t{{area}}\u0007 {{constructor}}{{toString}}{{__proto__}}.' }, acknowledgement: {} }),
  spec('surrogates', { message: { text: 'Flood \ud83c{{wave}}\udf0a and \ud800 alone {{name}}.' } }),
  spec('ssmlAck', { message: { text: '<speak>Dear {{name}}, "{{area}}"</speak>', language: 'de-DE' }, acknowledgement: { prompt: 'Drücken Sie "1".' } }),
  spec('overlongAck', { message: { text: `${'x'.repeat(1480)} {{area}} {{name}}` }, acknowledgement: {} }),
];

const CONTACTS: ContactVars[] = [
  {},
  { name: 'Ada <&> "Lovelace"', language: 'cy-GB', vars: { area: 'Riverside & Mill', until: '18:00' } },
  { name: 'Bo', language: 'not a tag!' },
  { language: 'en-GB' },
  { name: 'Zoë \u2028 \\ \u0007', vars: { area: 'y'.repeat(2000) } },
  { name: 'Ana "quoted" \\ back\nslash', vars: { area: 'tab\there', wave: '🌊' } },
  { name: '🌊 pair', vars: { area: 'lone \ud83c', wave: '\udf0a' } },
  { name: 'Eve', vars: { constructor: 'own', toString: 'own too', area: '<&>' } },
  { vars: { name: 'from vars', area: 'é ü ß 中文' } },
];

const IDS: AttemptIds[] = [
  { b: 'b-1', c: 'c_2', a: 1 },
  { b: 'B', c: 'x'.repeat(64), a: 100 },
  { b: 'b 1', c: 'c&d=é', a: 3 },
];

const VS = [undefined, '', 'eyJuYW1lIjoiQWRhIn0', 'eyJuYW1lIjoiQWRhIn0=', 'a+b/c%2F', 'a"b\\c'];

describe('answerNccoJson', () => {
  it('is JSON.stringify(answerNcco(...)) byte for byte, for every option, contact, id, v and public URL', () => {
    let checked = 0;
    // Twice: the second round is served from the per-spec fragments built in the first. Public URLs
    // alternate, one with characters JSON escapes, so a fragment built for one is never used for another.
    const publicUrls = ['https://hooks.example.test', 'http://127.0.0.1:8083/base "q" \\ \u2028'];
    for (let round = 0; round < 2; round++) {
      for (const s of SPECS) {
        for (const contact of CONTACTS) {
          for (const ids of IDS) {
            for (const v of VS) {
              for (const publicUrl of publicUrls) {
                const expected = JSON.stringify(answerNcco(s, contact, ids, publicUrl, v));
                expect(answerNccoJson(s, contact, ids, publicUrl, v), `${s.id} ${JSON.stringify({ contact, ids, v, publicUrl })}`).toBe(expected);
                checked++;
              }
            }
          }
        }
      }
    }
    expect(checked).toBe(2 * SPECS.length * CONTACTS.length * IDS.length * VS.length * publicUrls.length);
  });

  it('builds fresh fragments for a changed spec (a new object from the KV watch)', () => {
    const ids = { b: 'b1', c: 'c1', a: 1 };
    const contact = { name: 'Ada', vars: { area: 'Riverside' } };
    const first = spec('changing', { message: { text: 'First {{name}}.' }, acknowledgement: { prompt: 'Press 1.' } });
    const second = spec('changing', { message: { text: 'Second {{area}}.', language: 'en-GB' }, acknowledgement: { prompt: 'Press 2.', key: '2' } });
    const url = 'https://hooks.example.test';
    expect(JSON.parse(answerNccoJson(first, contact, ids, url, undefined))[0].text).toBe('First Ada.');
    expect(answerNccoJson(second, contact, ids, url, undefined)).toBe(JSON.stringify(answerNcco(second, contact, ids, url, undefined)));
    expect(JSON.parse(answerNccoJson(second, contact, ids, url, undefined))[1].text).toBe('Press 2.');
  });
});

describe('renderText', () => {
  it('fills an inherited property name ({{constructor}}, {{toString}}) with nothing unless the contact has it', () => {
    const s = SPECS.find((x) => x.id === 'escapes')!;
    expect(renderText(s, { name: 'Bo', vars: { area: 'A' } })).toBe('Say "Bo"\\ \tA\u0007 .');
    expect(renderText(s, { vars: { constructor: 'C', toString: 'T', area: '' } })).toBe('Say ""\\ \t\u0007 CT.');
  });
});

describe('input eventUrl', () => {
  it('is the URLSearchParams encoding of b, c, a, v and r, plain or not', () => {
    const s = SPECS.find((x) => x.id === 'ack')!;
    for (const ids of IDS) {
      for (const v of VS) {
        for (const round of [0, 1, 0.5, 1e21, -1]) {
          const input = promptActions(s, {}, ids, 'https://hooks.example.test', v, round)[1];
          const query = new URLSearchParams({ b: ids.b, c: ids.c, a: String(ids.a) });
          if (v) query.set('v', v);
          if (round > 0) query.set('r', String(round));
          expect(input && 'eventUrl' in input ? input.eventUrl[0] : undefined, JSON.stringify({ ids, v, round })).toBe(
            `https://hooks.example.test/webhooks/input?${query.toString()}`,
          );
        }
      }
    }
  });
});
