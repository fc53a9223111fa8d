import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, test } from 'vitest';
import { parseMultipartParts, type MimePart } from '../../src/mime/multipart.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import { readHeaders } from '../../src/mail/reports.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { EXAMPLES, startTestEngine, transmissionChannelYaml, waitFor, type TestEngine } from '../helpers/engine.js';
import { PASSWORD, readMailbox, sendRaw, TcpGate, waitForMail, waitForPostfixQueue } from '../helpers/mail.js';
import { Peer } from '../helpers/peer.js';
import { sendFile } from '../helpers/send.js';

const VAGUE2 = join(EXAMPLES, 'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1');
const MDM_INIT = join(VAGUE2, 'MDM/Transmission initiale MDM/message_MDM_CR_Radio_INIT_N1_Base64.er7');
// A mailbox of its own: the engine's watcher takes every mail there, other test files must not share it.
const APP = 'bal-mss@hopital.test';
const PRO = 'adam.hoda@test-ci-sis.mssante.fr';
const PATIENT = '279035121518989@patient.mssante.fr';
// The channel says PFI/Traites and PFI/Rejetes; Dovecot's maildir hierarchy separator is '.'.
const DONE = 'PFI.Traites';
const ASIDE = 'PFI.Rejetes';

let createur: Peer;
let gate: TcpGate;
let t: TestEngine;
let redis: EmbeddedRedis;
let channelFile: string;
const work = mkdtempSync(join(tmpdir(), 'pfi-mss-'));

beforeAll(async () => {
  const mail = inject('mail');
  createur = await new Peer().start();
  gate = await TcpGate.start(mail.smtp);
  redis = await startEmbeddedRedis({ dir: join(work, 'redis') });
  const imap =
    `{ host: 127.0.0.1, port: ${mail.imap.port}, secure: false, ` +
    `auth: { user: ${APP}, password: ${PASSWORD} }, pollSeconds: 2 }`;
  channelFile = transmissionChannelYaml(
    'mss',
    createur.port,
    `mssante:
  from: ${APP}
  smtp: { host: 127.0.0.1, port: ${gate.port}, secure: false }
  imap: ${imap}
  nil: PFI-TEST 1.0
  attempts: 10
  backoffSeconds: 0.5`,
  );
  t = await startTestEngine({ mss: channelFile }, { redis });
});

afterAll(async () => {
  await t?.stop();
  await redis?.stop();
  await gate?.stop();
  await createur?.server.close();
});

beforeEach(() => {
  createur.messages.length = 0;
});

/** Mails of a request: their Message-ID (and a DSN's returned headers, ENVID) carry its journal id. */
const about = (id: string) => (source: string) => source.includes(id);

let seq = 0;
/** The ANS example as a CREATEUR would send it to MSSanté only (DESTDMP=N), with its own control id and flags. */
async function send(file: string, edit: (m: Hl7Message) => Hl7Message | void = () => {}) {
  const msg = Hl7Message.parse(readFileSync(file));
  const controlId = `MSS-${++seq}-${Date.now()}`;
  msg.set('MSH-10', controlId);
  flag(msg, 'DESTDMP', 'N');
  const edited = edit(msg) ?? msg;
  const out = join(work, `${controlId}.hl7`);
  writeFileSync(out, edited.toBuffer());
  const ack = await sendFile(out, edited.toBuffer(), t.port('mss'));
  expect(ack, ack).toMatch(new RegExp(`^MSA\\|AA\\|${controlId}$`, 'm'));
  const id = await waitFor(
    async () =>
      ((await (await t.api(`/messages?controlId=${controlId}`)).json()) as { messages: JournalEntry[] }).messages[0]
        ?.id,
  );
  return { controlId, id };
}

function flag(msg: Hl7Message, name: string, value: 'Y' | 'N') {
  msg.segmentsNamed('OBX').forEach((_, i) => {
    if (msg.get(`OBX[${i + 1}]-3.1`) === name) msg.set(`OBX[${i + 1}]-5.1`, value);
  });
}

/** A received mail: its headers and its MIME parts (attachments with their file names). */
function mime(source: Buffer) {
  const headers = readHeaders(source);
  const split = source.indexOf('\r\n\r\n');
  const parts: MimePart[] = parseMultipartParts(headers.get('content-type')!, source.subarray(split + 4));
  const file = (name: string) =>
    parts.find(
      (p) =>
        (p.headers['content-disposition'] ?? '').includes(`filename=${name}`) ||
        (p.headers['content-disposition'] ?? '').includes(`filename="${name}"`),
    );
  return { headers, parts, file };
}

async function zams(controlId: string, kind: string, n = 1) {
  return waitFor(
    async () => (createur.zams(controlId, kind).length >= n ? createur.zams(controlId, kind) : undefined),
    20_000,
    `${n} ZAM^${kind} about ${controlId}`,
  );
}

describe('the ANS example MDM with DESTMSSANTEPS=Y, sent with mllp_send', () => {
  test(
    'one mail in the professional’s mailbox: ' +
      'the XDM is valid ebRIM with the document byte for byte, the MSSanté headers are set',
    async () => {
      const { id } = await send(MDM_INIT);
      const [source] = await waitForMail(PRO, about(id));
      const m = mime(source!);
      expect(m.headers.get('from')).toContain(APP);
      expect(m.headers.get('to')).toContain(PRO);
      expect(m.headers.has('reply-to')).toBe(false); // the example has no PRT REPLY
      expect(m.headers.get('subject')).toMatch(/^XDM\/1\.0\/DDM\+.+ PAT-TROIS DOMINIQUE 28\/03\/1979$/);
      expect(m.headers.get('x-mss-codecda')).toBe('18748-4');
      expect(m.headers.get('x-mss-ins')).toBe('N'); // the example's identity is VALI, not QUAL
      expect(m.headers.get('x-mss-nil')).toBe('PFI-TEST 1.0');
      expect(m.headers.has('disposition-notification-to')).toBe(false);

      const zip = unzipSync(new Uint8Array(m.file('IHE_XDM.ZIP')!.body));
      expect(Object.keys(zip).sort()).toEqual([
        'IHE_XDM/SUBSET01/DOC0001.XML',
        'IHE_XDM/SUBSET01/METADATA.XML',
        'INDEX.HTM',
        'README.TXT',
      ]);
      const cda = Buffer.from(Hl7Message.parse(readFileSync(MDM_INIT)).get('OBX-5.5')!, 'base64');
      const doc = Buffer.from(zip['IHE_XDM/SUBSET01/DOC0001.XML']!);
      expect(doc.equals(cda)).toBe(true);
      const meta = new XMLParser({
        ignoreAttributes: false,
        removeNSPrefix: true,
        attributeNamePrefix: '@',
        isArray: (n) => ['ExtrinsicObject', 'Slot', 'ExternalIdentifier', 'Classification'].includes(n),
      }).parse(Buffer.from(zip['IHE_XDM/SUBSET01/METADATA.XML']!).toString('utf8'));
      const eo = meta.SubmitObjectsRequest.RegistryObjectList.ExtrinsicObject[0];
      const slot = (name: string) => eo.Slot.find((s: { '@name': string }) => s['@name'] === name)?.ValueList.Value;
      expect(String(slot('hash'))).toBe(createHash('sha1').update(cda).digest('hex'));
      expect(Number(slot('size'))).toBe(cda.length);
      expect(slot('URI')).toBe('DOC0001.XML');
      const ids = Object.fromEntries(
        eo.ExternalIdentifier.map((x: Record<string, string>) => [x['@identificationScheme'], x['@value']]),
      );
      expect(ids['urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427']).toBe(
        '279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH',
      );
      const type = eo.Classification.find(
        (c: Record<string, string>) => c['@classificationScheme'] === 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
      );
      expect(type['@nodeRepresentation']).toBe('18748-4');
    },
  );

  test(
    'DESTMSSANTEPAT=Y with NTE-4: the patient’s mailbox ' +
      '(<INS>@patient.mssante.fr) gets its own mail with X-MSS-MES: FIN',
    async () => {
      const { id } = await send(MDM_INIT, (m) => {
        flag(m, 'DESTMSSANTEPAT', 'Y');
        flag(m, 'INVISIBLE_PATIENT', 'N');
        flag(m, 'INVISIBLE_REP_LEGAUX', 'N');
        return withPatientRecipient(m, true);
      });
      const [p] = await waitForMail(PATIENT, about(id));
      expect(mime(p!).headers.get('x-mss-mes')).toBe('FIN');
      expect(mime(p!).headers.get('to')).toContain(PATIENT);
      const [ps] = await waitForMail(PRO, about(id));
      expect(mime(ps!).headers.has('x-mss-mes')).toBe(false);
      expect(mime(ps!).headers.get('to')).not.toContain(PATIENT);
    },
  );

  test('a flag combination outside the rules matrix is refused at once, with the rule (AE)', async () => {
    const msg = Hl7Message.parse(readFileSync(MDM_INIT));
    flag(msg, 'DESTMSSANTEPAT', 'Y'); // the example keeps INVISIBLE_REP_LEGAUX=Y and names no patient address
    const file = join(work, 'matrix.hl7');
    writeFileSync(file, msg.toBuffer());
    const ack = await sendFile(file, msg.toBuffer(), t.port('mss'));
    expect(ack).toMatch(/^MSA\|AE\|/m);
    expect(ack).toContain('[MSSante-matrix]');
    expect(ack).toContain('[PRT-RCT-required-for-DESTMSSANTEPAT]');
  });
});

/** Adds the patient as a recipient (PRT RCT at @patient.mssante.fr), and the NTE-4 that forbids an answer. */
function withPatientRecipient(m: Hl7Message, noReply: boolean): Hl7Message {
  const lines = m.toString().split('\r');
  const lastPrt = lines.map((l) => l.startsWith('PRT|')).lastIndexOf(true);
  lines.splice(
    lastPrt + 1,
    0,
    `PRT||UC||RCT^^participation|279035121518989^PAT-TROIS^DOMINIQUE^^^^^^^L^^^INS||||||||||^NET^X.400^${PATIENT}`,
  );
  if (noReply) {
    const at = lines.findIndex((l) => /^OBX\|\d+\|CWE\|DESTMSSANTEPAT\^/.test(l));
    lines.splice(at + 1, 0, 'NTE|1||Ne pas répondre|FIN');
  }
  return Hl7Message.parse(lines.join('\r'));
}

describe('business acknowledgements from the mail system', () => {
  test('ACK_RECEPTION=Y: Postfix’s real DSN for a delivered mail gives ZAM^Z02 Y for that recipient', async () => {
    const { controlId, id } = await send(MDM_INIT, (m) => flag(m, 'ACK_RECEPTION', 'Y'));
    const [z] = await zams(controlId, 'Z02');
    expect(z!.get('OBX-5.1')).toBe('Y');
    expect(z!.get('OBX[2]-3.1')).toBe('DESTINATAIRE_MSS');
    expect(z!.get('OBX[2]-4')).toBe('801234567897');
    expect(z!.get('OBX[2]-5.4')).toBe(PRO);
    // The DSN was used up: moved out of the application mailbox's INBOX.
    await waitForMail(APP, about(id), { folder: DONE, timeoutMs: 10_000 });
    expect((await readMailbox(APP)).filter((x) => about(id)(x.source.toString('latin1')))).toHaveLength(0);
    const e = (await (await t.api(`/messages/${id}`)).json()) as JournalEntry;
    expect(
      e.events.some(
        (x) => x.destination === `mssante:${PRO}` && x.status === 'delivered' && /DSN delivered/.test(x.detail ?? ''),
      ),
    ).toBe(true);
  });

  test('an unknown recipient: refused at RCPT, ZAM^Z02 N with ERR-5 550 (SMTPERRORCODE)', async () => {
    const { controlId } = await send(MDM_INIT, (m) => {
      flag(m, 'ACK_RECEPTION', 'Y');
      const k = m.segmentsNamed('PRT').findIndex((_, i) => m.get(`PRT[${i + 1}]-4.1`) === 'RCT') + 1;
      m.set(`PRT[${k}]-15.4`, 'nobody@test-ci-sis.mssante.fr');
    });
    const [z] = await zams(controlId, 'Z02');
    expect(z!.get('OBX-5.1')).toBe('N');
    expect(z!.get('OBX[2]-5.4')).toBe('nobody@test-ci-sis.mssante.fr');
    expect([z!.get('ERR-5.1'), z!.get('ERR-5.3')]).toEqual(['550', 'SMTPERRORCODE']);
  });

  test('ACK_LECTURE_MSS=Y: the mail asks for a read receipt, and the recipient’s MDN gives ZAM^Z03 Y', async () => {
    const { controlId, id } = await send(MDM_INIT, (m) => flag(m, 'ACK_LECTURE_MSS', 'Y'));
    const [source] = await waitForMail(PRO, about(id));
    const h = readHeaders(source!);
    expect(h.get('disposition-notification-to')).toContain(APP);
    // The recipient's mail software answers with an MDN (RFC 8098).
    await sendRaw(PRO, [APP], mdn(PRO, APP, h.get('message-id')!, 'displayed'));
    const [z] = await zams(controlId, 'Z03');
    expect(z!.get('OBX-3.1')).toBe('ACK_LECTURE_MSS');
    expect(z!.get('OBX-5.1')).toBe('Y');
    expect([z!.get('OBX[2]-3.1'), z!.get('OBX[2]-5.4')]).toEqual(['LECTEUR_MSS', PRO]);
  });
});

describe('reliability', () => {
  test('mail server unreachable during the send: retried, delivered once when it is back', async () => {
    gate.close();
    let id: string;
    try {
      ({ id } = await send(MDM_INIT));
      const failed = async () => {
        const e = (await (await t.api(`/messages/${id}`)).json()) as JournalEntry;
        return e.events.some((x) => x.destination === 'mssante' && x.status === 'failed');
      };
      await waitFor(failed, 30_000, 'a failed attempt');
    } finally {
      await gate.open();
    }
    await waitForMail(PRO, about(id));
    // Once the engine has noted the recipient as taken by the server, it sends it nothing more; once Postfix
    // holds nothing more for it, every copy it took is in the mailbox.
    const taken = (e: JournalEntry) =>
      e.events.filter((x) => x.destination === `mssante:${PRO}` && /accepted by the mail server/.test(x.detail ?? ''));
    const e = await waitFor(
      async () => {
        const entry = (await (await t.api(`/messages/${id}`)).json()) as JournalEntry;
        return taken(entry).length > 0 ? entry : undefined;
      },
      20_000,
      'the recipient noted as taken by the mail server',
    );
    expect(taken(e)).toHaveLength(1);
    await waitForPostfixQueue(PRO);
    expect((await readMailbox(PRO)).filter((m) => about(id)(m.source.toString('latin1')))).toHaveLength(1);
  }, 120_000);

  test(
    'a report seen again (the watcher stopped before moving it) sends no second ZAM; ' +
      'a report arriving while the engine is down is used after the restart',
    async () => {
      const { controlId, id } = await send(MDM_INIT, (m) => {
        flag(m, 'ACK_RECEPTION', 'Y');
        flag(m, 'ACK_LECTURE_MSS', 'Y');
      });
      await zams(controlId, 'Z02');
      const [dsn] = await waitForMail(APP, about(id), { folder: DONE });
      // The same DSN once more in the INBOX, as after a crash between its handling and its move.
      await sendRaw('MAILER-DAEMON@hopital.test', [APP], dsn!);
      await waitForMail(APP, about(id), { folder: DONE, n: 2 });
      expect(createur.zams(controlId, 'Z02')).toHaveLength(1);

      // Engine stopped; the recipient reads the mail meanwhile; the MDN waits in the mailbox.
      const [sent] = await waitForMail(PRO, about(id));
      await t.stop();
      await sendRaw(PRO, [APP], mdn(PRO, APP, readHeaders(sent!).get('message-id')!, 'displayed'));
      await waitForMail(APP, about(id));
      t = await startTestEngine({ mss: channelFile }, { redis });
      const [z] = await zams(controlId, 'Z03');
      expect(z!.get('OBX-5.1')).toBe('Y');
      // The MDN is filed once its handling (ZAM sent and acknowledged) is over: it is not read again.
      await waitForMail(APP, (x) => about(id)(x) && /report-type=disposition-notification/i.test(x), { folder: DONE });
      expect(createur.zams(controlId, 'Z03')).toHaveLength(1);
    },
  );

  test('a malformed report is journaled and moved aside; the watcher goes on with the next one', async () => {
    const brokenId = `broken-${Date.now()}`;
    const broken = [
      `From: MAILER-DAEMON@mx.pfi.test`,
      `To: ${APP}`,
      `Subject: Undelivered Mail Returned to Sender`,
      `Message-ID: <${brokenId}@mx.pfi.test>`,
      `MIME-Version: 1.0`,
      `Content-Type: multipart/report; report-type=delivery-status; boundary="b1"`,
      ``,
      `--b1`,
      `Content-Type: text/plain`,
      ``,
      `This report lost its delivery-status part.`,
      `--b1--`,
      ``,
    ].join('\r\n');
    await sendRaw('MAILER-DAEMON@hopital.test', [APP], broken);
    await waitForMail(APP, (x) => x.includes(brokenId), { folder: ASIDE, timeoutMs: 15_000 });
    const r = (await (await t.api('/messages?channel=mss&status=rejected&limit=50')).json()) as {
      messages: JournalEntry[];
    };
    expect(
      r.messages.some((m) => m.messageType === 'MAIL' && /delivery-status/i.test(m.events.at(-1)?.detail ?? '')),
    ).toBe(true);
    // Still watching: a real DSN afterwards is used.
    const { controlId } = await send(MDM_INIT, (m) => flag(m, 'ACK_RECEPTION', 'Y'));
    expect((await zams(controlId, 'Z02'))[0]!.get('OBX-5.1')).toBe('Y');
  });
});

/** An MDN as a recipient's mail software writes it (RFC 8098). */
function mdn(from: string, to: string, originalMessageId: string, type: 'displayed' | 'deleted'): string {
  return [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: Accusé de lecture`,
    `Message-ID: <mdn-${Date.now()}@test-ci-sis.mssante.fr>`,
    `MIME-Version: 1.0`,
    `Content-Type: multipart/report; report-type=disposition-notification; boundary="mdn1"`,
    ``,
    `--mdn1`,
    `Content-Type: text/plain; charset=utf-8`,
    ``,
    `Le message a été affiché.`,
    `--mdn1`,
    `Content-Type: message/disposition-notification`,
    ``,
    `Reporting-UA: test-mua; 1.0`,
    `Original-Recipient: rfc822;${from}`,
    `Final-Recipient: rfc822;${from}`,
    `Original-Message-ID: ${originalMessageId}`,
    `Disposition: manual-action/MDN-sent-manually; ${type}`,
    `--mdn1--`,
    ``,
  ].join('\r\n');
}
