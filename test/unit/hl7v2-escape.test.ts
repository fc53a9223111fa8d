import { describe, expect, it } from 'vitest';
import {
  charsetFromMsh18,
  decodeBytes,
  encodeString,
  escape,
  Hl7Message,
  sniffMsh18,
  STANDARD_DELIMITERS as d,
  unescape,
} from '../../src/hl7v2/index.js';

describe('escape / unescape', () => {
  const pairs: [string, string][] = [
    ['a|b', 'a\\F\\b'],
    ['a^b', 'a\\S\\b'],
    ['a&b', 'a\\T\\b'],
    ['a~b', 'a\\R\\b'],
    ['C:\\dir', 'C:\\E\\dir'],
    ['line1\nline2', 'line1\\.br\\line2'],
    ['|^~\\&', '\\F\\\\S\\\\R\\\\E\\\\T\\'],
  ];
  it.each(pairs)('%j <-> %j', (text, raw) => {
    expect(escape(text, d)).toBe(raw);
    expect(unescape(raw, d, 'UNICODE UTF-8')).toBe(text);
  });

  it('turns every line break style into \\.br\\', () => {
    expect(escape('a\r\nb\rc\nd', d)).toBe('a\\.br\\b\\.br\\c\\.br\\d');
  });

  it('returns the very same string when there is nothing to do', () => {
    const big = 'QUJD'.repeat(1000);
    expect(unescape(big, d, 'UNICODE UTF-8')).toBe(big);
    expect(escape(big, d)).toBe(big);
  });

  it('decodes \\Xhh\\ as bytes of the message charset', () => {
    expect(unescape('caf\\XC3A9\\', d, 'UNICODE UTF-8')).toBe('café');
    expect(unescape('\\XE282AC\\ 5', d, 'UNICODE UTF-8')).toBe('€ 5');
    // one char split over two sequences
    expect(unescape('\\XC3\\\\XA9\\t\\XC3\\\\XA9\\', d, 'UNICODE UTF-8')).toBe('été');
    expect(unescape('\\XA4\\ \\XE9\\', d, '8859/15')).toBe('€ é');
    expect(unescape('\\XE9\\', d, '8859/1')).toBe('é');
    expect(unescape('\\X0D0A\\', d, 'ASCII')).toBe('\r\n');
  });

  it('keeps sequences it does not interpret verbatim', () => {
    for (const raw of [
      '\\H\\bold\\N\\',
      '\\.sp\\',
      '\\C2842\\x',
      '\\M244F40\\',
      '\\Zabc\\',
      '\\XZZ\\',
      'lone \\ escape',
      '\\.in+4\\',
    ]) {
      expect(unescape(raw, d, 'UNICODE UTF-8')).toBe(raw);
    }
  });

  it('uses \\P\\ only when MSH-2 declares a truncation character', () => {
    expect(escape('a#b', d)).toBe('a#b');
    expect(escape('a#b', { ...d, truncation: '#' })).toBe('a\\P\\b');
    expect(unescape('a\\P\\b', { ...d, truncation: '#' }, 'ASCII')).toBe('a#b');
  });

  it('works with custom delimiters', () => {
    const c = { field: '*', component: '%', repetition: '$', escape: '!', subcomponent: '@' };
    expect(escape('a*b%c!d', c)).toBe('a!F!b!S!c!E!d');
    expect(unescape('a!F!b!S!c!E!d!X41!', c, 'ASCII')).toBe('a*b%c!dA');
  });
});

describe('charsets', () => {
  it('maps MSH-18 spellings', () => {
    expect(charsetFromMsh18('UNICODE UTF-8', 'ASCII')).toBe('UNICODE UTF-8');
    expect(charsetFromMsh18('utf-8', 'ASCII')).toBe('UNICODE UTF-8');
    expect(charsetFromMsh18('8859/15', 'ASCII')).toBe('8859/15');
    expect(charsetFromMsh18('ISO-8859-15', 'ASCII')).toBe('8859/15');
    expect(charsetFromMsh18('8859/1', 'ASCII')).toBe('8859/1');
    expect(charsetFromMsh18('ISO_8859-1', 'ASCII')).toBe('8859/1');
    expect(charsetFromMsh18('ASCII', 'UNICODE UTF-8')).toBe('ASCII');
    expect(charsetFromMsh18('', '8859/15')).toBe('8859/15');
    expect(charsetFromMsh18(undefined, '8859/15')).toBe('8859/15');
    expect(charsetFromMsh18('UNICODE UTF-8~8859/15', 'ASCII')).toBe('UNICODE UTF-8');
    expect(charsetFromMsh18('ISO IR87', 'ASCII')).toBeUndefined();
    expect(charsetFromMsh18('EBCDIC', 'ASCII')).toBeUndefined();
  });

  it('encodes and decodes 8859/15 (€ = A4) and 8859/1', () => {
    expect([...encodeString('€é', '8859/15')]).toEqual([0xa4, 0xe9]);
    expect(decodeBytes(Buffer.from([0xa4, 0xe9]), '8859/15')).toBe('€é');
    expect([...encodeString('é', '8859/1')]).toEqual([0xe9]);
    expect(encodeString('€', '8859/1').toString('latin1')).toBe('?'); // not representable: no wrong byte
  });

  it('sniffs MSH-18 from the bytes', () => {
    expect(sniffMsh18(Buffer.from('MSH|^~\\&|A|B|C|D|T||ADT^A01|1|P|2.5|||||FRA|8859/15|FR\rPID|1'))).toBe('8859/15');
    expect(sniffMsh18(Buffer.from('\r\nMSH|^~\\&|A|B|C|D|T||ADT^A01|1|P|2.5|||||FRA|8859/15\rPID'))).toBe('8859/15');
    expect(sniffMsh18(Buffer.from('MSH|^~\\&|A|B|C|D|T||ADT^A01|1|P|2.5\rPID|||||||||||||||||||||'))).toBeUndefined();
    expect(sniffMsh18(Buffer.from('nothing'))).toBeUndefined();
  });

  it('decodes a message declared 8859/15 from its bytes', () => {
    const bytes = encodeString(
      'MSH|^~\\&|A|B|C|D|20240101||MDM^T02^MDM_T02|1|P|2.6|||||FRA|8859/15\rNTE|1||Coût 12 € réglé \\XA4\\\r',
      '8859/15',
    );
    expect(bytes.includes(0xa4)).toBe(true);
    const msg = Hl7Message.parse(bytes);
    expect(msg.charset).toBe('8859/15');
    expect(msg.get('NTE-3')).toBe('Coût 12 € réglé €');
    expect(msg.toBuffer().equals(bytes)).toBe(true);
  });
});
