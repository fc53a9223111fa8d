import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { readCdaHeader } from '../../src/cda/header.js';
import type { JournalEntry } from '../../src/journal/journal.js';
import { buildXdm } from '../../src/xdm/build.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { ConsommateurSimulator } from '../../src/sim/consommateur.js';
import { interpret } from '../../src/flows/transmission/interpret.js';
import { loadTerminology } from '../../src/config/terminology.js';
import { loadTransmissionMapping } from '../../src/flows/transmission/mapping.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { EXAMPLES, ROOT, spawnEngine, tempDir, TOKEN, waitFor, type SpawnedEngine } from '../helpers/engine.js';
import { PASSWORD, readMailbox, waitForPostfixQueue } from '../helpers/mail.js';

const TRANS = join(
  EXAMPLES,
  'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Transmission initiale MDM/' +
    'message_MDM_CR_Radio_INIT_N1_Base64.er7',
);
const BAL = 'bal-flowb@hopital.test';
const SENDER = 'janet.blanc@medecin.mssante.fr';

let dir: string;
let redis: EmbeddedRedis;
let dpi: ConsommateurSimulator;

beforeAll(async () => {
  const mail = inject('mail');
  dir = tempDir('intake-crash');
  mkdirSync(join(dir, 'channels'));
  redis = await startEmbeddedRedis({ dir: join(dir, 'redis') });
  dpi = await ConsommateurSimulator.start();
  const source =
    `{ type: imap, host: 127.0.0.1, port: ${mail.imap.port}, secure: false, ` +
    `auth: { user: ${BAL}, password: ${PASSWORD} }, pollSeconds: 2 }`;
  writeFileSync(
    join(dir, 'channels', 'lps.yaml'),
    `id: lps
flow: lps
source: ${source}
destinations:
  - { id: dpi, type: mllp, host: 127.0.0.1, port: ${dpi.port}, ackTimeoutSeconds: 60 }
intake:
  smtp: { host: 127.0.0.1, port: 25 }
  parties: { sendingApplication: PFI, sendingFacility: CH, receivingApplication: DPI, receivingFacility: CH }
processing: { concurrency: 1, attempts: 5, backoffSeconds: 0.5 }
`,
  );
});

afterAll(async () => {
  await dpi?.stop();
  await redis?.stop();
});

const get = async (e: SpawnedEngine, path: string) =>
  (await fetch(e.adminUrl + path, { headers: { authorization: `Bearer ${TOKEN}` } })).json();

describe('engine killed -9 between the IMAP read and the DPI ACK', () => {
  test('after restart the document reaches the DPI exactly once, and exactly one MDN is sent', async () => {
    // An XDM built by our own sending side from the ANS transmission example (the patient is in the DPI's base).
    const sub = interpret(Hl7Message.parse(readFileSync(TRANS)), {
      terminology: loadTerminology(),
      mapping: loadTransmissionMapping(join(ROOT, 'mappings/transmission.yaml')),
    });
    const cda = Buffer.from(Hl7Message.parse(readFileSync(TRANS)).get('OBX-5.5')!, 'base64');
    const rt = readCdaHeader(cda).recordTarget;
    dpi.addPatient({
      ins: rt.ins!,
      birthName: rt.birthName!,
      givenNames: rt.givenNames.join(' '),
      birthDate: rt.birthDate!,
      sex: rt.sex as 'F',
      birthPlaceCode: rt.birthPlaceCode!,
    });
    const zip = buildXdm(sub.submissionSet, [{ entry: sub.documents[0]!.entry, bytes: cda }], {
      sender: SENDER,
      softwareName: 'test',
    });
    const env = { PFI_HOME: dir, PFI_REDIS_URL: redis.url, PFI_VAR_DIR: join(dir, 'var') };

    dpi.setAnswer('silent'); // the DPI takes the MDM and does not answer: the engine waits for its ACK
    const first = await spawnEngine(env);
    const tag = `crash-${Date.now()}`;
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: 25, secure: false, ignoreTLS: true });
    await t.sendMail({
      from: SENDER,
      to: BAL,
      subject: 'XDM/1.0/DDM+CR crash',
      text: 'x',
      messageId: `<${tag}@medecin.mssante.fr>`,
      headers: { 'Disposition-Notification-To': SENDER },
      attachments: [{ filename: 'IHE_XDM.ZIP', content: zip }],
    });
    t.close();
    await waitFor(async () => dpi.received().length === 1, 30_000, 'the MDM at the DPI');
    first.child.kill('SIGKILL');
    await first.stopped;

    dpi.setAnswer('normal');
    const second = await spawnEngine(env);
    try {
      const e = await waitFor(
        async () => {
          const r = (await get(second, `/messages?controlId=${encodeURIComponent(`<${tag}@medecin.mssante.fr>`)}`)) as {
            messages: JournalEntry[];
          };
          return r.messages[0]?.status === 'processed' ? r.messages[0] : undefined;
        },
        60_000,
        'the mail processed after restart',
      );
      expect(integrations(e)).toBe(1);
      expect(dpi.documents().filter((d) => d.uniqueId.includes('71024000081'))).toHaveLength(1);
      await waitFor(
        async () =>
          (await readMailbox(SENDER)).some((m) => m.source.toString('latin1').includes(`${tag}@medecin.mssante.fr`)),
        20_000,
        'the MDN',
      );
      // The MDN goes out before the mail is 'processed', and the first life never got that far (its DPI was
      // silent): once Postfix holds nothing more for the sender, every MDN it was given is in the mailbox.
      await waitForPostfixQueue(SENDER);
      expect(
        (await readMailbox(SENDER)).filter((m) => m.source.toString('latin1').includes(`${tag}@medecin.mssante.fr`)),
      ).toHaveLength(1);
    } finally {
      second.child.kill('SIGTERM');
      await second.stopped;
    }
  }, 150_000);
});

/** How many times the journal says the document was integrated. */
function integrations(e: JournalEntry): number {
  return e.events.filter((x) => x.destination === 'dpi' && x.status === 'delivered').length;
}
