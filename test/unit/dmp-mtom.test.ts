import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { buildMtom } from '../../src/dmp/mtom.js';
import {
  MAX_PARTS,
  MimeError,
  parseContentType,
  parseMultipart,
  parseMultipartParts,
  type MimePart,
} from '../../src/mime/multipart.js';

const ENVELOPE =
  '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>é</soap:Body></soap:Envelope>';
const ACTION = 'urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b';

/** A multipart body by hand, CRLF line ends. */
const mp = (lines: string[]) => Buffer.from(lines.join('\r\n'), 'latin1');

describe('buildMtom', () => {
  const doc1 = Buffer.from('<ClinicalDocument>\r\n--not-a-boundary\r\n</ClinicalDocument>');
  const doc2 = randomBytes(4096); // every byte value, CR/LF included
  const built = buildMtom(
    ENVELOPE,
    [
      { contentId: 'doc1@pfi', contentType: 'text/xml', body: doc1 },
      { contentId: '<doc2@pfi>', contentType: 'application/pdf', body: doc2 },
    ],
    ACTION,
  );

  it('announces a SOAP 1.2 XOP package', () => {
    const { type, params } = parseContentType(built.contentType);
    expect(type).toBe('multipart/related');
    expect(params).toMatchObject({
      type: 'application/xop+xml',
      start: '<root.message@pfi>',
      'start-info': 'application/soap+xml',
      action: ACTION,
    });
    expect(params.boundary).toMatch(/^MIMEBoundary_pfi_[0-9a-f]{48}$/);
    expect(built.contentType).toMatch(
      /^multipart\/related; boundary="[^"]+"; type="application\/xop\+xml"; start="<root\.message@pfi>"; start-info="application\/soap\+xml"; action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"$/,
    );
  });

  it('passes the attachment Buffers through without copying them', () => {
    expect(built.chunks.filter((c) => c === doc1)).toHaveLength(1);
    expect(built.chunks.filter((c) => c === doc2)).toHaveLength(1);
  });

  it('round-trips through parseMultipart', () => {
    const body = Buffer.concat(built.chunks);
    expect(body.toString('latin1')).toContain('Content-ID: <doc1@pfi>\r\n\r\n<ClinicalDocument>'); // CRLF framing
    const { root, parts } = parseMultipart(built.contentType, body);
    expect(root.contentId).toBe('root.message@pfi');
    expect(root.contentType).toBe('application/xop+xml; charset=UTF-8; type="application/soap+xml"');
    expect(root.body.toString('utf8')).toBe(ENVELOPE);
    expect(parts.get('doc1@pfi')!.body.equals(doc1)).toBe(true);
    expect(parts.get('doc2@pfi')!.body.equals(doc2)).toBe(true);
    expect(parts.get('doc2@pfi')!.contentType).toBe('application/pdf');
    expect(parts.get('doc2@pfi')!.headers['content-transfer-encoding']).toBe('binary');
    expect([...parts.keys()]).toEqual(['root.message@pfi', 'doc1@pfi', 'doc2@pfi']);
  });

  it('picks a new random boundary each time, absent from the bodies', () => {
    const a = parseContentType(buildMtom(ENVELOPE, [], ACTION).contentType).params.boundary!;
    const b = parseContentType(built.contentType).params.boundary!;
    expect(a).not.toBe(b);
    expect(doc2.indexOf(b)).toBe(-1);
  });

  // Linear: the boundary is looked for by a few native scans of the whole body (Buffer#indexOf), not one
  // search per '-', and the part is a view of the body, not a copy. How fast: `npm run bench` (scenario
  // parsers); the 60 s limit only catches a scan gone quadratic.
  it('handles tens of MiB in linear time', () => {
    const big = Buffer.alloc(40 * 1024 * 1024, 0x2d); // all '-': worst case for a naive delimiter scan
    const scans = vi.spyOn(Buffer.prototype, 'indexOf');
    let body: Buffer;
    let parts: Map<string, MimePart>;
    let calls: number;
    try {
      const m = buildMtom(ENVELOPE, [{ contentId: 'big@pfi', contentType: 'application/pdf', body: big }], ACTION);
      body = Buffer.concat(m.chunks);
      ({ parts } = parseMultipart(m.contentType, body));
    } finally {
      calls = scans.mock.calls.length;
      scans.mockRestore();
    }
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(8);
    const part = parts.get('big@pfi')!.body;
    expect(part.length).toBe(big.length);
    expect(part.buffer).toBe(body.buffer);
    expect(part.equals(big)).toBe(true);
  }, 60_000);
});

describe('parseMultipart', () => {
  it('unquoted boundary, preamble, epilogue, no start: root is the first part', () => {
    const body = mp([
      'preamble',
      '--b1',
      'Content-Type: application/xop+xml',
      '',
      '<a/>',
      '--b1',
      'Content-ID: <x@y>',
      '',
      'data',
      '--b1--',
      'epilogue',
    ]);
    const { root, parts } = parseMultipart('multipart/related; boundary=b1; type="application/xop+xml"', body);
    expect(root.body.toString()).toBe('<a/>');
    expect(root.contentId).toBeUndefined();
    expect(parts.get('x@y')!.body.toString()).toBe('data');
    expect(parts.get('x@y')!.contentType).toBe('text/plain; charset=us-ascii');
  });

  it('start parameter names the root', () => {
    const body = mp(['--b', 'Content-ID: <one>', '', '1', '--b', 'Content-ID: <two>', '', '2', '--b--', '']);
    expect(parseMultipart('multipart/related; boundary="b"; start="<two>"', body).root.body.toString()).toBe('2');
    expect(parseMultipart('multipart/related; start=one; boundary="b"', body).root.body.toString()).toBe('1');
  });

  it('decodes base64 and quoted-printable, unfolds headers', () => {
    const pdf = randomBytes(300);
    const b64 = pdf.toString('base64').replace(/.{76}/g, '$&\r\n');
    const body = mp([
      '--b',
      'Content-ID: <p1>',
      'Content-Transfer-Encoding: BASE64',
      'Content-Type: application/pdf;',
      '\tname="x.pdf"',
      '',
      b64,
      '--b',
      'Content-ID: <p2>',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'caf=C3=A9 =3D ok=',
      'suite',
      '--b--',
    ]);
    const { parts } = parseMultipart('multipart/related; boundary=b', body);
    expect(parts.get('p1')!.body.equals(pdf)).toBe(true);
    expect(parts.get('p1')!.contentType).toBe('application/pdf; name="x.pdf"');
    expect(parts.get('p2')!.body.toString('utf8')).toBe('café = oksuite');
  });

  it(`at most ${MAX_PARTS} parts: a body of empty parts is refused early, not parsed to the end`, () => {
    const parts = (n: number) => Buffer.from(`${'--b\r\n\r\n\r\n'.repeat(n)}--b--`);
    expect(parseMultipartParts('multipart/mixed; boundary=b', parts(MAX_PARTS))).toHaveLength(MAX_PARTS);
    expect(() => parseMultipartParts('multipart/mixed; boundary=b', parts(100_000))).toThrow(
      new MimeError(`more than ${MAX_PARTS} MIME parts`),
    );
  });

  it('a part without headers', () => {
    const { root } = parseMultipart('multipart/related; boundary=b', mp(['--b', '', 'naked', '--b--']));
    expect(root.body.toString()).toBe('naked');
    expect(root.headers).toEqual({});
  });

  const bad: [string, string, Buffer, RegExp][] = [
    ['not multipart', 'application/soap+xml', mp(['x']), /not multipart/],
    [
      'no boundary',
      'multipart/related; type="application/xop+xml"',
      mp(['--b', '', 'x', '--b--']),
      /no boundary parameter/,
    ],
    [
      'boundary absent from the body',
      'multipart/related; boundary=zz',
      mp(['--b', '', 'x', '--b--']),
      /boundary "zz" not found/,
    ],
    [
      'no closing delimiter',
      'multipart/related; boundary=b',
      mp(['--b', 'Content-ID: <a>', '', 'x']),
      /no closing delimiter/,
    ],
    [
      'no closing delimiter after a part',
      'multipart/related; boundary=b',
      mp(['--b', 'Content-ID: <a>', '', 'x', '--b']),
      /no closing delimiter/,
    ],
    [
      'part without header separator',
      'multipart/related; boundary=b',
      mp(['--b', 'Content-ID: <a>', 'x', '--b--']),
      /MIME part 1: no blank line between headers and body/,
    ],
    [
      'malformed header',
      'multipart/related; boundary=b',
      mp(['--b', 'no colon here', '', 'x', '--b--']),
      /MIME part 1: malformed header line/,
    ],
    [
      'invalid base64',
      'multipart/related; boundary=b',
      mp(['--b', 'Content-Transfer-Encoding: base64', '', '@@@@', '--b--']),
      /invalid base64/,
    ],
    [
      'unknown encoding',
      'multipart/related; boundary=b',
      mp(['--b', 'Content-Transfer-Encoding: x-uue', '', 'x', '--b--']),
      /unsupported Content-Transfer-Encoding "x-uue"/,
    ],
    [
      'start part absent',
      'multipart/related; boundary=b; start="<nope>"',
      mp(['--b', 'Content-ID: <a>', '', 'x', '--b--']),
      /start part <nope> not found/,
    ],
    [
      'duplicate Content-ID',
      'multipart/related; boundary=b',
      mp(['--b', 'Content-ID: <a>', '', 'x', '--b', 'Content-ID: <a>', '', 'y', '--b--']),
      /duplicate Content-ID <a>/,
    ],
    ['no part', 'multipart/related; boundary=b', mp(['--b--']), /no part/],
  ];
  for (const [name, ct, body, message] of bad) {
    it(`refuses: ${name}`, () => {
      expect(() => parseMultipart(ct, body)).toThrow(MimeError);
      expect(() => parseMultipart(ct, body)).toThrow(message);
    });
  }
});
