import type { Repos, SuppressionDoc } from './repo.js';
import { isDuplicateKey } from './repo.js';

/** Add a number (E.164) to the do-not-call list; true when it was not there yet. */
export async function suppress(
  repos: Repos,
  entry: { number: string; source: SuppressionDoc['source']; reason?: string | undefined; broadcastId?: string | undefined },
  now: () => Date,
): Promise<boolean> {
  const doc: SuppressionDoc = { _id: entry.number, number: entry.number, source: entry.source, createdAt: now().toISOString() };
  if (entry.reason !== undefined) doc.reason = entry.reason;
  if (entry.broadcastId !== undefined) doc.broadcastId = entry.broadcastId;
  try {
    await repos.suppressions.insertOne(doc);
    return true;
  } catch (error) {
    if (isDuplicateKey(error)) return false;
    throw error;
  }
}
