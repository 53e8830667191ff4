import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../src/stack.js';

const PACKAGE = join(REPO_ROOT, 'tools', 'clarion');

describe('the clarion command', () => {
  it('is a committed file, so `npm ci` links `npx clarion` before anything is built', () => {
    const { bin } = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const target = bin.clarion;
    expect(target).toBeDefined();
    // dist/ is git-ignored: a bin pointing there does not exist at install time on a fresh clone.
    expect(target).not.toMatch(/(^|\/)dist\//);
    const tracked = execFileSync('git', ['ls-files', '--error-unmatch', target!], { cwd: PACKAGE, encoding: 'utf8' });
    expect(tracked.trim()).toBe(target!.replace(/^\.\//, ''));
  });

  it('runs the built CLI through the shim', () => {
    const shim = join(PACKAGE, 'bin', 'clarion.js');
    expect(existsSync(shim)).toBe(true);
    const help = execFileSync(process.execPath, [shim, 'help'], { encoding: 'utf8' });
    expect(help).toMatch(/^Usage: clarion <command>/);
  });
});
