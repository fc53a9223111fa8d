import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Hl7Message } from '../../src/hl7v2/message.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import { Peer } from '../helpers/peer.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitMessages } from '../../src/cli/split.js';
import {
  ackOf,
  channelYaml,
  EXAMPLES,
  frame,
  hl7,
  RawMllp,
  ROOT,
  startTestEngine,
  TOKEN,
  waitFor,
  type TestEngine,
} from '../helpers/engine.js';

const peer = new Peer();
let t: TestEngine;

beforeAll(async () => {
  await peer.start();
  t = await startTestEngine({
    inbox: channelYaml('inbox'),
    relay: channelYaml('relay', {
      extra: `flow: forward
destinations:
  - { id: dpi, type: mllp, host: 127.0.0.1, port: ${peer.port}, ackTimeoutSeconds: 60 }
processing: { concurrency: 1, attempts: 2, backoffSeconds: 0.1 }
`,
    }).replace('flow: journal\n', ''),
    createur: channelYaml('createur', {
      source: 'profile: cisis-transmission',
      extra: `mapping: ${join(ROOT, 'mappings', 'transmission.yaml')}
businessAcks: { host: 127.0.0.1, port: ${peer.port}, ackTimeoutSeconds: 60 }
processing: { concurrency: 1, attempts: 2, backoffSeconds: 0.1 }
`,
    }).replace('flow: journal', 'flow: transmission'),
  });
});
afterAll(async () => {
  await t?.stop();
  await peer.server.close();
});

async function send(channel: string, payload: string) {
  const c = await RawMllp.open(t.port(channel));
  await c.write(frame(payload));
  const [ack] = await c.waitAcks(1);
  c.close();
  return ackOf(ack!);
}

async function entryByControlId(id: string, status?: string): Promise<JournalEntry> {
  return waitFor(
    async () => {
      const r = (await (await t.api(`/messages?controlId=${id}`)).json()) as { messages: JournalEntry[] };
      const e = r.messages[0];
      return e && (!status || e.status === status) ? e : undefined;
    },
    30_000,
    `${id} ${status ?? ''}`,
  );
}

describe('admin API', () => {
  test('no token, wrong token, the token without Bearer: 401 problem+json; health and metrics are public', async () => {
    for (const auth of [undefined, 'Bearer nope', TOKEN, `Basic ${TOKEN}`, `Bearer ${TOKEN} x`]) {
      const r = await fetch(t.engine.adminUrl + '/messages', { headers: auth ? { authorization: auth } : {} });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(((await r.json()) as { title: string }).title).toBe('Unauthorized');
    }
    expect(
      (await fetch(t.engine.adminUrl + '/messages', { headers: { authorization: `bearer ${TOKEN}` } })).status,
    ).toBe(200);
    const h = await fetch(t.engine.adminUrl + '/health');
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({
      status: 'ok',
      redis: 'up',
      listeners: { createur: 'up', inbox: 'up', relay: 'up' },
    });
  });

  test('GET /channels shows listeners, ports, flows and queue depths', async () => {
    const list = (await (await t.api('/channels')).json()) as {
      id: string;
      port: number;
      listener: string;
      flow: string;
      queue: Record<string, number>;
    }[];
    expect(list.map((c) => [c.id, c.flow, c.listener])).toEqual([
      ['createur', 'transmission', 'up'],
      ['inbox', 'journal', 'up'],
      ['relay', 'forward', 'up'],
    ]);
    expect(list[1]!.port).toBe(t.port('inbox'));
    expect(list[1]!.queue).toHaveProperty('waiting');
    await send('inbox', hl7({ controlId: 'COUNT-1' }));
    await send('inbox', hl7({ controlId: 'COUNT-2', type: 'XYZ^Z99^XYZ' }));
    const after = (await (await t.api('/channels')).json()) as {
      id: string;
      counts: { received: number; acks: Record<string, number> };
    }[];
    const inbox = after.find((c) => c.id === 'inbox')!;
    expect(inbox.counts.acks.AA).toBeGreaterThanOrEqual(1);
    expect(inbox.counts.acks.AR).toBeGreaterThanOrEqual(1);
    expect(inbox.counts.received).toBe(Object.values(inbox.counts.acks).reduce((a, b) => a + b, 0));
  });

  test('search by MSH-10, TXA-12 document id and patient identifier', async () => {
    const m = hl7({
      controlId: 'SEARCH-1',
      segments: ['TXA|1|11488-4|TEXT|20261121101500||||||||1.2.250.1.999.42^DOCX|||||AU'],
    }).replace('IPP0001', 'IPP-SEARCH');
    expect((await send('inbox', m)).code).toBe('AA');
    const e = await entryByControlId('SEARCH-1', 'processed');
    for (const q of [
      'documentId=1.2.250.1.999.42',
      'patientId=IPP-SEARCH',
      'controlId=SEARCH-1',
      'channel=inbox&status=processed',
    ]) {
      const r = (await (await t.api(`/messages?${q}`)).json()) as { messages: JournalEntry[] };
      expect(r.messages.map((x) => x.id)).toContain(e.id);
    }
    // ACK events are written just after the ACK and may land after a fast worker's outcome.
    const one = await waitFor(async () => {
      const x = (await (await t.api(`/messages/${e.id}`)).json()) as JournalEntry;
      return x.events.length >= 5 ? x : undefined;
    });
    expect(one.events.map((x) => x.status)).toEqual(['received', 'queued', 'acknowledged', 'processing', 'processed']);
    expect(one.messageType).toBe('MDM^T02');
    const missing = await t.api('/messages/nope');
    expect(missing.status).toBe(404);
    const bad = await t.api('/messages?status=weird');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
  });

  test('metrics count messages and ACK codes', async () => {
    const text = await (await fetch(t.engine.adminUrl + '/metrics')).text();
    expect(text).toMatch(/pfi_acks_sent_total\{channel="inbox",code="AA"\} [1-9]/);
    expect(text).toMatch(/pfi_ack_latency_seconds_bucket/);
    expect(text).toMatch(/pfi_queue_jobs\{channel="relay",state="waiting"\}/);
  });

  test('OpenAPI document lists the routes', async () => {
    const doc = (await (await fetch(t.engine.adminUrl + '/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/health',
        '/channels',
        '/messages',
        '/messages/{id}',
        '/messages/{id}/replay',
        '/metrics',
      ]),
    );
  });
});

describe('forward flow', () => {
  test('delivers to the destination and records its ACK', async () => {
    peer.answer = 'AA';
    expect((await send('relay', hl7({ controlId: 'FWD-1' }))).code).toBe('AA');
    const e = await entryByControlId('FWD-1', 'processed');
    expect(peer.received).toContain('FWD-1');
    const one = (await (await t.api(`/messages/${e.id}`)).json()) as JournalEntry;
    expect(one.events.find((x) => x.status === 'delivered')).toMatchObject({ destination: 'dpi', ackCode: 'AA' });
  });

  test('a destination answering AE: retried, then dead-lettered with the reason; replay delivers it', async () => {
    peer.answer = 'AE';
    expect((await send('relay', hl7({ controlId: 'FWD-AE' }))).code).toBe('AA');
    const e = await entryByControlId('FWD-AE', 'dead-lettered');
    const one = (await (await t.api(`/messages/${e.id}`)).json()) as JournalEntry;
    expect(one.events.filter((x) => x.status === 'processing')).toHaveLength(2);
    expect(one.events.find((x) => x.status === 'dead-lettered')!.error!.message).toContain(
      'dpi: AE (207 peer says no)',
    );

    peer.answer = 'AA';
    const r = await t.api(`/messages/${e.id}/replay`, { method: 'POST' });
    expect(r.status).toBe(202);
    await entryByControlId('FWD-AE', 'processed');
    expect(peer.received.filter((x) => x === 'FWD-AE')).toHaveLength(3);
  });

  test('a message refused at ingest cannot be replayed', async () => {
    await send('inbox', hl7({ controlId: 'NOPE-1', type: 'XYZ^Z99^XYZ' }));
    const e = await entryByControlId('NOPE-1');
    const r = await t.api(`/messages/${e.id}/replay`, { method: 'POST' });
    expect(r.status).toBe(409);
  });
});

describe('business acknowledgements', () => {
  test(
    'a request refused at interpretation that asked ' + 'for ACK_RECEPTION gets a ZAM^Z01 N naming the rule',
    async () => {
      const file = join(
        EXAMPLES,
        'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/ORU/Transmission initiale ORU/' +
          'message_ORU_CR_Bio_INIT_N3_SEGUR.hl7',
      );
      const msg = Hl7Message.parse(splitMessages(readFileSync(file))[0]!);
      msg.set('MSH-10', 'ZAM-ME');
      msg.set('OBX-5.5', Buffer.from('this is not a CDA').toString('base64'));
      const c = await RawMllp.open(t.port('createur'));
      await c.write(frame(msg.toBuffer()));
      const [ack] = await c.waitAcks(1);
      c.close();
      expect(ackOf(ack!).code).toBe('AA');
      const entry = await entryByControlId('ZAM-ME', 'dead-lettered');
      const zam = peer.messages.find((m) => m.get('MSH-9.1') === 'ZAM' && m.get('OBX-4') === 'ZAM-ME')!;
      expect(zam.get('MSH-9.2')).toBe('Z01');
      expect(zam.get('OBX-3.1')).toBe('ACK_RECEPTION_DMP');
      expect(zam.get('OBX-5.1')).toBe('N');
      expect(zam.get('ERR-5.1')).toBe('OBX-5-cda');
      expect(zam.get('ERR-8')).toMatch(/Not a CDA document/);
      const one = (await (await t.api(`/messages/${entry.id}`)).json()) as JournalEntry;
      expect(one.events.find((x) => x.status === 'delivered')).toMatchObject({
        destination: 'business-acks',
        ackCode: 'AA',
      });
    },
  );
});
