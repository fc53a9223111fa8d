import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { JournalEntry } from '../../src/journal/journal.js';
import {
  ackOf,
  channelYaml,
  frame,
  hl7,
  RawMllp,
  startTestEngine,
  waitFor,
  type TestEngine,
} from '../helpers/engine.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine({ main: channelYaml('main') });
});
afterAll(() => t?.stop());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function stored(controlId: string): Promise<{ entry: JournalEntry; raw: Buffer }> {
  const entry = await waitFor(async () => {
    const r = (await (await t.api(`/messages?controlId=${controlId}`)).json()) as { messages: JournalEntry[] };
    return r.messages[0];
  });
  const raw = Buffer.from(await (await t.api(`/messages/${entry.id}/raw`)).arrayBuffer());
  return { entry, raw };
}

test('a 20 MiB MDM is acknowledged AA and stored intact', async () => {
  const pdf = randomBytes(15 * 1024 * 1024).toString('base64'); // 20 MiB once in base64
  const message = Buffer.from(
    hl7({
      controlId: 'BIG-20MIB',
      segments: [
        'TXA|1|11488-4|TEXT|20261121101500||||||||DOC-BIG|||||AU',
        `OBX|1|ED|11488-4^CR^LN||^TEXT^XML^Base64^${pdf}||||||F`,
      ],
    }),
  );
  expect(message.length).toBeGreaterThan(20 * 1024 * 1024);
  const c = await RawMllp.open(t.port());
  await c.write(frame(message));
  const [ack] = await c.waitAcks(1, 30_000);
  c.close();
  expect(ackOf(ack!)).toMatchObject({ code: 'AA', controlId: 'BIG-20MIB' });
  const { entry, raw } = await stored('BIG-20MIB');
  expect(entry.size).toBe(message.length);
  expect(sha(raw)).toBe(sha(message));
  expect(entry.documentIds).toEqual(['DOC-BIG']);
});

test('two messages in one TCP write are both acknowledged, in order', async () => {
  const a = hl7({ controlId: 'PAIR-1' });
  const b = hl7({ controlId: 'PAIR-2' });
  const c = await RawMllp.open(t.port());
  await c.write(Buffer.concat([frame(a), frame(b)]));
  const acks = (await c.waitAcks(2)).map(ackOf);
  c.close();
  expect(acks.map((x) => [x.code, x.controlId])).toEqual([
    ['AA', 'PAIR-1'],
    ['AA', 'PAIR-2'],
  ]);
  expect((await stored('PAIR-2')).raw.toString()).toBe(b);
});

test('one message written one byte at a time is acknowledged and stored intact', async () => {
  const m = hl7({ controlId: 'BYTE-BY-BYTE' });
  const bytes = frame(m);
  const c = await RawMllp.open(t.port());
  c.socket.setNoDelay(true);
  for (let i = 0; i < bytes.length; i++) await c.write(bytes.subarray(i, i + 1));
  const [ack] = await c.waitAcks(1);
  c.close();
  expect(ackOf(ack!)).toMatchObject({ code: 'AA', controlId: 'BYTE-BY-BYTE' });
  expect((await stored('BYTE-BY-BYTE')).raw.toString()).toBe(m);
});
