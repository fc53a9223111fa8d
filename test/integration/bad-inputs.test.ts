import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
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
  t = await startTestEngine({
    main: channelYaml('main', { source: 'maxMessageSize: 64KiB' }),
  });
});
afterAll(() => t?.stop());

async function sendOne(payload: Buffer | string): Promise<ReturnType<typeof ackOf>> {
  const c = await RawMllp.open(t.port());
  await c.write(frame(payload));
  const [ack] = await c.waitAcks(1);
  c.close();
  return ackOf(ack!);
}

async function journalOf(controlId: string): Promise<JournalEntry> {
  return waitFor(async () => {
    const r = await t.api(`/messages?controlId=${encodeURIComponent(controlId)}`);
    const body = (await r.json()) as { messages: JournalEntry[] };
    return body.messages[0];
  });
}

describe('refused messages get the precise ACK and are journaled', () => {
  const cases: { name: string; message: string; code: string; error: string; location: string }[] = [
    {
      name: 'unknown message type',
      message: hl7({ type: 'QRY^A19^QRY_A19', controlId: 'BAD-200' }),
      code: 'AR',
      error: '200',
      location: 'MSH-9.1',
    },
    {
      name: 'unsupported event',
      message: hl7({ type: 'MDM^T01^MDM_T01', controlId: 'BAD-201' }),
      code: 'AR',
      error: '201',
      location: 'MSH-9.2',
    },
    {
      name: 'unsupported version',
      message: hl7({ type: 'MDM^T02^MDM_T02', version: '2.3', controlId: 'BAD-203' }),
      code: 'AR',
      error: '203',
      location: 'MSH-12.1',
    },
    {
      name: 'missing MSH-9',
      message: hl7({ type: '', controlId: 'BAD-101-9' }),
      code: 'AE',
      error: '101',
      location: 'MSH-9',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const ack = await sendOne(c.message);
      expect(ack.code).toBe(c.code);
      expect(ack.error).toBe(c.error);
      const controlId = c.message.split('|')[9]!;
      expect(ack.controlId).toBe(controlId);
      const entry = await journalOf(controlId);
      expect(entry.status).toBe('rejected');
      expect(entry.ackCode).toBe(c.code);
      expect(entry.events[0]!.error).toMatchObject({ code: Number(c.error), location: c.location });
    });
  }

  test('missing MSH-10', async () => {
    const message = hl7({ controlId: '' });
    const ack = await sendOne(message);
    expect(ack.code).toBe('AE');
    expect(ack.error).toBe('101');
    expect(ack.msg.get('ERR-2.1')).toBe('MSH');
    expect(ack.msg.get('ERR-2.3')).toBe('10');
    const list = (await (await t.api('/messages?status=rejected&limit=100')).json()) as { messages: JournalEntry[] };
    expect(
      list.messages.some((m) => m.events[0]?.error?.code === 101 && m.events[0]?.error?.location === 'MSH-10'),
    ).toBe(true);
  });

  test('an INS with a wrong key is answered AE 102 at PID-3, never stored as an accepted message', async () => {
    const message = hl7({ controlId: 'BAD-INS' }).replace(
      'PID|||IPP0001^^^CHU-TEST&1.2.250.1.999.1&ISO^PI',
      'PID|||IPP0001^^^CHU-TEST&1.2.250.1.999.1&ISO^PI' +
        '~279035121518988^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS',
    );
    const ack = await sendOne(message);
    expect(ack).toMatchObject({ code: 'AE', error: '102', controlId: 'BAD-INS' });
    expect([ack.msg.get('ERR-2.1'), ack.msg.get('ERR-2.3'), ack.msg.get('ERR-2.4'), ack.msg.get('ERR-2.5')]).toEqual([
      'PID',
      '3',
      '2',
      '1',
    ]);
    expect(ack.msg.get('ERR-8')).toMatch(/expected 89/);
    expect((await journalOf('BAD-INS')).status).toBe('rejected');
    const unknown = await sendOne(
      hl7({ controlId: 'BAD-INS-OID' }).replace(
        'PID|||IPP0001^^^CHU-TEST&1.2.250.1.999.1&ISO^PI',
        'PID|||279035121518989^^^X&1.2.3.4&ISO^INS',
      ),
    );
    expect(unknown).toMatchObject({ code: 'AE', error: '102' });
    expect(unknown.msg.get('ERR-8')).toMatch(/not an INS OID/);
  });

  test('a non-HL7 payload is rejected with 100, no crash', async () => {
    const ack = await sendOne('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
    expect(ack.code).toBe('AR');
    expect(ack.error).toBe('100');
    expect(ack.type).toBe('ACK');
  });
});

describe('framing faults', () => {
  test('a truncated frame followed by a valid one: the valid one is acknowledged, the fragment journaled', async () => {
    const c = await RawMllp.open(t.port());
    const valid = hl7({ controlId: 'AFTER-TRUNC' });
    const truncated = frame(hl7({ controlId: 'TRUNCATED' })).subarray(0, 60);
    await c.write(Buffer.concat([truncated, frame(valid)]));
    const [ack] = await c.waitAcks(1);
    expect(ackOf(ack!)).toMatchObject({ code: 'AA', controlId: 'AFTER-TRUNC' });
    const list = await waitFor(async () => {
      const r = (await (await t.api('/messages?status=discarded&limit=100')).json()) as { messages: JournalEntry[] };
      return r.messages.find((m) => m.events[0]?.detail?.startsWith('truncated frame'));
    });
    expect(list.size).toBe(59);
    c.close();
  });

  test('garbage bytes between frames are skipped and journaled', async () => {
    const c = await RawMllp.open(t.port());
    const a = hl7({ controlId: 'BEFORE-JUNK' });
    const b = hl7({ controlId: 'AFTER-JUNK' });
    await c.write(Buffer.concat([frame(a), Buffer.from('\x00\xffgarbage\r\n'), frame(b)]));
    const acks = await c.waitAcks(2);
    expect(acks.map((x) => ackOf(x).controlId)).toEqual(['BEFORE-JUNK', 'AFTER-JUNK']);
    expect(acks.map((x) => ackOf(x).code)).toEqual(['AA', 'AA']);
    await waitFor(async () => {
      const r = (await (await t.api('/messages?status=discarded&limit=100')).json()) as { messages: JournalEntry[] };
      return r.messages.find((m) => m.events[0]?.detail?.includes('outside any MLLP frame'));
    });
    c.close();
  });

  test('a message over the size limit gets AR then a clean close; other connections keep working', async () => {
    const other = await RawMllp.open(t.port());
    const c = await RawMllp.open(t.port());
    const big = hl7({
      controlId: 'TOO-BIG',
      segments: [`OBX|1|ED|x||^TEXT^XML^Base64^${'A'.repeat(100 * 1024)}||||||F`],
    });
    await c.write(frame(big));
    const [ack] = await c.waitAcks(1);
    expect(ackOf(ack!)).toMatchObject({ code: 'AR', controlId: 'TOO-BIG', error: '207' });
    expect(await c.waitClosed()).toBe(true);
    await other.write(frame(hl7({ controlId: 'STILL-SERVED' })));
    const [ok] = await other.waitAcks(1);
    expect(ackOf(ok!)).toMatchObject({ code: 'AA', controlId: 'STILL-SERVED' });
    other.close();
    const entry = await journalOf('TOO-BIG');
    expect(entry.status).toBe('rejected');
    expect(entry.size).toBeGreaterThan(100 * 1024);
  });
});

describe('charsets', () => {
  test('an 8859/15 message with € and é is accepted, stored byte for byte, and answered in 8859/15', async () => {
    const text = hl7({
      controlId: 'LATIN9-€',
      charset: '8859/15',
      segments: [
        'TXA|1|11488-4|TEXT|20261121101500||||||||DOC-€é|||||AU',
        'OBX|1|TX|NOTE^Note||Coût 15 € réglé||||||F',
      ],
    });
    const bytes = iconv.encode(text, 'iso-8859-15');
    expect(bytes.includes(0xa4)).toBe(true); // € in 8859-15
    const c = await RawMllp.open(t.port());
    await c.write(frame(bytes));
    const [ack] = await c.waitAcks(1);
    c.close();
    // MSA-2 echoes "LATIN9-€": in the ACK's bytes the € must be 0xA4, not UTF-8's E2 82 AC.
    expect(ack!.includes(Buffer.from('MSA|AA|LATIN9-\xa4', 'latin1'))).toBe(true);
    expect(ack!.includes(Buffer.from('€', 'utf8'))).toBe(false);
    expect(ack!.toString('latin1')).toContain('|8859/15');
    const entry = await journalOf('LATIN9-€');
    expect(entry.charset).toBe('8859/15');
    expect(entry.documentIds).toEqual(['DOC-€é']);
    const raw = Buffer.from(await (await t.api(`/messages/${entry.id}/raw`)).arrayBuffer());
    expect(raw.equals(bytes)).toBe(true);
  });

  test('an unknown MSH-18 is answered AE 103', async () => {
    const ack = await sendOne(hl7({ controlId: 'BAD-CHARSET', charset: 'EBCDIC' }));
    expect(ack.code).toBe('AE');
    expect(ack.error).toBe('103');
    expect(ack.controlId).toBe('BAD-CHARSET');
  });
});
