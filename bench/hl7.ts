/**
 * Benchmark messages: a PAM-FR-like ADT^A01 v2.5 padded to an exact size, and a big MDM^T02 v2.6
 * carrying a base64 ED payload in OBX-5 (CI-SIS "Transmission de document(s) CDA en HL7v2" shape).
 */
import { randomBytes } from 'node:crypto';

const TS = '20250115103000';

/**
 * ADT^A01 (admission) as a French PAM sender emits it: MSH/EVN/PID/PV1/ZBE.
 * The ZBE-9 free-text area (a French extension segment) pads the message to exactly `size` bytes,
 * whatever the length of the control id, so that every message of a run has the same size.
 */
export class AdtFactory {
  private readonly head: string;
  private readonly tail: string;
  private readonly fixed: number;

  constructor(readonly size = 1024) {
    this.head = 'MSH|^~\\&|SIH_CHU|CHU_BENCH^1.2.250.1.213.1.1.9^ISO|PFI|CHU_BENCH|' + TS + '||ADT^A01^ADT_A01|';
    this.tail =
      '|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FR\r' +
      'EVN||' +
      TS +
      '||||' +
      TS +
      '|CHU_BENCH^^^^^^FINESS^^^^001\r' +
      'PID|1||123456789^^^CHU_BENCH&1.2.250.1.213.1.1.9&ISO^PI' +
      '~185077512345608^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||' +
      'DUPONT^JEAN^PIERRE^^M.^^L~DUPONT^JEAN^^^^^D||19850712|M|||' +
      '12 RUE DE LA PAIX^^PARIS^^75002^FRA^H||0102030405^PRN^PH|||||' +
      '||||75056|||||||N||VALI\r' +
      'PV1|1|I|CARDIO^101^1^CHU_BENCH&1.2.250.1.213.1.1.9&ISO^^^^^^Cardiologie|R|||' +
      '10003^MARTIN^PAUL^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS|' +
      '||CAR||||90||||HOSP|VN20250115001^^^CHU_BENCH&1.2.250.1.213.1.1.9&ISO^VN||||||||||||||||||||||||' +
      TS +
      '\r' +
      'ZBE|MVT0001^CHU_BENCH^1.2.250.1.213.1.1.9^ISO|' +
      TS +
      '||INSERT|N||CARDIO^^^^^^UF^^^CARDIO|';
    // + padding + '|HMS\r'
    this.fixed = Buffer.byteLength(this.head + this.tail + '|HMS\r');
  }

  /** One message with MSH-10 = controlId, exactly `size` bytes. */
  build(controlId: string): Buffer {
    const pad = this.size - this.fixed - controlId.length;
    if (pad < 0) throw new Error(`ADT template does not fit in ${this.size} bytes`);
    return Buffer.from(this.head + controlId + this.tail + 'X'.repeat(pad) + '|HMS\r', 'latin1');
  }
}

/**
 * MDM^T02 v2.6 with a CDA document of about `payloadBytes` bytes, base64 in OBX-5 (ED:
 * ^TEXT^XML^Base64^data). Built directly as one Buffer so that the bench client holds one copy.
 */
export function buildBigMdm(controlId: string, base64Bytes: number): Buffer {
  const rawLen = Math.floor((base64Bytes * 3) / 4);
  const b64 = randomBytes(rawLen).toString('base64');
  const text =
    'MSH|^~\\&|DPI_BENCH|CHU_BENCH^1.2.250.1.213.1.1.9^ISO|PFI|CHU_BENCH|' +
    TS +
    '||MDM^T02^MDM_T02|' +
    controlId +
    '|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2\r' +
    'EVN||' +
    TS +
    '\r' +
    'PID|1||123456789^^^CHU_BENCH&1.2.250.1.213.1.1.9&ISO^PI' +
    '~185077512345608^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||' +
    'DUPONT^JEAN^PIERRE^^M.^^L||19850712|M\r' +
    'PV1|1|I|CARDIO^101^1^CHU_BENCH&1.2.250.1.213.1.1.9&ISO||||' +
    '10003^MARTIN^PAUL^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS\r' +
    'TXA|1|11488-4^Note de consultation^LN|TX|' +
    TS +
    '|10003^MARTIN^PAUL^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS|' +
    '||||||1.2.250.1.213.1.1.9.99.1^CHU_BENCH||||||AU\r' +
    'OBX|1|ED|11488-4^Note de consultation^LN||^TEXT^XML^Base64^';
  return Buffer.concat([Buffer.from(text, 'latin1'), Buffer.from(b64, 'latin1'), Buffer.from('||||||F\r', 'latin1')]);
}
