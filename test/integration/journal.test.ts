import { rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Journal, type IngestItem } from '../../src/journal/journal.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { tempDir } from '../helpers/engine.js';

let dir: string;
let redis: EmbeddedRedis;
let r: Redis;
let journal: Journal;

beforeAll(async () => {
  dir = tempDir('journal');
  redis = await startEmbeddedRedis({ dir });
  r = new Redis(redis.url);
  journal = new Journal(r, { retentionMs: 3600_000 });
});
afterAll(async () => {
  r?.disconnect();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const item = (controlId: string): IngestItem => ({
  raw: Buffer.from(`MSH|^~\\&|A|B|C|D|20261206||ADT^A01|${controlId}|P|2.5\r`),
  summary: { channel: 'c', size: 40, controlId },
  first: { status: 'received' },
  dedup: `c:A|B|${controlId}:fingerprint`,
});

describe('the journal and the group commit’s jobs', () => {
  test('a batch of new messages: its job finds them, in order', async () => {
    await journal.ingestMany([item('J1'), item('J2')], [], 'batch-1');
    const found = await journal.begin({ batch: 'batch-1' });
    expect(found !== 'missing' && found.map((m) => m.raw.toString()).map((s) => s.split('|')[9])).toEqual(['J1', 'J2']);
  });

  test('a batch made only of retransmissions: its job finds nothing to do, not a missing batch', async () => {
    // Issue 12: the job of such a batch failed twice ("not in the journal yet") before being skipped.
    const [again] = await journal.ingestMany([item('J1')], [], 'batch-2');
    expect(again!.duplicate).toBe(true);
    expect(await journal.begin({ batch: 'batch-2' })).toEqual([]);
  });

  test('a batch whose journal write never happened is still told apart: missing', async () => {
    expect(await journal.begin({ batch: 'batch-never-written' })).toBe('missing');
  });
});
