/**
 * Flow B: the MDM the GESTIONNAIRE sends the CONSOMMATEUR (DPI) for a document received by MSSanté,
 * per the volet "Transmission au LPS d'un document CDA provenant d'un courriel MSSanté"
 * (profils-messages.md; shape of the ANS examples, profile `1.1^CISIS_CDA_HL7_LPS`):
 *
 *   MSH EVN PID PV1 ORC OBR TXA OBX(CDA, Base64) PRT(SB sender) PRT(RCT recipient) [PRT(REPLY)]
 *   OBX(mail subject and body) OBX(MetaDMPMSS visibility flags)
 *
 * T02 (ORC-1 NW) new document, T10 (RO) replacement (TXA-13 the replaced one), T04 (CA) deletion.
 * PID comes from the CDA's recordTarget: the INS and the five traits the DPI compares.
 */
import { hl7Timestamp } from '../../hl7v2/ack.js';
import { escape } from '../../hl7v2/escape.js';
import { STANDARD_DELIMITERS } from '../../hl7v2/message.js';
import type { Intake } from '../../xdm/read.js';
import { writeMsh } from '../../hl7v2/header.js';

export interface MdmParties {
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
}

export interface ReceivedMail {
  from: string;
  to: string;
  replyTo?: string;
  subject?: string;
  body?: string;
}

/** Event, ORC-1 and the document OBX's OBX-11 (evenements-declenchants.md). */
const EVENT = { new: ['T02', 'NW', 'F'], replace: ['T10', 'RO', 'C'], delete: ['T04', 'CA', 'D'] } as const;
/** The document's confidentiality codes (TRE_A07) that say who must not see it, as the volet's flags. */
const VISIBILITY: [string, string, string][] = [
  ['MASQUE_PS', 'Masqué aux professionnels de Santé', 'MASQUE_PS'],
  ['INVISIBLE_PATIENT', 'Document Non Visible par le patient', 'INVISIBLE_PATIENT'],
  ['INVISIBLE_REP_LEGAUX', 'Non visible par les représentants Légaux du patient', 'INVISIBLE_REPRESENTANTS_LEGAUX'],
];

const e = (v: string | undefined) => escape(v ?? '', STANDARD_DELIMITERS);

/**
 * TXA-12 / TXA-13 of a document's XDS uniqueId (`root` or `root^extension`): `extension^^root^ISO`, or the
 * root alone (profils-messages.md, TXA).
 */
function documentId(uniqueId: string): string {
  const [root, extension] = uniqueId.split('^');
  return extension ? `${e(extension)}^^${e(root)}^ISO` : e(root);
}

/** ER7 text (segments ended by \r) of the MDM for one received document set. */
export function buildMdm(
  intake: Intake,
  mail: ReceivedMail,
  parties: MdmParties,
  opts: { controlId: string; now?: Date },
): string {
  const now = hl7Timestamp(opts.now ?? new Date());
  const [event, orc, status] = EVENT[intake.operation];
  const doc = intake.documents[0]!;
  const cda = doc.cda;
  const p = intake.patient;
  const code = cda.code;
  const system = code.codeSystem === '2.16.840.1.113883.6.1' ? 'LN' : e(code.codeSystem);
  const codeField = `${e(code.code)}^${e(code.displayName)}^${system}`;
  const ins = p.ins ? `${e(p.ins.matricule)}^^^ASIP-SANTE-INS-NIR&${p.ins.oid}&ISO^INS` : '';
  const others = p.ids.filter((i) => !p.ins || i.id !== p.ins.matricule).map((i) => `${e(i.id)}^^^&${i.root}&ISO^PI`);
  const given = p.givenNames.join(' ');
  const pid3 = [ins, ...others].filter(Boolean).join('~');
  const pid5 = `${e(p.birthName)}^${e(p.firstGivenName ?? p.givenNames[0])}^${e(given)}^^^^L`;
  const pid11 = p.birthPlaceCode ? `^^^^^^BDL^^${e(p.birthPlaceCode)}` : '';
  const txa12 = documentId(doc.entry.uniqueId);
  const txa13 = intake.replaces ? documentId(intake.replaces) : '';
  const segs = [
    writeMsh({
      sendingApplication: e(parties.sendingApplication),
      sendingFacility: e(parties.sendingFacility),
      receivingApplication: e(parties.receivingApplication),
      receivingFacility: e(parties.receivingFacility),
      time: now,
      messageType: `MDM^${event}^MDM_T02`,
      controlId: e(opts.controlId),
      profile: '1.1^CISIS_CDA_HL7_LPS',
    }),
    `EVN||${now}`,
    `PID|||${pid3}||${pid5}||${e(p.birthDate)}|${e(p.sex)}|||${pid11}`,
    'PV1|1|N',
    `ORC|${orc}|`,
    `OBR|1|||${codeField}|`,
    `TXA|1|${e(code.code)}|TEXT|${e(cda.effectiveTime?.slice(0, 14))}||||||||${txa12}|${txa13}||||AU`,
  ];
  intake.documents.forEach((d, i) => {
    segs.push(`OBX|${i + 1}|ED|${codeField}||^text^XML^Base64^${d.bytes.toString('base64')}||||||${status}`);
  });
  // The mail: who sent it, to which mailbox, where to answer (PRT-15 X.400 addresses).
  segs.push(`PRT||UC||SB^^participation|||||||||||^^X.400^${e(mail.from)}`);
  segs.push(`PRT||UC||RCT^^participation|||||||||||^^X.400^${e(mail.to)}`);
  if (mail.replyTo) segs.push(`PRT||UC||REPLY^^participation|||||||||||^^X.400^${e(mail.replyTo)}`);
  let n = intake.documents.length;
  const body = Buffer.from(mail.body ?? '', 'utf8').toString('base64');
  segs.push(`OBX|${++n}|ED|1^${e(mail.subject)}||^text^^Base64^${body}||||||F`);
  const codes = new Set(doc.entry.confidentialityCodes);
  for (const [flag, label, c] of VISIBILITY) {
    segs.push(
      `OBX|${++n}|CWE|${flag}^${e(label)}^MetaDMPMSS||${codes.has(c) ? 'Y' : 'N'}^^expandedYes-NoIndicator||||||F`,
    );
  }
  // A replacement that only changes who may see the document says so (the flags differ from the previous version's).
  segs.push(
    `OBX|${n + 1}|CWE|MODIF_CONF_CODE^Modification Confidentiality Code^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F`,
  );
  return segs.join('\r') + '\r';
}
