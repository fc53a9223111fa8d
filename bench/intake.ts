/**
 * "MSSanté intake" (Flow B): mails per second from the application mailbox to the CONSOMMATEUR's
 * ACK: a real Postfix + Dovecot, the IMAP watcher, the journal, the XDM checks, the MDM, the DPI
 * simulator's identity checks. 100 KiB documents.
 */
import { percentile } from './stats.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { readCdaHeader } from '../src/cda/header.js';
import { interpret } from '../src/flows/transmission/interpret.js';
import { loadTerminology } from '../src/config/terminology.js';
import { loadTransmissionMapping } from '../src/flows/transmission/mapping.js';
import { Hl7Message } from '../src/hl7v2/message.js';
import { buildXdm } from '../src/xdm/build.js';
import type { ConsommateurSimulator } from '../src/sim/consommateur.js';
import { packageRoot } from '../src/util/paths.js';
import { PASSWORD, type MailEnv } from '../test/helpers/mail.js';

const BAL = 'bal-flowb@hopital.test';
const SENDER = 'thomas.eric@medecin.mssante.fr';
const DOC_BYTES = 100 * 1024;
const EXAMPLE =
  'Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM/Transmission initiale MDM/' +
  'message_MDM_CR_Radio_INIT_N1_Base64.er7';

export function intakeChannelYaml(mail: MailEnv, dpiPort: number): string {
  const source =
    `{ type: imap, host: ${mail.imap.host}, port: ${mail.imap.port}, secure: false, ` +
    `auth: { user: ${BAL}, password: ${PASSWORD} }, pollSeconds: 5 }`;
  return `id: bench-lps
flow: lps
source: ${source}
destinations:
  - { id: dpi, type: mllp, host: 127.0.0.1, port: ${dpiPort} }
intake:
  smtp: { host: ${mail.smtp.host}, port: ${mail.smtp.port} }
  parties: { sendingApplication: PFI, sendingFacility: CH, receivingApplication: DPI, receivingFacility: CH }
processing: { concurrency: 1 }
`;
}

/** The ANS example's patient, its CDA padded to 100 KiB, a new document id per mail. */
export function intakePatient(): { cda: Buffer; patient: Parameters<ConsommateurSimulator['addPatient']>[0] } {
  const file = join(packageRoot(), '..', 'shared', 'reference', 'ansforge', 'hl7v2-exemples', EXAMPLE);
  const cda = Buffer.from(Hl7Message.parse(readFileSync(file)).get('OBX-5.5')!, 'base64');
  const rt = readCdaHeader(cda).recordTarget;
  return {
    cda,
    patient: {
      ins: rt.ins!,
      birthName: rt.birthName!,
      givenNames: rt.givenNames.join(' '),
      birthDate: rt.birthDate!,
      sex: rt.sex as 'F',
      birthPlaceCode: rt.birthPlaceCode!,
    },
  };
}

function xdmFor(n: number): Buffer {
  const file = join(packageRoot(), '..', 'shared', 'reference', 'ansforge', 'hl7v2-exemples', EXAMPLE);
  const msg = Hl7Message.parse(readFileSync(file));
  const base = Buffer.from(msg.get('OBX-5.5')!, 'base64')
    .toString('utf8')
    .replace('71024000081', `7${String(n).padStart(10, '0')}`);
  const pad = randomBytes(Math.max(0, Math.floor(((DOC_BYTES - base.length) * 3) / 4))).toString('base64');
  const cda = Buffer.from(base.replace('</ClinicalDocument>', `<!-- ${pad} --></ClinicalDocument>`), 'utf8');
  msg.set('OBX-5.5', cda.toString('base64'));
  msg.set('TXA-12.1', `1.2.250.1.71.4.2.2.120456789.7${String(n).padStart(10, '0')}`);
  const sub = interpret(msg, {
    terminology: loadTerminology(),
    mapping: loadTransmissionMapping(join(packageRoot(), 'mappings/transmission.yaml')),
  });
  return buildXdm(sub.submissionSet, [{ entry: sub.documents[0]!.entry, bytes: cda }], {
    sender: SENDER,
    softwareName: 'bench',
  });
}

export async function benchIntake(opts: {
  mail: MailEnv;
  dpi: ConsommateurSimulator;
  mails: number;
}): Promise<Record<string, unknown>> {
  const transport = nodemailer.createTransport({
    host: opts.mail.smtp.host,
    port: opts.mail.smtp.port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: 4,
  });
  const send = (n: number, zip: Buffer) =>
    transport.sendMail({
      from: SENDER,
      to: BAL,
      subject: 'XDM/1.0/DDM+bench',
      text: 'bench',
      messageId: `<bench-${n}-${Date.now()}@medecin.mssante.fr>`,
      attachments: [{ filename: 'IHE_XDM.ZIP', content: zip }],
    });
  const acked = () => opts.dpi.received().filter((r) => r.ack === 'AA').length;
  const waitAcked = async (n: number) => {
    const until = Date.now() + 300_000;
    while (acked() < n && Date.now() < until) await new Promise((ok) => setTimeout(ok, 5));
  };
  try {
    const idle: number[] = [];
    for (let i = 0; i < 10; i++) {
      const zip = xdmFor(9_000_000 + i);
      const t0 = performance.now();
      await send(9_000_000 + i, zip);
      await waitAcked(i + 1);
      idle.push(performance.now() - t0);
    }
    idle.sort((a, b) => a - b);
    const base = acked();
    const zips = Array.from({ length: opts.mails }, (_, i) => xdmFor(i));
    const t0 = performance.now();
    await Promise.all(zips.map((z, i) => send(i, z)));
    await waitAcked(base + zips.length);
    const seconds = (performance.now() - t0) / 1000;
    const integrated = acked() - base;
    return {
      bench: 'mssante_intake',
      documentBytes: DOC_BYTES,
      mails: zips.length,
      integrated,
      seconds: Math.round(seconds * 100) / 100,
      mailsPerSec: Math.round((integrated / seconds) * 10) / 10,
      idleLatencyMs: {
        p50: Math.round(percentile(idle, 50)),
        p99: Math.round(percentile(idle, 99)),
        max: Math.round(idle.at(-1)!),
      },
    };
  } finally {
    transport.close();
  }
}
