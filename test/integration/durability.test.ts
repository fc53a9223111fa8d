import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { JournalEntry } from '../../src/journal/journal.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { ackOf, channelYaml, frame, hl7, RawMllp, spawnEngine, startTestEngine, tempDir, TOKEN, waitFor } from '../helpers/engine.js';

async function get(adminUrl: string, path: string) {
  return (await fetch(adminUrl + path, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
}

async function sendAndAck(port: number, payload: string) {
  const c = await RawMllp.open(port);
  await c.write(frame(payload));
  const [ack] = await c.waitAcks(1);
  c.close();
  return ackOf(ack!);
}

describe('kill -9 right after AA', () => {
  let dir: string;
  let redis: EmbeddedRedis;
  beforeAll(async () => {
    dir = tempDir('crash');
    mkdirSync(join(dir, 'channels'));
    // A fixed free-ish port is not needed: port 0 and the port read from the logs.
    writeFileSync(join(dir, 'channels', 'main.yaml'), channelYaml('main'));
    redis = await startEmbeddedRedis({ dir: join(dir, 'redis') });
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the message is processed after restart, exactly once, and a retransmission is not processed again', async () => {
    const env = { PFI_HOME: dir, PFI_REDIS_URL: redis.url, PFI_VAR_DIR: join(dir, 'var') };
    // First life: listeners only (as a crash before any worker picked the job up), killed at once.
    const first = await spawnEngine({ ...env, PFI_ROLE: 'ingest' });
    const message = hl7({ controlId: 'CRASH-1' });
    const ack = await sendAndAck(first.ports.main!, message);
    expect(ack.code).toBe('AA');
    first.child.kill('SIGKILL');
    await first.stopped;

    // Second life: full engine. The job waiting in Redis is processed.
    const second = await spawnEngine(env);
    try {
      const entry = await waitFor(async () => {
        const r = (await get(second.adminUrl, '/messages?controlId=CRASH-1')) as { messages: JournalEntry[] };
        return r.messages[0]?.status === 'processed' ? r.messages[0] : undefined;
      });
      // The sender did not get our ACK in time and sends again: AA, not processed twice.
      const again = await sendAndAck(second.ports.main!, message);
      expect(again).toMatchObject({ code: 'AA', controlId: 'CRASH-1' });
      await new Promise((ok) => setTimeout(ok, 500));
      const r = (await get(second.adminUrl, '/messages?controlId=CRASH-1')) as { messages: JournalEntry[] };
      expect(r.messages).toHaveLength(1);
      const events = (await get(second.adminUrl, `/messages/${entry.id}`)) as JournalEntry;
      expect(events.events.filter((e) => e.status === 'processed')).toHaveLength(1);
      expect(events.events.filter((e) => e.status === 'processing')).toHaveLength(1);
      expect(events.events.some((e) => e.status === 'duplicate')).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.stopped).toBe(0);
    }
  });
});

describe('Redis stopped', () => {
  test('new messages get AR 207 (never AA) within 5 s; accepted again once Redis is back', async () => {
    const dir = tempDir('redis-down');
    const port = 20000 + Math.floor(Math.random() * 20000);
    let redis = await startEmbeddedRedis({ dir, port });
    const t = await startTestEngine({ main: channelYaml('main') }, { redis });
    try {
      expect((await sendAndAck(t.port(), hl7({ controlId: 'UP-1' }))).code).toBe('AA');
      await redis.stop();

      for (const id of ['DOWN-1', 'DOWN-2']) {
        const started = Date.now();
        const ack = await sendAndAck(t.port(), hl7({ controlId: id }));
        expect(Date.now() - started).toBeLessThan(5000);
        expect(ack).toMatchObject({ code: 'AR', controlId: id, error: '207' });
      }
      const health = await t.api('/health');
      expect(health.status).toBe(503);

      redis = await startEmbeddedRedis({ dir, port });
      const ack = await waitFor(async () => {
        const a = await sendAndAck(t.port(), hl7({ controlId: `BACK-${Date.now()}` }));
        return a.code === 'AA' ? a : undefined;
      }, 20_000, 'AA after Redis restart');
      expect(ack.code).toBe('AA');
      // What was acknowledged before the outage survived it (AOF).
      const r = new Redis(redis.url);
      const ids = await r.keys('pfi:x:ctl:UP-1');
      r.disconnect();
      expect(ids).toHaveLength(1);
    } finally {
      await t.stop();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a message stored but never enqueued', () => {
  test('AR the first time; the retransmission is acknowledged and gets the message processed, once', async () => {
    const t = await startTestEngine({ main: channelYaml('main') });
    const r = new Redis(t.redis.url);
    try {
      // Break the queue only: BullMQ's add fails (WRONGTYPE on its meta key), the journal write
      // before it succeeds. Exactly the window the retransmission path covers.
      await r.set('pfi-q:main:meta', 'not a hash');
      const first = await sendAndAck(t.port(), hl7({ controlId: 'ORPHAN-1' }));
      expect(first).toMatchObject({ code: 'AR', controlId: 'ORPHAN-1', error: '207' });
      const stored = (await (await t.api('/messages?controlId=ORPHAN-1')).json()) as { messages: JournalEntry[] };
      expect(stored.messages).toHaveLength(1);
      await r.del('pfi-q:main:meta');

      const again = await sendAndAck(t.port(), hl7({ controlId: 'ORPHAN-1' }));
      expect(again).toMatchObject({ code: 'AA', controlId: 'ORPHAN-1' });
      // The duplicate event is written after the ACK, possibly after a fast worker's outcome.
      const entry = await waitFor(async () => {
        const s = (await (await t.api('/messages?controlId=ORPHAN-1')).json()) as { messages: JournalEntry[] };
        const e = s.messages[0];
        return e?.status === 'processed' && e.events.some((x) => x.status === 'duplicate') ? e : undefined;
      });
      const s = (await (await t.api('/messages?controlId=ORPHAN-1')).json()) as { messages: JournalEntry[] };
      expect(s.messages).toHaveLength(1);
      expect(entry.events.filter((e) => e.status === 'processed')).toHaveLength(1);
      expect(entry.events.some((e) => e.status === 'duplicate')).toBe(true);
    } finally {
      r.disconnect();
      await t.stop();
    }
  });
});
