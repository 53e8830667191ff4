/** An append-only JSON-lines journal of document writes, replayed (and compacted) on open. */

import { mkdir, open, readFile, rename } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decode, encode, mapKey } from './codec.js';
import type { Doc } from './port.js';

/** One journal line: a whole document written, a document deleted by `_id`, or an index created. */
export type JournalRecord =
  | { c: string; op: 'put'; doc: Doc }
  | { c: string; op: 'del'; id: unknown }
  | { c: string; op: 'index'; name: string; keys: Record<string, 1 | -1>; unique: boolean };

/** What a replay yields per collection: its indexes and documents in natural order. */
export interface CollectionState {
  indexes: Map<string, { keys: Record<string, 1 | -1>; unique: boolean }>;
  docs: Map<string, Doc>;
}

const FILE = 'journal.jsonl';

function stateFor(states: Map<string, CollectionState>, name: string): CollectionState {
  let state = states.get(name);
  if (!state) {
    state = { indexes: new Map(), docs: new Map() };
    states.set(name, state);
  }
  return state;
}

function isRecord(value: unknown): value is JournalRecord {
  return value !== null && typeof value === 'object' && typeof (value as { c?: unknown }).c === 'string';
}

export class Journal {
  private pending: string[] = [];
  private waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;

  private constructor(private readonly handle: FileHandle) {}

  /** Replay `dir`'s journal, rewrite it compacted, and open it for appending. */
  static async open(dir: string): Promise<{ journal: Journal; states: Map<string, CollectionState> }> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, FILE);
    const states = new Map<string, CollectionState>();
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let record: unknown;
      try {
        record = decode(line);
      } catch {
        continue; // a torn last line from a crash mid-append: the write never resolved, so drop it
      }
      if (!isRecord(record)) continue;
      const state = stateFor(states, record.c);
      if (record.op === 'put') state.docs.set(mapKey(record.doc._id), record.doc);
      else if (record.op === 'del') state.docs.delete(mapKey(record.id));
      else if (record.op === 'index') state.indexes.set(record.name, { keys: record.keys, unique: record.unique });
    }
    // Compaction: write the replayed state to a temp file, fsync, then atomically replace the journal.
    const tmpPath = `${path}.tmp`;
    const tmp = await open(tmpPath, 'w');
    try {
      const lines: string[] = [];
      for (const [c, state] of states) {
        for (const [name, index] of state.indexes) lines.push(encode({ c, op: 'index', name, keys: index.keys, unique: index.unique }));
        for (const doc of state.docs.values()) lines.push(encode({ c, op: 'put', doc }));
      }
      if (lines.length > 0) await tmp.writeFile(`${lines.join('\n')}\n`);
      await tmp.sync();
    } finally {
      await tmp.close();
    }
    await rename(tmpPath, path);
    const handle = await open(path, 'a');
    return { journal: new Journal(handle), states };
  }

  /** Append records as one batch; resolves once their bytes are written to the file. */
  append(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    // Serialise now: later writes in the same tick must not change what this call journals.
    this.pending.push(records.map((record) => `${encode(record)}\n`).join(''));
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  // Group commit: everything queued while a write is in flight goes out in the next single write.
  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const data = this.pending.join('');
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      try {
        await this.handle.appendFile(data, 'utf8');
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
    this.flushing = undefined;
  }

  /** Wait for queued writes, then close the file. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.handle.close();
  }
}
