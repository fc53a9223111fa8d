import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { DmpStatus } from '../../src/dmp/delivery.js';
import type { Submission } from '../../src/request/submission.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import { DmpSimulator, type SimDocument } from '../../src/sim/dmp.js';
import { ManualClock } from '../../src/util/clock.js';
import { Terminology } from '../../src/xds/terminology.js';
import {
  EXAMPLES,
  ROOT,
  startTestEngine,
  transmissionChannelYaml,
  waitFor,
  type TestEngine,
} from '../helpers/engine.js';
import { Peer } from '../helpers/peer.js';
import { sendFile } from '../helpers/send.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

const V20 = join(EXAMPLES, 'Volets/TRANS_DOC_CDA_HL7V2/V2.0');
const VAGUE2 = join(EXAMPLES, 'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1');
const CONSENT = join(EXAMPLES, 'Vague 2/Consentement_DMP_PAMFR');
const MDM = {
  init: join(VAGUE2, 'MDM/Transmission initiale MDM/message_MDM_CR_Radio_INIT_N1_Base64.er7'),
  rplc: join(VAGUE2, 'MDM/Remplacement MDM/message_MDM_CR_Radio_RPLC_N1.er7'),
  del: join(VAGUE2, 'MDM/Suppression MDM/message_MDM_CR_Radio_DEL_N1.er7'),
};
const INS = '279035121518989';

let pki: TestPki;
let sim: DmpSimulator;
let createur: Peer;
let t: TestEngine;
/** The engine's clock: the deferral tests move it by hand instead of waiting for the delay. */
const clock = new ManualClock();
const DELAY_S = 3600;
const work = mkdtempSync(join(tmpdir(), 'pfi-dmp-'));

function channel(id: string, dmp: string): string {
  return transmissionChannelYaml(
    id,
    createur.port,
    `processing: { concurrency: 2, attempts: 3, backoffSeconds: 0.2 }
dmp:
  url: ${sim.url}
  tls: { cert: ${pki.files['client.crt']}, key: ${pki.files['client.key']}, ca: ${pki.files['ca.crt']} }
  seal: { cert: ${pki.files['client.crt']}, key: ${pki.files['client.key']} }
  sector: SA01^1.2.250.1.71.4.2.4
  lps: { homologation: TEST-HOMOLOGATION }
  timeoutSeconds: 3
  ${dmp.trim().split('\n').join('\n  ')}`,
  );
}

beforeAll(async () => {
  pki = makeTestPki();
  const terminology = Terminology.load(join(ROOT, 'mappings/terminology.json'));
  sim = await DmpSimulator.start({
    tls: { cert: pki.pem['server.crt'], key: pki.pem['server.key'], ca: pki.pem['ca.crt'] },
    sealCertificates: [pki.pem['client.crt']],
    valueSets: { typeCodes: new Set((terminology.data.valueSets.J66 ?? []).map((c) => `${c.code}|${c.system}`)) },
  });
  createur = await new Peer().start();
  t = await startTestEngine(
    {
      dmp: channel('dmp', 'attempts: 4\nbackoffSeconds: 0.3'),
      deferred: channel('deferred', `delaySeconds: ${DELAY_S}\nattempts: 2\nbackoffSeconds: 0.3`),
      pam: `id: pam
flow: pam
source:
  type: mllp
  host: 127.0.0.1
  port: 0
  unknownEvents: ignore
  accept:
    - { type: ADT, events: [A01, A04, A08, A28, A31], versions: ["2.5"] }
processing: { concurrency: 1 }
`,
    },
    { clock },
  );
});

afterAll(async () => {
  await t?.stop();
  await sim?.stop();
  await createur?.server.close();
});

beforeEach(() => sim.reset());

let seq = 0;
/**
 * An ANS example as a CREATEUR would send it for the DMP: a control id of its own, ACK_RECEPTION=Y,
 * and, unless told otherwise, a qualified identity (the examples declare PID-32 VALI, which the DMP
 * refuses). Written to a file and sent with python-hl7.
 */
async function send(
  file: string,
  edit: (m: Hl7Message) => void = () => {},
  opts: { qualified?: boolean; port?: string } = {},
) {
  const msg = Hl7Message.parse(readFileSync(file));
  const controlId = `DMP-${++seq}-${Date.now()}`;
  msg.set('MSH-10', controlId);
  if (opts.qualified ?? true) msg.set('PID-32', 'QUAL');
  msg.segmentsNamed('OBX').forEach((_, i) => {
    if (msg.get(`OBX[${i + 1}]-3.1`) === 'ACK_RECEPTION') msg.set(`OBX[${i + 1}]-5.1`, 'Y');
  });
  edit(msg);
  const out = join(work, `${controlId}.hl7`);
  const bytes = msg.toBuffer();
  writeFileSync(out, bytes);
  const ack = await sendFile(out, bytes, t.port(opts.port ?? 'dmp'));
  expect(ack).toMatch(new RegExp(`^MSA\\|AA\\|${controlId}$`, 'm'));
  const id = await waitFor(async () => {
    const r = (await (await t.api(`/messages?controlId=${controlId}`)).json()) as { messages: JournalEntry[] };
    return r.messages[0]?.id;
  });
  return { controlId, id };
}

/** The DMP state once final and told to the CREATEUR (every request here asks ACK_RECEPTION=Y). */
async function dmpState(
  id: string,
  until: (s: DmpStatus) => boolean = (s) => ['accepted', 'refused', 'dead-lettered'].includes(s.state) && !!s.zam,
): Promise<DmpStatus> {
  try {
    return await waitFor(
      async () => {
        const r = await t.api(`/submissions/${id}`);
        if (r.status !== 200) return undefined;
        const s = (await r.json()) as DmpStatus;
        return until(s) ? s : undefined;
      },
      20_000,
      `DMP state of ${id}`,
    );
  } catch (e) {
    // Say where the message stopped.
    const events = (await entry(id)).events.map(
      (x) => `${x.status} ${x.destination ?? ''} ${x.detail ?? ''} ${x.error?.message ?? ''}`,
    );
    throw new Error(`${(e as Error).message}; journal: ${events.join(' | ')}`, { cause: e });
  }
}

async function accepted(id: string): Promise<DmpStatus> {
  const s = await dmpState(id);
  expect(s.state, `${s.error?.code}: ${s.error?.text}`).toBe('accepted');
  return s;
}

async function zam(controlId: string): Promise<Hl7Message> {
  return waitFor(async () => createur.zams(controlId)[0], 10_000, `ZAM^Z01 about ${controlId}`);
}

async function entry(id: string): Promise<JournalEntry> {
  return (await (await t.api(`/messages/${id}`)).json()) as JournalEntry;
}

const byUniqueId = (uid: string): SimDocument | undefined => sim.documents().find((d) => d.uniqueId === uid);

/** The CDA as carried in OBX-5 (base64). */
function cdaOf(file: string, obx = 1): Buffer {
  return Buffer.from(Hl7Message.parse(readFileSync(file)).get(`OBX[${obx}]-5.5`)!, 'base64');
}

describe('ANS examples end to end: MLLP in, DMP simulator store, ZAM^Z01 to the CREATEUR', () => {
  test('MDM (Vague 2): T02 publishes, T10 replaces (previous deprecated), T04 deletes; one ZAM Y each', async () => {
    const init = await send(MDM.init);
    expect(await dmpState(init.id)).toMatchObject({ state: 'accepted', zam: 'AA' });
    const v1 = byUniqueId('1.2.250.1.71.4.2.2.120456789.71024000081')!;
    expect(v1).toMatchObject({ status: 'Approved', patientId: INS, typeCode: '18748-4', mimeType: 'text/xml' });
    expect(v1.content.equals(cdaOf(MDM.init))).toBe(true);
    let z = await zam(init.controlId);
    expect(z.get('MSH-9')).toBe('ZAM^Z01^ZAM_Z01');
    expect(z.get('OBX-3.1')).toBe('ACK_RECEPTION_DMP');
    expect(z.get('OBX-5.1')).toBe('Y');
    expect(z.segment('ERR')).toBeUndefined();

    const rplc = await send(MDM.rplc);
    await accepted(rplc.id);
    const v2 = byUniqueId('1.2.250.1.71.4.2.2.120456789.71024000082')!;
    expect(v2).toMatchObject({ status: 'Approved', replaces: v1.entryUUID });
    expect(byUniqueId(v1.uniqueId)).toMatchObject({ status: 'Deprecated', replacedBy: v2.entryUUID });
    z = await zam(rplc.controlId);
    expect(z.get('OBX-5.1')).toBe('Y');

    const del = await send(MDM.del);
    await accepted(del.id);
    expect(byUniqueId(v2.uniqueId)!.status).toBe('Deleted');
    expect(byUniqueId(v1.uniqueId)!.status).toBe('Deprecated');
    expect((await zam(del.controlId)).get('OBX-5.1')).toBe('Y');
    // One document per version, never twice; the journal says it reached the DMP.
    expect(sim.documents()).toHaveLength(2);
    expect((await entry(del.id)).events.some((e) => e.destination === 'dmp' && e.status === 'delivered')).toBe(true);
  });

  test(
    'MDM (V2.0, ids as root^extension): ' +
      'the placeholder replacement and deletion with the CDA published beside them',
    async () => {
      const dir = join(V20, 'MDM');
      const withCda = (cda: string) => (m: Hl7Message) => {
        m.set('OBX-5.4', 'Base64');
        m.set('OBX-5.5', readFileSync(join(dir, cda)).toString('base64'));
      };
      const init = await send(join(dir, 'Transmission initiale MDM/message_MDM_CR_Radio_INIT_N1_Base64.er7'));
      await accepted(init.id);
      const v1 = byUniqueId('1.2.250.1.71.4.2.2.120456789^A71024000081')!;
      expect(v1).toMatchObject({ status: 'Approved', patientId: '274075176079430' });
      const rplc = await send(
        join(dir, 'Remplacement MDM/message_MDM_CR_Radio_RPLC_N1.er7'),
        withCda('Remplacement MDM/CR_Radio_CDAN1_v2.XML'),
      );
      await accepted(rplc.id);
      expect(byUniqueId('1.2.250.1.71.4.2.2.120456789^A71024000082')).toMatchObject({
        status: 'Approved',
        replaces: v1.entryUUID,
      });
      const del = await send(
        join(dir, 'Suppression MDM/message_MDM_CR_Radio_DEL_N1.er7'),
        withCda('Suppression MDM/CR_Radio_CDAN1_v2.XML'),
      );
      await accepted(del.id);
      expect(sim.documents().map((d) => [d.uniqueId.split('^')[1], d.status])).toEqual([
        ['A71024000081', 'Deprecated'],
        ['A71024000082', 'Deleted'],
      ]);
    },
  );

  test('ORU (Vague 2, Ségur N3): initial then replacement named by the CDA’s relatedDocument', async () => {
    // The replacement's CDA names 1.2.250.1.213.1.1.12, the CDA published beside the initial
    // message (the message itself embeds another version, 1.9): that one is put in OBX-5.
    const dir = join(VAGUE2, 'ORU/Transmission initiale ORU');
    const init = await send(join(dir, 'message_ORU_CR_Bio_INIT_N3_SEGUR.hl7'), (m) =>
      m.set('OBX[1]-5.5', readFileSync(join(dir, 'SEGUR_CR-BIO_2023.01_Electrophorese.xml')).toString('base64')),
    );
    await accepted(init.id);
    const v1 = byUniqueId('1.2.250.1.213.1.1.12')!;
    expect(v1).toMatchObject({ status: 'Approved', typeCode: '11502-2' });
    const rplc = await send(join(VAGUE2, 'ORU/Remplacement ORU/message_ORU_CR_Bio_RPLC_N3_SEGUR.hl7'));
    await accepted(rplc.id);
    const v2 = byUniqueId('1.2.250.1.213.1.1.13')!;
    expect(v2.replaces).toBe(v1.entryUUID);
    expect(byUniqueId(v1.uniqueId)!.status).toBe('Deprecated');
    expect((await zam(rplc.controlId)).get('OBX-5.1')).toBe('Y');
  });

  test(
    'ORU (V2.0, N1 + N3 of one result): ' + 'each format replaced by its new version, then both deleted in one request',
    async () => {
      // The V2.0 initial example carries placeholders: the two CDAs beside it are put back in OBX-5.
      const dir = join(V20, 'ORU/Transmission initiale ORU');
      const init = await send(join(dir, 'message_ORU_CR_Bio_INIT_N1_N3.hl7'), (m) => {
        m.set('OBX[1]-5.5', readFileSync(join(dir, 'CR_Bio_CDA_Niv1_v1.XML')).toString('base64'));
        m.set('OBX[2]-5.5', readFileSync(join(dir, 'CR_Bio_CDA_Niv3_v1.XML')).toString('base64'));
      });
      await accepted(init.id);
      expect(
        sim
          .documents()
          .map((d) => d.uniqueId)
          .sort(),
      ).toEqual(['1.2.250.1.213.1.1.10', '1.2.250.1.213.1.1.9']);
      // As published, the replacement's N3 does not say which document it replaces (no relatedDocument):
      // refused before any call, nothing changes in the DMP.
      const file = join(V20, 'ORU/Remplacement ORU/message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7');
      const asIs = await send(file);
      expect(await dmpState(asIs.id)).toMatchObject({ state: 'refused', error: { code: 'DMP-replaced-document' } });
      expect(sim.documents().every((d) => d.status === 'Approved')).toBe(true);
      // The CDAs published beside it carry their relatedDocument: with them, each format replaces its own.
      const beside = join(V20, 'ORU/Remplacement ORU');
      const rplc = await send(file, (m) => {
        m.set('OBX[1]-5.5', readFileSync(join(beside, 'CR_Bio_CDA_Niv1_v2.XML')).toString('base64'));
        m.set('OBX[2]-5.5', readFileSync(join(beside, 'CR_Bio_CDA_Niv3_v2.XML')).toString('base64'));
      });
      await accepted(rplc.id);
      const n1 = byUniqueId('1.2.250.1.213.1.1.12')!;
      const n3 = byUniqueId('1.2.250.1.213.1.1.11')!;
      expect(n1.replaces).toBe(byUniqueId('1.2.250.1.213.1.1.10')!.entryUUID);
      expect(n3.replaces).toBe(byUniqueId('1.2.250.1.213.1.1.9')!.entryUUID);
      const del = await send(join(V20, 'ORU/Suppression ORU/message_ORU_CR_Bio_DEL_N1_Base64_N3_Base64.er7'));
      await accepted(del.id);
      expect([n1, n3].map((d) => byUniqueId(d.uniqueId)!.status)).toEqual(['Deleted', 'Deleted']);
      expect(sim.requests().filter((r) => r.action.endsWith('UpdateDocumentSet'))).toHaveLength(1);
    },
  );

  test('a replacement of a document the engine never sent is found in the DMP (ITI-18), then replaced', async () => {
    // The initial version went to the DMP through another channel (the deferred one, standing in
    // for "before the engine"): this channel has no record of it.
    const init = await send(MDM.init, undefined, { port: 'deferred' });
    await dmpState(init.id, (x) => x.state === 'scheduled');
    await clock.advance(DELAY_S * 1000);
    await accepted(init.id);
    const rplc = await send(MDM.rplc);
    await accepted(rplc.id);
    expect(sim.requests().some((r) => r.action.endsWith('RegistryStoredQuery'))).toBe(true);
    expect(byUniqueId('1.2.250.1.71.4.2.2.120456789.71024000081')!.status).toBe('Deprecated');
  });
});

describe('gates: nothing reaches the DMP, the CREATEUR hears why, the journal keeps it', () => {
  async function refused(id: string, controlId: string, rule: string) {
    const s = await dmpState(id);
    expect(s).toMatchObject({ state: 'refused', error: { code: rule, system: 'PFIERRORCODE' } });
    const z = await zam(controlId);
    expect(z.get('OBX-5.1')).toBe('N');
    expect(z.get('ERR-5.1')).toBe(rule);
    expect(z.get('ERR-5.3')).toBe('PFIERRORCODE');
    const e = await entry(id);
    expect(e.events.find((x) => x.destination === 'dmp' && x.status === 'rejected')?.error?.code).toBe(rule);
    return e;
  }

  test('identity not qualified (the example as published, PID-32 VALI)', async () => {
    const m = await send(MDM.init, undefined, { qualified: false });
    await refused(m.id, m.controlId, 'DMP-INS-qualified');
    expect(sim.requests()).toHaveLength(0);
    // The request itself was processed: its MSSanté route (DESTMSSANTEPS=Y) is intact.
    const sub = (await (await t.api(`/messages/${m.id}/submission`)).json()) as Submission;
    expect(sub.routes.mssantePS?.recipients).toEqual(['adam.hoda@test-ci-sis.mssante.fr']);
  });

  test('document type outside JDV_J66 (a CR de consultation is not in the DMP’s list)', async () => {
    const terminology = Terminology.load(join(ROOT, 'mappings/terminology.json'));
    const outside = terminology.data.valueSets.J07!.find(
      (c) =>
        c.system === '2.16.840.1.113883.6.1' &&
        !terminology.inValueSet('J66', c.code, c.system) &&
        terminology.classCodeFor(c.code, c.system),
    )!;
    expect(outside).toBeDefined();
    const m = await send(MDM.init, (msg) => {
      const cda = cdaOf(MDM.init)
        .toString('utf8')
        .replace(/(<code\s+code=")18748-4(")/, `$1${outside.code}$2`);
      msg.set('OBX-5.5', Buffer.from(cda).toString('base64'));
      msg.set('OBX-3.1', outside.code);
      msg.set('TXA-2', outside.code);
      msg.set('OBR-4.1', outside.code);
    });
    await refused(m.id, m.controlId, 'DMP-typeCode-J66');
    expect(sim.requests()).toHaveLength(0);
  });

  test('closed DMP: the DMP refuses, the CREATEUR gets its code (DMP_ERROR_CODE)', async () => {
    sim.setPatient(INS, 'closed');
    const m = await send(MDM.init);
    const s = await dmpState(m.id);
    expect(s).toMatchObject({ state: 'refused', error: { code: 'DMPClosed', system: 'DMP_ERROR_CODE' } });
    const z = await zam(m.controlId);
    expect([z.get('OBX-5.1'), z.get('ERR-5.1'), z.get('ERR-5.3')]).toEqual(['N', 'DMPClosed', 'DMP_ERROR_CODE']);
    expect(sim.requests()).toHaveLength(1);
    expect(sim.documents()).toHaveLength(0);
  });

  test('patient informed and opposed (PAM FR ZFA-9 = IO, ANS example): no DMP call', async () => {
    const adt = join(CONSENT, 'NonConsentementConsultation_OppositionAlimentation.er7');
    const raw = readFileSync(adt);
    expect(await sendFile(adt, raw, t.port('pam'))).toMatch(/^MSA\|AA\|/m);
    await waitFor(async () => (await t.api(`/patients?id=${INS}&authority=1.2.250.1.213.1.4.10`)).status === 200);
    try {
      const m = await send(MDM.init);
      await refused(m.id, m.controlId, 'DMP-patient-opposed');
      expect(sim.requests()).toHaveLength(0);
    } finally {
      // The patient changes their mind (ZFA-9 INO, a later event): later tests feed the DMP again.
      const later = Hl7Message.parse(
        readFileSync(join(CONSENT, 'ConsentementConsultation_NonOppositionAlimentation.er7')),
      );
      later.set('MSH-10', `INO-${Date.now()}`);
      const now = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
      later.set('EVN-2', now);
      later.set('EVN-6', now);
      later.set('ZFA-10', now);
      const f = join(work, 'ino.hl7');
      writeFileSync(f, later.toBuffer());
      expect(await sendFile(f, later.toBuffer(), t.port('pam'))).toMatch(/^MSA\|AA\|/m);
      await waitFor(async () => {
        const p = (await (await t.api(`/patients?id=${INS}&authority=1.2.250.1.213.1.4.10`)).json()) as {
          consent?: { feeding?: { value?: string } };
        };
        return p.consent?.feeding?.value === 'INO';
      });
    }
  });
});

describe('reliability', () => {
  test('the DMP fails with HTTP 500 twice, then recovers: delivered once, no duplicate', async () => {
    sim.failNext(2, 'http500');
    const m = await send(MDM.init);
    await accepted(m.id);
    expect(sim.documents()).toHaveLength(1);
    expect(sim.requests().filter((r) => r.status === 'HTTP')).toHaveLength(2);
    const e = await entry(m.id);
    expect(e.events.filter((x) => x.destination === 'dmp' && x.status === 'failed')).toHaveLength(2);
    expect(createur.zams(m.controlId)).toHaveLength(1);
  });

  test(
    'a DMP that stores the document but answers too late is asked ' + '(ITI-18) before sending again: stored once',
    async () => {
      sim.failNext(1, 'slow', { delayMs: 4000 });
      const m = await send(MDM.init);
      await accepted(m.id);
      expect(sim.documents()).toHaveLength(1);
      // The second attempt found it registered and did not send it again.
      expect(sim.requests().map((r) => r.action.split(':').pop())).toEqual([
        'ProvideAndRegisterDocumentSet-b',
        'RegistryStoredQuery',
      ]);
    },
  );

  test(
    'the DMP keeps failing: dead letter after the configured attempts, ' +
      'ZAM N, visible in /channels and the journal',
    async () => {
      sim.failNext(100, 'http500');
      const m = await send(MDM.init);
      const s = await dmpState(m.id);
      expect(s).toMatchObject({ state: 'dead-lettered', error: { code: 'DMP-unreachable', system: 'PFIERRORCODE' } });
      // Four attempts (the later ones first ask the DMP whether the earlier one went through), none stored.
      const events = (await entry(m.id)).events.filter((x) => x.destination === 'dmp');
      expect(events.filter((x) => x.status === 'failed')).toHaveLength(3);
      expect(sim.requests().filter((r) => r.status !== 'HTTP')).toEqual([]);
      expect(sim.documents()).toHaveLength(0);
      const z = await zam(m.controlId);
      expect([z.get('OBX-5.1'), z.get('ERR-5.1')]).toEqual(['N', 'DMP-unreachable']);
      expect((await entry(m.id)).status).toBe('dead-lettered');
      const channels = (await (await t.api('/channels')).json()) as {
        id: string;
        dmpQueue: Record<string, number>;
        counts: { dmp: Record<string, number> };
      }[];
      const c = channels.find((x) => x.id === 'dmp')!;
      expect(c.dmpQueue.failed).toBeGreaterThanOrEqual(1);
      expect(c.counts.dmp['dead-lettered']).toBeGreaterThanOrEqual(1);
      // The DMP is back: the operator sends it again; a new outcome, a new ZAM.
      sim.reset();
      const r = await t.api(`/submissions/${m.id}/retry`, { method: 'POST' });
      expect(r.status).toBe(200);
      await accepted(m.id);
      expect(sim.documents()).toHaveLength(1);
      expect(createur.zams(m.controlId).map((x) => x.get('OBX-5.1'))).toEqual(['N', 'Y']);
      expect((await t.api(`/submissions/${m.id}/retry`, { method: 'POST' })).status).toBe(409);
    },
  );
});

describe('ordering and business acknowledgements', () => {
  test('a replacement sent while its initial version is still being retried waits for it', async () => {
    sim.failNext(2, 'http500');
    const init = await send(MDM.init);
    const rplc = await send(MDM.rplc);
    await accepted(init.id);
    await accepted(rplc.id);
    const sent = sim
      .requests()
      .filter((r) => r.status === 'Success' && r.action.endsWith('ProvideAndRegisterDocumentSet-b'));
    expect(sent).toHaveLength(2);
    const v1 = byUniqueId('1.2.250.1.71.4.2.2.120456789.71024000081')!;
    expect(byUniqueId('1.2.250.1.71.4.2.2.120456789.71024000082')).toMatchObject({
      status: 'Approved',
      replaces: v1.entryUUID,
    });
    expect(v1.status).toBe('Deprecated');
    // While it waited, the journal said why.
    const waited = (await entry(rplc.id)).events.filter((x) => x.destination === 'dmp' && x.status === 'failed');
    expect(waited.length).toBeGreaterThanOrEqual(1);
    expect(waited[0]!.error!.message).toMatch(/waiting for document 1\.2\.250\.1\.71\.4\.2\.2\.120456789\.71024000081/);
  });

  test(
    'a CREATEUR refusing the ZAM gets it again ' + '(the DMP is not called twice), and the journal shows both',
    async () => {
      createur.answer = 'AE';
      try {
        const m = await send(MDM.init);
        await waitFor(
          async () =>
            (await entry(m.id)).events.some((x) => x.destination === 'business-acks' && x.status === 'failed'),
          10_000,
          'a failed ZAM',
        );
        createur.answer = 'AA';
        expect(await dmpState(m.id)).toMatchObject({ state: 'accepted', zam: 'AA' });
        expect(createur.zams(m.controlId).length).toBeGreaterThanOrEqual(2);
        expect(sim.requests()).toHaveLength(1);
      } finally {
        createur.answer = 'AA';
      }
    },
  );
});

describe('deferral (Ségur SC.DMP/ALI/PROG.02-03): an hour before sending, on the engine’s clock', () => {
  test('cancelled during the delay: nothing reaches the DMP, even once the delay is over', async () => {
    const m = await send(MDM.init, undefined, { port: 'deferred' });
    const s = await dmpState(m.id, (x) => x.state === 'scheduled');
    expect(new Date(s.sendAt!).getTime()).toBe(new Date(s.at).getTime() + DELAY_S * 1000);
    const r = await t.api(`/submissions/${m.id}/cancel`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(((await r.json()) as DmpStatus).state).toBe('cancelled');
    // Past the delay, a request sent after it is delivered: had the cancelled one been left in the
    // queue, it would have gone first.
    await clock.advance(DELAY_S * 1000);
    const later = await send(MDM.init, undefined, { port: 'deferred' });
    await dmpState(later.id, (x) => x.state === 'scheduled');
    await clock.advance(DELAY_S * 1000);
    await accepted(later.id);
    expect(sim.requests()).toHaveLength(1);
    expect((await dmpState(m.id, () => true)).state).toBe('cancelled');
    // Too late to release a cancelled sending: 409 with the reason.
    const again = await t.api(`/submissions/${m.id}/release`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { detail: string }).detail).toMatch(/cancelled/);
  });

  test('held during the delay, then released: sent once', async () => {
    const m = await send(MDM.init, undefined, { port: 'deferred' });
    await dmpState(m.id, (x) => x.state === 'scheduled');
    expect((await t.api(`/submissions/${m.id}/hold`, { method: 'POST' })).status).toBe(200);
    await clock.advance(DELAY_S * 1000);
    expect((await dmpState(m.id, () => true)).state).toBe('held');
    expect(sim.requests()).toHaveLength(0);
    expect((await t.api(`/submissions/${m.id}/release`, { method: 'POST' })).status).toBe(200);
    await accepted(m.id);
    expect(sim.documents()).toHaveLength(1);
  });

  test('left alone, it waits for the delay, then is sent', async () => {
    const m = await send(MDM.init, undefined, { port: 'deferred' });
    const planned = await dmpState(m.id, (x) => x.state === 'scheduled');
    await clock.advance(DELAY_S * 1000 - 1000);
    expect((await dmpState(m.id, () => true)).state).toBe('scheduled');
    expect(sim.requests()).toHaveLength(0);
    await clock.advance(1000);
    const done = await accepted(m.id);
    expect(new Date(done.at).getTime()).toBeGreaterThanOrEqual(new Date(planned.sendAt!).getTime());
    expect(sim.documents()).toHaveLength(1);
  });
});
