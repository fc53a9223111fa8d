import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Hl7Message, Hl7ParseError, readMsh } from '../../src/hl7v2/index.js';

const EXAMPLES = '/work/shared/reference/ansforge/hl7v2-exemples';

/** Every HL7 v2 example file (.er7, .hl7 and the extension-less "Message metier ..." ZAM files). */
function exampleFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return exampleFiles(path);
    return /\.(er7|hl7)$/i.test(name) || name.startsWith('Message metier') ? [path] : [];
  });
}

/** The files use \n between segments; on the wire it is \r. */
function wireBytes(path: string): Buffer {
  return Buffer.from(readFileSync(path).map((b) => (b === 0x0a ? 0x0d : b)));
}

describe.skipIf(!existsSync(EXAMPLES))('ANS examples', () => {
  const files = exampleFiles(EXAMPLES);

  it('finds the example messages', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it.each(files.map((f) => [f.slice(EXAMPLES.length + 1), f]))('round-trips %s byte for byte', (_name, path) => {
    const wire = wireBytes(path);
    const msg = Hl7Message.parse(wire);
    expect(msg.toBuffer().equals(wire)).toBe(true);
    expect(msg.segments[0]!.name).toBe('MSH');
  });

  it('reads paths in SGL/admission.er7', () => {
    const msg = Hl7Message.parse(wireBytes(join(EXAMPLES, 'SGL/admission.er7')));
    expect(msg.get('PID-3[2].4.2')).toBe('1.2.250.1.213.1.4.10');
    expect(msg.get('PID-3[2].1')).toBe('279035121518989');
    expect(msg.get('PID-3.4')).toBe('CHU-X&000897406&N');
    expect(msg.get('PID-3.4.3')).toBe('N');
    expect(msg.get('PID-5.1')).toBe('PAT-TROIS');
    expect(msg.get('MSH-1')).toBe('|');
    expect(msg.get('MSH-2')).toBe('^~\\&');
    expect(msg.get('MSH-3')).toBe('GAM');
    expect(msg.get('MSH-9')).toBe('ADT^A01^ADT_A01');
    expect(msg.get('MSH-9.2')).toBe('A01');
    expect(msg.get('MSH-12.3')).toBe('2.11');
    expect(msg.get('MSH-18')).toBe('UNICODE UTF-8');
    expect(msg.get('ZFA-9')).toBe('INO');
    expect(msg.get('PID-2')).toBe(''); // present but empty
    expect(msg.get('PID-3[3]')).toBeUndefined(); // no third repetition
    expect(msg.get('PID-3[2].12')).toBeUndefined();
    expect(msg.get('PID-99')).toBeUndefined();
    expect(msg.get('OBX-5')).toBeUndefined(); // no such segment
    expect(msg.segmentsNamed('PID')).toHaveLength(1);
    expect(msg.charset).toBe('UNICODE UTF-8');

    const h = readMsh(msg);
    expect(h).toMatchObject({
      sendingApplication: 'GAM',
      receivingFacility: 'CHU-X',
      messageType: 'ADT',
      triggerEvent: 'A01',
      messageStructure: 'ADT_A01',
      controlId: '3975',
      processingId: 'D',
      version: '2.5',
      versionRaw: '2.5^FRA^2.11',
      countryCode: 'FRA',
      charsetRaw: 'UNICODE UTF-8',
      principalLanguage: 'FR',
      profileRaw: '2.11^IHE_FRANCE-2.11-PAM',
    });
  });

  it('reads the second OBX of an ORU with two documents', () => {
    const path = join(
      EXAMPLES,
      'Volets/TRANS_DOC_CDA_HL7V2/V2.0/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7',
    );
    const msg = Hl7Message.parse(wireBytes(path));
    expect(msg.get('MSH-2')).toBe('^˜\\&'); // this example really uses U+02DC as repetition separator
    expect(msg.get('OBX[2]-1')).toBe('2');
    expect(msg.get('OBX-5.4')).toMatch(/^Base64$/i);
    expect(Buffer.from(msg.get('OBX-5.5')!, 'base64').toString('utf8')).toBe('Document medcial au format CDA niveau 1');
  });
});

describe('Hl7Message', () => {
  const er7 = [
    'MSH|^~\\&|APP|FAC|PFI|FAC|20240101120000||MDM^T02^MDM_T02|42|P|2.6|||||FRA|UNICODE UTF-8',
    'PID|||123^^^X&1.2.3&ISO^PI||DOE^JOHN',
    'ZXX|a|  odd  spacing ||',
    'OBX|1|ED|x||^text^XML^Base64^QUJD||||||F|',
    '',
  ].join('\r');

  it('accepts \\r, \\n and \\r\\n separators and always emits \\r', () => {
    for (const sep of ['\r', '\n', '\r\n']) {
      const msg = Hl7Message.parse(er7.split('\r').join(sep));
      expect(msg.segments.map((s) => s.name)).toEqual(['MSH', 'PID', 'ZXX', 'OBX']);
      expect(msg.toString()).toBe(er7);
    }
  });

  it('skips leading blank lines and a BOM before MSH', () => {
    const msg = Hl7Message.parse(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('\r\n  ' + er7)]));
    expect(msg.get('MSH-10')).toBe('42');
    expect(msg.toString()).toBe(er7);
  });

  it('keeps segments untouched by set() byte for byte', () => {
    const msg = Hl7Message.parse(er7);
    msg.set('PID-5.2', 'JANE^MARIE');
    msg.set('PID-8', 'F');
    msg.set('PID-3[2].4.2', '1.2.250');
    expect(msg.get('PID-5.2')).toBe('JANE^MARIE');
    expect(msg.getRaw('PID-5.2')).toBe('JANE\\S\\MARIE');
    const lines = msg.toString().split('\r');
    const orig = er7.split('\r');
    expect(lines[1]).toBe('PID|||123^^^X&1.2.3&ISO^PI~^^^&1.2.250||DOE^JANE\\S\\MARIE|||F');
    expect(lines.filter((l, i) => l !== orig[i])).toEqual([lines[1]]);
    expect(msg.segment('PID')!.modified).toBe(true);
    expect(msg.segment('ZXX')!.modified).toBe(false);
  });

  it('sets MSH fields with MSH numbering', () => {
    const msg = Hl7Message.parse(er7);
    msg.set('MSH-10', '43');
    msg.set('MSH-21', '2.1^CISIS');
    expect(msg.toString().split('\r')[0]).toBe(
      'MSH|^~\\&|APP|FAC|PFI|FAC|20240101120000||MDM^T02^MDM_T02|43|P|2.6|||||FRA|UNICODE UTF-8|||2.1\\S\\CISIS',
    );
    expect(() => msg.set('MSH-2', 'x')).toThrow();
    expect(() => msg.set('NTE-1', 'x')).toThrow(/No segment/);
  });

  it('uses the delimiters declared in MSH-2', () => {
    const msg = Hl7Message.parse('MSH*%$!@*A*B*C*D\rPID*1**1%2$3@4!F!x**N%P\r');
    expect(msg.delimiters).toMatchObject({
      field: '*',
      component: '%',
      repetition: '$',
      escape: '!',
      subcomponent: '@',
    });
    expect(msg.get('PID-3.2')).toBe('2');
    expect(msg.get('PID-3[2].1')).toBe('3@4*x');
    expect(msg.get('PID-3[2].1.2')).toBe('4*x');
  });

  it('rejects a payload that is not HL7 with code 100', () => {
    for (const bad of ['hello', '', 'PID|1', '<xml/>']) {
      const err = (() => {
        try {
          Hl7Message.parse(Buffer.from(bad));
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(Hl7ParseError);
      expect((err as Hl7ParseError).code).toBe(100);
      expect(() => Hl7Message.parse(bad)).toThrow(Hl7ParseError);
    }
  });

  it('rejects an unknown charset with code 103 at MSH-18', () => {
    const bytes = Buffer.from('MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5|||||FRA|KLINGON\rPID|1\r');
    try {
      Hl7Message.parse(bytes);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(Hl7ParseError);
      expect((e as Hl7ParseError).code).toBe(103);
      expect((e as Hl7ParseError).location).toEqual({ segment: 'MSH', sequence: 1, field: 18 });
    }
    expect(() => Hl7Message.parse(bytes.toString())).toThrow(Hl7ParseError);
  });

  it('falls back to the default charset when MSH-18 is empty', () => {
    const bytes = Buffer.from('MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||||DUPONT^Hélène\r', 'latin1');
    expect(Hl7Message.parse(bytes, { defaultCharset: '8859/1' }).get('PID-5.2')).toBe('Hélène');
    expect(Hl7Message.parse(Buffer.from(bytes.toString('latin1'), 'utf8')).get('PID-5.2')).toBe('Hélène');
  });

  // How fast: `npm run bench` (scenario parsers). The 60 s limit only catches a parse gone quadratic (minutes).
  it('parses a 20 MB OBX-5 and returns it without corruption', () => {
    const size = 20 * 1024 * 1024;
    const b64 = 'QUJD'.repeat(size / 4);
    const text = [
      'MSH|^~\\&|A|B|C|D|20240101||MDM^T02^MDM_T02|1|P|2.6|||||FRA|UNICODE UTF-8',
      'PID|1',
      `OBX|1|ED|x||^text^XML^Base64^${b64}||||||F|`,
      'OBX|2|CWE|DESTDMP^x^MetaDMPMSS||Y',
      '',
    ].join('\r');
    const bytes = Buffer.from(text);
    const msg = Hl7Message.parse(bytes);
    expect(readMsh(msg).triggerEvent).toBe('T02');
    const value = msg.get('OBX-5.5')!;
    expect(value.length).toBe(size);
    expect(value === b64).toBe(true);
    expect(msg.get('OBX[2]-5.1')).toBe('Y');
    expect(msg.get('OBX-11')).toBe('F');
    msg.set('OBX[2]-5.1', 'N');
    expect(msg.toBuffer().length).toBe(bytes.length);
  }, 60_000);
});
