import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { readCdaHeader } from '../../src/cda/header.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import { buildXdm } from '../../src/xdm/build.js';
import { readHeaders } from '../../src/mail/reports.js';
import { ConsommateurSimulator } from '../../src/sim/consommateur.js';
import type { DocumentEntry, SubmissionSet } from '../../src/xds/model.js';
import { EXAMPLES, startTestEngine, waitFor, type TestEngine } from '../helpers/engine.js';
import { PASSWORD, sendRaw, waitForMail } from '../helpers/mail.js';

const LPS = join(EXAMPLES, 'Vague 2/Trans_LPS_CDA_MSSanté/TRANSMISSION_LPS_DOC_CDA_COURRIEL_FROM_MSSANTE_V1.1');
const V1 = readFileSync(join(LPS, 'Transmission initiale MDM/CR_Radio_CDAN1_v1.XML'));
const V2 = readFileSync(join(LPS, 'Remplacement MDM/CR_Radio_CDAN1_v2.XML'));
// The application mailbox of this test's engine (its own: the engine takes every mail there).
const BAL = 'bal-flowb@hopital.test';
const BAL2 = 'bal-flowb2@hopital.test';
const SENDER = 'thomas.eric@medecin.mssante.fr';
const MANUAL = 'manual@hopital.test';

let dpi: ConsommateurSimulator;
let t: TestEngine;

beforeAll(async () => {
  const mail = inject('mail');
  const rt = readCdaHeader(V1).recordTarget;
  dpi = await ConsommateurSimulator.start({
    patients: [
      {
        ins: rt.ins!,
        birthName: rt.birthName!,
        givenNames: rt.givenNames.join(' '),
        birthDate: rt.birthDate!,
        sex: rt.sex as 'F',
        birthPlaceCode: rt.birthPlaceCode!,
      },
    ],
  });
  t = await startTestEngine({
    lps: `id: lps
flow: lps
source:
  type: imap
  host: 127.0.0.1
  port: ${mail.imap.port}
  secure: false
  auth: { user: ${BAL}, password: ${PASSWORD} }
  accounts: [{ user: ${BAL2}, password: ${PASSWORD} }]
  pollSeconds: 2
destinations:
  - { id: dpi, type: mllp, host: 127.0.0.1, port: ${dpi.port}, ackTimeoutSeconds: 60 }
intake:
  smtp: { host: 127.0.0.1, port: 25 }
  manualMailbox: ${MANUAL}
  parties:
    sendingApplication: PFI-Y
    sendingFacility: Organisation-Y
    receivingApplication: DPI-Y
    receivingFacility: Organisation-Y
processing: { concurrency: 1, attempts: 3, backoffSeconds: 0.5 }
`,
  });
});

afterAll(async () => {
  await t?.stop();
  await dpi?.stop();
});

/** The XDS metadata another PFI would write for a CDA (enough for an XDM archive). */
function xdmOf(cda: Buffer, action?: 'C' | 'D'): Buffer {
  const h = readCdaHeader(cda);
  const first = h.recordTarget.ids[0]!;
  const ins = h.recordTarget.ins;
  const patientId = ins
    ? { id: ins.matricule, authority: ins.oid, type: 'NH' }
    : { id: first.extension ?? '', authority: first.root, type: 'PI' };
  const code = (c: string, s: string, d: string) => ({ code: c, scheme: s, display: d });
  const entry: DocumentEntry = {
    entryUUID: `urn:uuid:${randomUUID()}`,
    uniqueId: h.id.extension ? `${h.id.root}^${h.id.extension}` : h.id.root,
    mimeType: 'text/xml',
    title: h.title ?? 'Document',
    typeCode: code(h.code.code!, h.code.codeSystem!, h.code.displayName!),
    classCode: code('10', '1.2.250.1.213.1.1.4.1', 'Compte rendu'),
    formatCode: code(
      'urn:ihe:iti:xds-sd:pdf:2008',
      '1.3.6.1.4.1.19376.1.2.3',
      'Document à corps non structuré en Pdf/A-1',
    ),
    confidentialityCodes: [code('N', '2.16.840.1.113883.5.25', 'Normal')],
    healthcareFacilityTypeCode: code('SA01', '1.2.250.1.71.4.2.4', 'Etablissement public de santé'),
    practiceSettingCode: code('ETABLISSEMENT', '1.2.250.1.213.1.1.4.9', 'Etablissement de santé'),
    languageCode: 'fr-FR',
    creationTime: '20050411093328',
    patientId,
    sourcePatientId: patientId,
    sourcePatientInfo: [],
    authors: [],
    eventCodes: [],
    referenceIds: [],
    hash: createHash('sha1').update(cda).digest('hex'),
    size: cda.length,
  };
  const set: SubmissionSet = {
    entryUUID: `urn:uuid:${randomUUID()}`,
    uniqueId: `1.2.250.1.999.1.${Date.now()}`,
    sourceId: '1.2.250.1.999.1',
    submissionTime: '20261122000000',
    contentTypeCode: code('04', '1.2.250.1.213.1.1.4.12', 'Hospitalisation'),
    patientId,
    author: {
      institutions: [{ name: 'Hôpital B' }],
      roles: [],
      specialties: [],
      person: { id: '801234564895', family: 'Eric', given: 'Thomas' },
    },
  };
  return buildXdm(set, [{ entry, bytes: cda }], {
    sender: SENDER,
    softwareName: 'test-sender',
    ...(action ? { action } : {}),
  });
}

/** A mail about the sent one (In-Reply-To / Original-Message-ID) whose decoded subject holds `code`. */
const answerTo = (tag: string, code: string) => (s: string) =>
  s.includes(`${tag}@medecin.mssante.fr`) && !!readHeaders(Buffer.from(s, 'latin1')).get('subject')?.includes(code);

let seq = 0;
/** A professional's mail software sends the XDM to the hospital's application mailbox. */
async function mail(zip: Buffer | undefined, opts: { mdn?: boolean; to?: string } = {}): Promise<string> {
  const tag = `flowb-${++seq}-${Date.now()}`;
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: 25, secure: false, ignoreTLS: true });
  try {
    await transport.sendMail({
      from: SENDER,
      to: opts.to ?? BAL,
      subject: 'XDM/1.0/DDM+CR d’imagerie médicale PAT-TROIS DOMINIQUE 28/03/1979',
      text: `Corps du courriel ${tag}`,
      messageId: `<${tag}@medecin.mssante.fr>`,
      ...((opts.mdn ?? true) ? { headers: { 'Disposition-Notification-To': SENDER } } : {}),
      attachments: zip ? [{ filename: 'IHE_XDM.ZIP', content: zip, contentType: 'application/zip' }] : [],
    });
  } finally {
    transport.close();
  }
  return tag;
}

/** What the DPI received for a mail's journal entry (the MDM's MSH-10 is the entry's id), in order. */
const receivedFor = (id: string) => dpi.received().filter((r) => r.controlId === id);

async function entryOf(tag: string, statuses = ['processed', 'dead-lettered']): Promise<JournalEntry> {
  return waitFor(
    async () => {
      const r = (await (
        await t.api(`/messages?controlId=${encodeURIComponent(`<${tag}@medecin.mssante.fr>`)}`)
      ).json()) as { messages: JournalEntry[] };
      const e = r.messages[0];
      return e && statuses.includes(e.status) ? e : undefined;
    },
    45_000,
    `the mail ${tag} processed`,
  );
}

describe('documents received by MSSanté reach the DPI (ANS LPS examples)', () => {
  test('T02, T10, T04 to the CONSOMMATEUR as in the example (PID, TXA, CDA bytes); MDN processed', async () => {
    const example = (f: string) => Hl7Message.parse(readFileSync(join(LPS, f)));
    const steps: [Buffer, 'C' | 'D' | undefined, string, string][] = [
      [V1, undefined, 'T02', 'Transmission initiale MDM/message_MDM__LPS_MSS_CR_Radio_INIT_N1_Base64.er7'],
      [V2, 'C', 'T10', 'Remplacement MDM/message_MDM__LPS_MSS_CR_Radio_RPLC_N1.er7'],
      [V2, 'D', 'T04', 'Suppression MDM/message_MDM__LPS_MSS_CR_Radio_DEL_N1.er7'],
    ];
    for (const [cda, action, event, file] of steps) {
      const tag = await mail(xdmOf(cda, action));
      const e = await entryOf(tag);
      expect(e.status, JSON.stringify(e.events.at(-1))).toBe('processed');
      const got = receivedFor(e.id).at(-1)!;
      expect([got.event, got.ack]).toEqual([event, 'AA']);
      const sent = Hl7Message.parse(got.raw);
      const ans = example(file);
      for (const path of [
        'MSH-9',
        'PID-3[1].1',
        'PID-3[1].4.2',
        'PID-5.1',
        'PID-5.2',
        'PID-7',
        'PID-8',
        'TXA-12.1',
        'TXA-13.1',
        'ORC-1',
      ]) {
        expect(sent.get(path) ?? '', path).toBe(ans.get(path) ?? '');
      }
      expect(sent.get('PID-11[1].9'), 'birthplace').toBe(ans.get('PID-11[2].9'));
      expect(Buffer.from(sent.get('OBX-5.5')!, 'base64').equals(cda)).toBe(true);
      const [mdn] = await waitForMail(
        SENDER,
        (s) => s.includes(`${tag}@medecin.mssante.fr`) && /disposition-notification/i.test(s),
      );
      expect(mdn!.toString('latin1')).toMatch(/Disposition: automatic-action\/MDN-sent-automatically; processed\r?\n/);
      expect(readHeaders(mdn!).get('return-path')).toBe('<>'); // null return path (RFC 8098)
    }
    expect(dpi.documents().map((d) => d.status)).toEqual(['replaced', 'deleted']);
  });

  test('a second application mailbox of the channel: watched too, answered from that mailbox', async () => {
    const tag = await mail(xdmOf(Buffer.from(V1.toString('utf8').replace('71024000081', '71024000501'), 'utf8')), {
      to: BAL2,
    });
    expect((await entryOf(tag)).status).toBe('processed');
    const [mdn] = await waitForMail(
      SENDER,
      (s) => s.includes(`${tag}@medecin.mssante.fr`) && /disposition-notification/i.test(s),
    );
    expect(readHeaders(mdn!).get('from')).toBe(BAL2);
  });

  test('traceability: a mail found by Message-ID, sender, patient and document id, every step', async () => {
    const tag = await mail(xdmOf(Buffer.from(V1.toString('utf8').replace('71024000081', '71024000095'), 'utf8')));
    const e = await entryOf(tag);
    const find = async (q: string) =>
      (
        (await (await t.api(`/messages?${q}&channel=lps&limit=500`)).json()) as { messages: JournalEntry[] }
      ).messages.map((m) => m.id);
    expect(await find(`controlId=${encodeURIComponent(`<${tag}@medecin.mssante.fr>`)}`)).toEqual([e.id]);
    expect(await find(`sender=${SENDER}`)).toContain(e.id);
    expect(await find('patientId=279035121518989')).toContain(e.id);
    expect(await find('documentId=1.2.250.1.71.4.2.2.120456789.71024000095')).toContain(e.id);
    const steps = e.events.map((x) => `${x.status}${x.destination ? ` ${x.destination}` : ''}`);
    expect(steps, steps.join(', ')).toEqual(
      expect.arrayContaining(['received', 'queued', 'processing', 'delivered dpi', 'delivered mdn', 'processed']),
    );
  });
});

describe('the DPI refuses: the sender and the manual mailbox are told', () => {
  test('identity mismatch: MDN [KO Intégration système !][904], attachments, a copy for manual handling', async () => {
    const changed = Buffer.from(
      V1.toString('utf8').replace('19790328', '19790329').replace('71024000081', '71024000091'),
      'utf8',
    );
    const tag = await mail(xdmOf(changed));
    const e = await entryOf(tag);
    expect(e.status).toBe('dead-lettered');
    expect(
      e.events.some((x) => x.destination === 'dpi' && x.status === 'rejected' && x.error?.code === '904'),
      JSON.stringify(e.events),
    ).toBe(true);
    const [mdn] = await waitForMail(
      SENDER,
      (s) => s.includes(`${tag}@medecin.mssante.fr`) && /disposition-notification/i.test(s),
    );
    const h = readHeaders(mdn!);
    expect(h.get('subject')).toMatch(/^\[KO Intégration système !\]\[904\] XDM\/1\.0\/DDM\+/);
    const text = mdn!.toString('latin1');
    expect(text).toMatch(/Disposition: automatic-action\/MDN-sent-automatically; processed\/Error: 904\^/);
    expect(text).toContain(`Original-Message-ID: <${tag}@medecin.mssante.fr>`);
    expect(text).toContain('filename="IHE_XDM.ZIP"');
    await waitForMail(MANUAL, answerTo(tag, '[904]'));
  });

  test('no MDN asked: a plain notification with the code, and the XDM attached', async () => {
    const other = Buffer.from(
      V1.toString('utf8')
        .replace(/279035121518989/g, '277076322082910')
        .replace('71024000081', '71024000092'),
      'utf8',
    );
    const tag = await mail(xdmOf(other), { mdn: false });
    await entryOf(tag);
    const [n] = await waitForMail(SENDER, answerTo(tag, '[902]'));
    expect(n!.toString('latin1')).not.toMatch(/disposition-notification/i);
    expect(n!.toString('latin1')).toContain('filename="IHE_XDM.ZIP"');
    // The original mail itself, as struct-email-standard.md shows it.
    expect(n!.toString('latin1')).toMatch(
      /Content-Type: message\/rfc822\r\nContent-Transfer-Encoding: 8bit\r\nContent-Disposition: attachment; filename="message_original.eml"/,
    );
    expect(n!.toString('latin1')).toContain(`Message-ID: <${tag}@medecin.mssante.fr>`);
  });
});

describe('the DPI’s other refusals reach the sender with their code', () => {
  const variants: [string, string, (cda: string) => string][] = [
    ['903', 'no INS in the document', (c) => c.replace('root="1.2.250.1.213.1.4.10"', 'root="1.2.250.1.999.1.1"')],
    ['905', 'incomplete INS (wrong key)', (c) => c.replace(/279035121518989/g, '279035121518988')],
  ];
  for (const [code, what, change] of variants) {
    test(`${code}: ${what}`, async () => {
      const cda = Buffer.from(change(V1.toString('utf8')).replace('71024000081', `710240001${code}`), 'utf8');
      const tag = await mail(xdmOf(cda));
      const e = await entryOf(tag);
      expect(e.events.find((x) => x.destination === 'dpi')?.error?.code, JSON.stringify(e.events.at(-1))).toBe(code);
      await waitForMail(SENDER, answerTo(tag, `[${code}]`));
      await waitForMail(MANUAL, answerTo(tag, `[${code}]`));
    });
  }

  test('900: a replacement of a version that is no longer the current one', async () => {
    const v1 = Buffer.from(V1.toString('utf8').replace(/71024000081/g, '71024000301'), 'utf8');
    const v2 = Buffer.from(
      V2.toString('utf8')
        .replace(/71024000081/g, '71024000301')
        .replace(/71024000082/g, '71024000302'),
      'utf8',
    );
    await entryOf(await mail(xdmOf(v1)));
    await entryOf(await mail(xdmOf(v2, 'C')));
    // The same replacement again: its parent is not current any more.
    const again = Buffer.from(v2.toString('utf8').replace(/71024000302/g, '71024000303'), 'utf8');
    const tag = await mail(xdmOf(again, 'C'));
    const e = await entryOf(tag);
    expect(e.events.find((x) => x.destination === 'dpi')?.error?.code).toBe('900');
    await waitForMail(SENDER, answerTo(tag, '[900]'));
  });

  test('a DPI that never answers (its connection drops): retried, then parked, a person told', async () => {
    dpi.setAnswer('silent');
    try {
      const tag = await mail(xdmOf(Buffer.from(V1.toString('utf8').replace('71024000081', '71024000401'), 'utf8')));
      const { id } = await entryOf(tag, ['received', 'queued', 'acknowledged', 'processing', 'failed']);
      // Each attempt reaches the DPI, which holds it unanswered until it drops the connection: no timer involved.
      for (let attempt = 1; attempt <= 3; attempt++) {
        await waitFor(async () => receivedFor(id).length >= attempt, 30_000, `attempt ${attempt} at the DPI`);
        dpi.dropHeld();
      }
      const e = await entryOf(tag, ['dead-lettered']);
      expect(e.events.filter((x) => x.status === 'failed').length).toBe(2);
      expect(receivedFor(id)).toHaveLength(3);
      await waitForMail(MANUAL, answerTo(tag, 'MANUEL'));
    } finally {
      dpi.setAnswer('normal');
    }
  }, 120_000);
});

describe('bad mails: journaled with a precise reason, a notification, the watcher goes on', () => {
  test('a corrupted zip', async () => {
    const zip = xdmOf(V1);
    const tag = await mail(zip.subarray(0, zip.length - 100));
    const e = await entryOf(tag);
    expect(e.status).toBe('dead-lettered');
    expect(e.events.find((x) => x.status === 'dead-lettered')!.error!.message).toMatch(/^\[XDM-not-zip\]/);
    await waitForMail(SENDER, answerTo(tag, '[906]'));
  });

  test('a zip bomb, `../` paths, a missing document, a wrong hash: each refused, the sender told', async () => {
    const ok = unzipSync(new Uint8Array(xdmOf(V1)));
    const meta = Buffer.from(ok['IHE_XDM/SUBSET01/METADATA.XML']!).toString('utf8');
    const cases: [string, Record<string, Uint8Array>][] = [
      ['zip-bomb', { ...ok, 'IHE_XDM/SUBSET01/PADDING.BIN': new Uint8Array(260 * 1024 * 1024) }],
      ['path-traversal', { ...ok, '../../etc/passwd': new Uint8Array([1]) }],
      ['missing-document', { 'IHE_XDM/SUBSET01/METADATA.XML': ok['IHE_XDM/SUBSET01/METADATA.XML']! }],
      [
        'hash-mismatch',
        {
          ...ok,
          'IHE_XDM/SUBSET01/METADATA.XML': Buffer.from(
            meta.replace(createHash('sha1').update(V1).digest('hex'), '0'.repeat(40)),
          ),
        },
      ],
    ];
    for (const [reason, files] of cases) {
      const tag = await mail(Buffer.from(zipSync(files, { level: 9 })));
      const e = await entryOf(tag);
      expect(e.status, reason).toBe('dead-lettered');
      expect(e.events.find((x) => x.status === 'dead-lettered')!.error!.message).toMatch(
        new RegExp(`^\\[XDM-${reason}\\]`),
      );
      await waitForMail(SENDER, answerTo(tag, '[906]'));
      expect(receivedFor(e.id), reason).toHaveLength(0); // it never reached the DPI
    }
  });

  test('a 30 MiB document goes through, byte for byte', async () => {
    // Like a scanned PDF: 30 MiB that do not compress (a zip of repeated bytes would rightly be taken for a bomb).
    const filler = randomBytes(Math.floor((30 * 1024 * 1024 * 3) / 4)).toString('base64');
    const big = Buffer.from(
      V1.toString('utf8')
        .replace('71024000081', '71024000093')
        .replace('</ClinicalDocument>', `<!-- ${filler} --></ClinicalDocument>`),
      'utf8',
    );
    const tag = await mail(xdmOf(big), { mdn: false });
    const e = await entryOf(tag);
    expect(e.status, JSON.stringify(e.events.at(-1))).toBe('processed');
    const got = receivedFor(e.id);
    expect(got.map((r) => r.ack)).toEqual(['AA']);
    expect(Buffer.from(Hl7Message.parse(got[0]!.raw).get('OBX-5.5')!, 'base64').equals(big)).toBe(true);
  }, 120_000);

  test('a mail whose MIME structure is broken is dead-lettered at once with the reason', async () => {
    const tag = `flowb-mime-${Date.now()}`;
    const raw = [
      `From: ${SENDER}`,
      `To: ${BAL}`,
      `Subject: XDM/1.0/DDM+cassé`,
      `Message-ID: <${tag}@medecin.mssante.fr>`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: application/zip; name="IHE_XDM.ZIP"',
      'Content-Transfer-Encoding: base64',
      '',
      '!!!not base64!!!',
      '--b--',
      '',
    ].join('\r\n');
    await sendRaw(SENDER, [BAL], raw);
    const e = await entryOf(tag);
    expect(e.status).toBe('dead-lettered');
    expect(e.events.filter((x) => x.status === 'processing')).toHaveLength(1);
    expect(e.events.find((x) => x.status === 'dead-lettered')!.error!.message).toMatch(
      /^\[MAIL-mime\] .*invalid base64/,
    );
  });

  test('a mail without XDM is forwarded to the manual mailbox, never dropped', async () => {
    const tag = await mail(undefined);
    const e = await entryOf(tag);
    expect(e.events.some((x) => x.destination === 'manual')).toBe(true);
    await waitForMail(MANUAL, (s) => s.includes(`${tag}@medecin.mssante.fr`));
  });
});
