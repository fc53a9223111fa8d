import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ackBytes,
  buildAck,
  encodeString,
  ERROR_TEXT,
  Hl7Message,
  Hl7ParseError,
  readAck,
  readMsh,
} from '../../src/hl7v2/index.js';

const now = new Date(2024, 2, 6, 11, 11, 54); // local time, as MSH-7 is
const MDM_T02 = [
  'MSH|^~\\&|RIS-Y|Organisation-Y^1.2.250.1.71.4.2.2^ISO|PFI-X|Organisation-X|202106060931||MDM^T02^MDM_T02|015|' +
    'P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2',
  'EVN||20211005152908',
  'PID|||274075176079430^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS',
  'TXA|1|18748-4|TEXT',
  'OBX|1|ED|18748-4^CR^LN||^text^XML^Base64^QUJD||||||F|',
  '',
].join('\r');

describe('buildAck', () => {
  it('builds the volet ACK for MDM^T02 with ERR segments', () => {
    const original = readMsh(Hl7Message.parse(MDM_T02));
    const ack = buildAck(original, {
      code: 'AE',
      controlId: 'ACK-1',
      now,
      text: 'Rejet: version',
      errors: [
        { code: 203, location: { segment: 'MSH', field: 12 } },
        {
          code: 101,
          text: 'TXA-12 absent | requis',
          location: { segment: 'TXA', sequence: 1, field: 12, repetition: 1, component: 1 },
        },
        { code: 207, severity: 'W' },
      ],
    });
    expect(ack.split('\r')).toEqual([
      'MSH|^~\\&|PFI-X|Organisation-X|RIS-Y|Organisation-Y^1.2.250.1.71.4.2.2^ISO|20240306111154||ACK^T02^ACK|ACK-1|' +
        'P|2.6|||||FRA|UNICODE UTF-8',
      'MSA|AE|015|Rejet: version',
      'ERR||MSH^1^12|203^Unsupported version id^HL70357|E',
      'ERR||TXA^1^12^1^1|101^Required field missing^HL70357|E||||TXA-12 absent \\F\\ requis',
      'ERR|||207^Application internal error^HL70357|W',
      '',
    ]);

    const msg = Hl7Message.parse(ack);
    expect(msg.get('MSH-9')).toBe('ACK^T02^ACK');
    expect(msg.get('MSH-3')).toBe('PFI-X');
    expect(msg.get('MSH-5')).toBe('RIS-Y');
    expect(msg.get('MSH-6.2')).toBe('1.2.250.1.71.4.2.2');
    expect(msg.get('MSA-2')).toBe('015');
    expect(msg.get('ERR-2')).toBe('MSH^1^12');
    expect(msg.get('ERR-3.1')).toBe('203');
    expect(msg.get('ERR-4')).toBe('E');
    expect(msg.get('ERR[2]-8')).toBe('TXA-12 absent | requis');
    expect(readAck(msg)).toEqual({
      code: 'AE',
      controlId: '015',
      text: 'Rejet: version',
      errors: [
        { code: '203', text: 'Unsupported version id', location: 'MSH^1^12' },
        { code: '101', text: 'TXA-12 absent | requis', location: 'TXA^1^12^1^1' },
        { code: '207', text: 'Application internal error', location: undefined },
      ],
    });
  });

  const example = '/work/shared/reference/ansforge/hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.0/MDM/Remplacement MDM';
  it.skipIf(!existsSync(example))('matches the ANS example ACK of MDM^T10 (but for MSH-7 precision)', () => {
    const original = readMsh(Hl7Message.parse(readFileSync(`${example}/message_MDM_CR_Radio_RPLC_N1.er7`)));
    const expected = readFileSync(`${example}/ack.er7`, 'utf8').replace(/\n/g, '\r');
    const ack = buildAck(original, { code: 'AA', controlId: '016', now: new Date(2021, 5, 6, 9, 32, 0) });
    expect(ack).toBe(expected.replace('|202106060932|', '|20210606093200|'));
  });

  it('encodes the ACK of an 8859/15 message in 8859/15', () => {
    const bytes = encodeString(
      [
        'MSH|^~\\&|SIL|CHU_X|PFI|CHU_X|202310030830||ORU^R01^ORU_R01|12345|' +
          'P|2.5|||||FRA|8859/15|||2.1^CISIS_CDA_HL7_V2',
        'PID|||1^^^X||Lefèvre^Zoé',
        'NTE|1||Prix 10 €',
        '',
      ].join('\r'),
      '8859/15',
    );
    const msg = Hl7Message.parse(bytes);
    expect(msg.get('PID-5')).toBe('Lefèvre^Zoé');
    expect(msg.get('NTE-3')).toBe('Prix 10 €');
    const out = ackBytes(readMsh(msg), {
      code: 'AE',
      controlId: '12347',
      now,
      errors: [{ code: 207, text: 'Coût refusé: 10 €' }],
    });
    expect(out.includes(0xa4)).toBe(true); // €
    expect(out.includes(0xe9)).toBe(true); // é
    expect(out.includes(Buffer.from('€', 'utf8'))).toBe(false);
    const back = Hl7Message.parse(out);
    expect(back.charset).toBe('8859/15');
    expect(back.get('MSH-9')).toBe('ACK^R01^ACK');
    expect(back.get('MSH-12')).toBe('2.5');
    expect(back.get('MSH-18')).toBe('8859/15');
    expect(back.get('ERR-8')).toBe('Coût refusé: 10 €');
  });

  it('builds a generic ACK when the payload is not HL7', () => {
    let error: Hl7ParseError | undefined;
    try {
      Hl7Message.parse(Buffer.from('GET / HTTP/1.1\r\n'));
    } catch (e) {
      error = e as Hl7ParseError;
    }
    expect(error?.code).toBe(100);
    const ack = buildAck(undefined, {
      code: 'AR',
      controlId: 'X1',
      now,
      errors: [{ code: error!.code, text: error!.message, location: error!.location }],
    });
    expect(ack.split('\r').slice(0, 3)).toEqual([
      'MSH|^~\\&|||||20240306111154||ACK|X1|P|2.5||||||UNICODE UTF-8',
      'MSA|AR',
      'ERR||MSH^1|100^Segment sequence error^HL70357|E||||Not an HL7 v2 message: MSH segment expected first',
    ]);
    expect(Hl7Message.parse(ack).get('MSH-12')).toBe('2.5');
    expect(
      buildAck(undefined, { code: 'AR', controlId: 'X', now, fallbackVersion: '2.6', fallbackCharset: '8859/15' }),
    ).toContain('|ACK|X|P|2.6||||||8859/15\r');
  });

  it('answers an unknown charset in a charset it knows', () => {
    const bytes = Buffer.from('MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|9|P|2.5|||||FRA|KLINGON\r');
    expect(() => Hl7Message.parse(bytes)).toThrow(Hl7ParseError);
    // The header can still be read leniently (as Latin-1) to address the reject.
    const header = readMsh(Hl7Message.parse(bytes.toString('latin1').replace('|KLINGON', '|')));
    const ack = buildAck(
      { ...header, charsetRaw: 'KLINGON' },
      {
        code: 'AR',
        controlId: 'A',
        now,
        fallbackCharset: '8859/15',
        errors: [{ code: 103, location: { segment: 'MSH', field: 18 } }],
      },
    );
    expect(ack).toContain(
      '|ACK^R01^ACK|A|P|2.5|||||FRA|8859/15\rMSA|AR|9\rERR||MSH^1^18|103^Table value not found^HL70357|E\r',
    );
  });

  it('translates values from a message with other delimiters', () => {
    const msg = Hl7Message.parse('MSH*%$!@*APP%1.2.3%ISO*FAC^X*PFI*F2*20240101**ADT%A01*7*P*2.5\rPID*1\r');
    const ack = buildAck(readMsh(msg), { code: 'AA', controlId: 'Z', now });
    expect(ack.split('\r')[0]).toBe('MSH|^~\\&|PFI|F2|APP^1.2.3^ISO|FAC\\S\\X|20240306111154||ACK^A01^ACK|Z|P|2.5');
  });

  it('has the HL7 0357 labels', () => {
    expect(Object.keys(ERROR_TEXT)).toHaveLength(12);
    expect(ERROR_TEXT[100]).toBe('Segment sequence error');
    expect(ERROR_TEXT[207]).toBe('Application internal error');
  });
});
