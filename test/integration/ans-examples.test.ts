import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { splitMessages } from '../../src/cli/split.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import type { Submission } from '../../src/request/submission.js';
import { sendFile } from '../helpers/send.js';
import { ackOf, EXAMPLES, frame, RawMllp, ROOT, startTestEngine, waitFor, type TestEngine } from '../helpers/engine.js';
import { readFileSync as read } from 'node:fs';

/** Every MDM and ORU request of the volet Transmission (V2.0, V2.1, Vague 2), ACK files left out. */
function exampleFiles(): string[] {
  const roots = [
    'Volets/TRANS_DOC_CDA_HL7V2/V2.0',
    'Volets/TRANS_DOC_CDA_HL7V2/V2.1',
    'Vague 2/Trans_Doc-CDA-HL7V2',
  ].map((r) => join(EXAMPLES, r));
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(er7|hl7)$/i.test(name) && !/^ack/i.test(name)) out.push(p);
    }
  };
  roots.forEach(walk);
  return out.filter((p) =>
    /^MSH\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|(MDM|ORU)/.test(readFileSync(p, 'utf8')),
  );
}

/** The message after MSH, without trailing segment terminators (mllp_send strips them). */
function body(b: Buffer): Buffer {
  let end = b.length;
  while (end > 0 && (b[end - 1] === 0x0d || b[end - 1] === 0x0a || b[end - 1] === 0x20)) end--;
  return b.subarray(b.indexOf(0x0d), end);
}

const files = exampleFiles();
let t: TestEngine;

beforeAll(async () => {
  // The bundled default channel, as shipped.
  t = await startTestEngine({
    transmission: read(join(ROOT, 'channels/transmission.yaml'), 'utf8').replace('port: 2575', 'port: 0'),
  });
});
afterAll(() => t?.stop());

describe('ANS example messages of the volet Transmission, sent by an external client (mllp_send --loose)', () => {
  test('there are examples to send', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
  });

  for (const file of files) {
    test(relative(EXAMPLES, file), async () => {
      const sent = splitMessages(readFileSync(file));
      expect(sent).toHaveLength(1);
      const msh = sent[0]!.toString('utf8').split('\r')[0]!.split('|');
      const controlId = msh[9]!;
      const event = msh[8]!.split('^')[1]!;
      const ack = await sendFile(file, sent[0]!, t.port());
      expect(ack).toMatch(new RegExp(`^MSA\\|AA\\|${controlId}$`, 'm'));
      const ackMsh = ack.split('\n')[0]!.split('|');
      expect(ackMsh[8]).toBe(`ACK^${event}^ACK`);
      expect([ackMsh[2], ackMsh[3], ackMsh[4], ackMsh[5]]).toEqual([msh[4], msh[5], msh[2], msh[3]]);
      expect(ackMsh[11]).toBe(msh[11]);
      // In the journal, with its bytes intact: either as a new message or, when an earlier example
      // had the same sender, control id and content, as a retransmission of it.
      const entries = await waitFor(async () => {
        const r = (await (await t.api(`/messages?controlId=${encodeURIComponent(controlId)}&limit=100`)).json()) as {
          messages: JournalEntry[];
        };
        return r.messages.length ? r.messages : undefined;
      });
      let found = false;
      for (const e of entries) {
        const raw = Buffer.from(await (await t.api(`/messages/${e.id}/raw`)).arrayBuffer());
        if (body(raw).equals(body(sent[0]!))) found = true;
      }
      expect(found).toBe(true);
    });
  }
});

describe('the bundled channel checks the volet at ingest (profile cisis-transmission)', () => {
  const replacement = join(
    EXAMPLES,
    'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Remplacement MDM/' +
      'message_MDM_CR_Radio_RPLC_N1.er7',
  );

  async function send(payload: Buffer) {
    const c = await RawMllp.open(t.port());
    await c.write(frame(payload));
    const [ack] = await c.waitAcks(1);
    c.close();
    return ackOf(ack!);
  }

  test('a replacement (T10) without TXA-13 is answered AE 101 at TXA-13, and journaled', async () => {
    const msg = Hl7Message.parse(splitMessages(readFileSync(replacement))[0]!);
    msg.set('MSH-10', 'T10-NO-TXA13');
    msg.set('TXA-13', '');
    const ack = await send(msg.toBuffer());
    expect(ack).toMatchObject({ code: 'AE', controlId: 'T10-NO-TXA13', error: '101' });
    expect(ack.msg.get('ERR-2.1')).toBe('TXA');
    expect(ack.msg.get('ERR-2.3')).toBe('13');
    expect(ack.msg.get('ERR-8')).toContain('TXA-13-required-for-T10');
    const r = (await (await t.api('/messages?controlId=T10-NO-TXA13')).json()) as { messages: JournalEntry[] };
    expect(r.messages[0]).toMatchObject({ status: 'rejected', ackCode: 'AE' });
  });

  test('several violations give one ERR segment each', async () => {
    const msg = Hl7Message.parse(splitMessages(readFileSync(replacement))[0]!);
    msg.set('MSH-10', 'T10-TWO-ERRORS');
    msg.set('TXA-13', '');
    msg.set('MSH-21', '9.9^SOMETHING_ELSE');
    const ack = await send(msg.toBuffer());
    expect(ack.code).toBe('AE');
    expect(ack.msg.segmentsNamed('ERR').length).toBeGreaterThanOrEqual(2);
  });

  test('our demo fixture satisfies the volet', async () => {
    const [demo] = splitMessages(readFileSync(join(ROOT, 'fixtures/mdm-t02-demo.hl7')));
    expect((await send(demo!)).code).toBe('AA');
  });
});

describe('the bundled channel interprets transmission requests (flow transmission)', () => {
  const dir = join(
    EXAMPLES,
    'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Transmission initiale MDM',
  );

  async function sendAs(file: string, controlId: string) {
    const msg = Hl7Message.parse(splitMessages(readFileSync(join(dir, file)))[0]!);
    msg.set('MSH-10', controlId);
    const c = await RawMllp.open(t.port());
    await c.write(frame(msg.toBuffer()));
    const [ack] = await c.waitAcks(1);
    c.close();
    expect(ackOf(ack!).code).toBe('AA');
    return waitFor(async () => {
      const r = (await (await t.api(`/messages?controlId=${controlId}`)).json()) as { messages: JournalEntry[] };
      const e = r.messages[0];
      return e && ['processed', 'dead-lettered'].includes(e.status) ? e : undefined;
    });
  }

  test('a request with its CDA: GET /messages/:id/submission gives the documents, metadata and routes', async () => {
    const entry = await sendAs('message_MDM_CR_Radio_INIT_N1_Base64.er7', 'SUB-OK');
    expect(entry.status).toBe('processed');
    const sub = (await (await t.api(`/messages/${entry.id}/submission`)).json()) as Submission;
    expect(sub.event).toBe('new');
    expect(sub.documents[0]!.entry.patientId).toEqual({
      id: '279035121518989',
      authority: '1.2.250.1.213.1.4.10',
      type: 'NH',
    });
    expect(sub.documents[0]!.entry.typeCode.code).toBe('18748-4');
    expect(sub.routes.dmp).toBe(true);
  });

  test('the placeholder variant is dead-lettered at once with the rule that refused it', async () => {
    const entry = await sendAs('message_MDM_CR_Radio_INIT_N1.er7', 'SUB-PLACEHOLDER');
    expect(entry.status).toBe('dead-lettered');
    const last = entry.events.find((e) => e.status === 'dead-lettered')!;
    expect(last.error!.message).toMatch(/^\[OBX-5-cda\] 102 OBX 1: Not a CDA document/);
    expect(entry.events.filter((e) => e.status === 'processing')).toHaveLength(1);
    expect((await t.api(`/messages/${entry.id}/submission`)).status).toBe(404);
  });
});
