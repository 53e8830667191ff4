import { describe, expect, it } from 'vitest';
import { checkTalkText } from './message-check.js';

describe('checkTalkText', () => {
  it('accepts plain text, well-formed variables and valid SSML', () => {
    expect(checkTalkText('Hello {{name}}, report to {{ site.name }} & wait.', 'p')).toEqual([]);
    expect(checkTalkText('<speak>Hello <break time="1s"/> Fish &amp; chips <prosody rate="slow">now</prosody></speak>', 'p')).toEqual([]);
  });

  it('names the problem: broken placeholders, bad variable names, unescaped & and unbalanced tags', () => {
    expect(checkTalkText('Hi {{name', 'p')).toEqual([{ path: 'p', message: 'has "{{" without a matching "}}"' }]);
    expect(checkTalkText('Hi name}}', 'p')).toEqual([{ path: 'p', message: 'has "}}" without a matching "{{"' }]);
    expect(checkTalkText('Hi {{first name}}', 'p')[0]?.message).toContain('must be a name');
    expect(checkTalkText('<speak>A & B</speak>', 'p')[0]?.message).toBe('SSML: "&" at character 10 must be written &amp;');
    expect(checkTalkText('<speak>a < b</speak>', 'p')[0]?.message).toContain('malformed tag');
    expect(checkTalkText('<speak><p>x</speak>', 'p')[0]?.message).toBe('SSML: closing </speak> does not match an open tag');
    expect(checkTalkText('<speak>x', 'p')[0]?.message).toBe('SSML: <speak> not closed');
  });
});
