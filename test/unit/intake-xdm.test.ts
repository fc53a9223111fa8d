/**
 * Flow B intake (src/intake/xdm.ts): IHE_XDM.ZIP archives received by MSSanté, read defensively.
 *
 * Documents: the CDAs of the ANS examples of the volet "Transmission au LPS d'un document CDA provenant
 * d'un courriel MSSanté" (Vague 2): CR_Radio_CDAN1_v1.XML (first version) and CR_Radio_CDAN1_v2.XML
 * (second version, relatedDocument RPLC → v1). Archives: built by our own sending side (buildXdm), then
 * taken apart and rebuilt with fflate to make them wrong in one way at a time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { strToU8, UnzipInflate, unzipSync, Zip, ZipDeflate, zipSync, type Zippable } from 'fflate';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { readCdaHeader, type CdaHeader } from '../../src/cda/header.js';
import {
  DEFAULT_LIMITS,
  IntakeError,
  readXdm,
  type Intake,
  type IntakeLimits,
  type IntakeReason,
} from '../../src/xdm/read.js';
import { buildXdm, type XdmOptions } from '../../src/xdm/build.js';
import { packageRoot } from '../../src/util/paths.js';
import type { DocumentEntry, SubmissionSet, XdsPatientId } from '../../src/xds/model.js';

// ---------------------------------------------------------------------------------------------------------
// The ANS documents and our own XDM of them

const VAGUE2 = join(packageRoot(), '..', 'shared', 'reference', 'ansforge', 'hl7v2-exemples', 'Vague 2');
const LPS = join(
  VAGUE2,
  readdirSync(VAGUE2).find((d) => d.startsWith('Trans_LPS_CDA_MSS'))!,
  'TRANSMISSION_LPS_DOC_CDA_COURRIEL_FROM_MSSANTE_V1.1',
);
const V1 = readFileSync(join(LPS, 'Transmission initiale MDM', 'CR_Radio_CDAN1_v1.XML'));
const V2 = readFileSync(join(LPS, 'Remplacement MDM', 'CR_Radio_CDAN1_v2.XML'));
const V1_ID = '1.2.250.1.71.4.2.2.120456789.71024000081';
const V2_ID = '1.2.250.1.71.4.2.2.120456789.71024000082';
const INS = '279035121518989';
const INS_OID = '1.2.250.1.213.1.4.10';
const META = 'IHE_XDM/SUBSET01/METADATA.XML';
const DOC = 'IHE_XDM/SUBSET01/DOC0001.XML';

const OPTS: XdmOptions = {
  sender: 'pfi@hopital-y.mssante.fr',
  softwareName: 'pfi-engine test',
  now: new Date('2024-03-05T14:07:42Z'),
};
const PATIENT: XdsPatientId = { id: INS, authority: INS_OID, type: 'NH' };
const CX = `${INS}^^^&${INS_OID}&ISO^NH`;
const AUTHOR = {
  person: { id: '801234564895', idAuthority: '1.2.250.1.71.4.2.1', family: 'Eric', given: 'Thomas' },
  institutions: [{ name: 'Organisation-Y', id: '1120456789', idAuthority: '1.2.250.1.71.4.2.2' }],
  roles: [],
  specialties: [],
};

let uuids = 0;
const uuid = () => `urn:uuid:00000000-0000-4000-8000-${String(++uuids).padStart(12, '0')}`;

/** A DocumentEntry for a CDA, as a sender would fill it from the header (hash and size: buildXdm's). */
function entryOf(cda: Buffer): DocumentEntry {
  let h: CdaHeader;
  try {
    h = readCdaHeader(cda);
  } catch {
    h = { ...readCdaHeader(V1), id: { root: '1.2.250.1.999.2.1' } }; // not a CDA: an entry all the same
  }
  return {
    entryUUID: uuid(),
    uniqueId: h.id.extension ? `${h.id.root}^${h.id.extension}` : h.id.root,
    mimeType: 'text/xml',
    title: h.title ?? 'Document',
    typeCode: { code: h.code.code!, scheme: h.code.codeSystem!, display: h.code.displayName! },
    classCode: { code: '10', scheme: '1.2.250.1.213.1.1.4.1', display: 'Compte rendu' },
    formatCode: {
      code: 'urn:ihe:iti:xds-sd:pdf:2008',
      scheme: '1.3.6.1.4.1.19376.1.2.3',
      display: 'Document à corps non structuré en Pdf/A-1',
    },
    confidentialityCodes: [{ code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' }],
    healthcareFacilityTypeCode: {
      code: 'SA01',
      scheme: '1.2.250.1.71.4.2.4',
      display: 'Etablissement Public de santé',
    },
    practiceSettingCode: { code: 'ETABLISSEMENT', scheme: '1.2.250.1.213.1.1.4.9', display: 'Etablissement de santé' },
    languageCode: 'fr-FR',
    creationTime: '20210409084914',
    patientId: PATIENT,
    sourcePatientId: PATIENT,
    sourcePatientInfo: [],
    authors: [AUTHOR],
    eventCodes: [],
    referenceIds: [],
    hash: '',
    size: 0,
  };
}

function submissionSet(): SubmissionSet {
  return {
    entryUUID: uuid(),
    uniqueId: '1.2.250.1.999.1.20240305140742',
    sourceId: '1.2.250.1.999',
    submissionTime: '20240305140742',
    contentTypeCode: { code: '04', scheme: '1.2.250.1.213.1.1.4.2.2', display: 'Hospitalisation' },
    patientId: PATIENT,
    author: AUTHOR,
  };
}

/** Our own XDM of these documents, and the entries it was built from. */
function xdm(docs: Buffer[], action?: 'C' | 'D'): { zip: Buffer; entries: DocumentEntry[]; set: SubmissionSet } {
  const entries = docs.map(entryOf);
  const set = submissionSet();
  const zip = buildXdm(
    set,
    docs.map((bytes, i) => ({ entry: entries[i]!, bytes })),
    action ? { ...OPTS, action } : OPTS,
  );
  return { zip, entries, set };
}

type Files = Record<string, Uint8Array>;
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

/** The archive taken apart, changed, and zipped again. */
function rezip(zip: Buffer, change: (files: Files) => void): Buffer {
  const files = unzipSync(zip);
  change(files);
  return Buffer.from(zipSync(files as Zippable));
}

function editMetadata(files: Files, edit: (xml: string) => string, name = META): void {
  const before = text(files[name]!);
  const after = edit(before);
  expect(after).not.toBe(before); // the edit found what it meant to change
  files[name] = strToU8(after);
}

function refusal(zip: Buffer, limits?: IntakeLimits): IntakeError {
  try {
    readXdm(zip, limits);
  } catch (e) {
    expect(e).toBeInstanceOf(IntakeError);
    return e as IntakeError;
  }
  throw new Error('readXdm accepted the archive');
}

function expectRefused(zip: Buffer, reason: IntakeReason, message?: RegExp, limits?: IntakeLimits): IntakeError {
  const e = refusal(zip, limits);
  expect(e.reason, e.message).toBe(reason);
  if (message) expect(e.message).toMatch(message);
  // Operator-readable, and no patient data in it.
  expect(e.message).not.toContain(INS);
  expect(e.message).not.toMatch(/PAT-TROIS|DOMINIQUE/i);
  return e;
}

/** A CDA of the v1 example with another document id (and optionally another INS). */
function variant(id: string, ins = INS): Buffer {
  const s = V1.toString('utf8')
    .replace(`<id root="${V1_ID}"></id>`, `<id root="${id}"></id>`)
    .replace(`<id extension="${INS}" root="${INS_OID}">`, `<id extension="${ins}" root="${INS_OID}">`);
  expect(readCdaHeader(Buffer.from(s)).id.root).toBe(id);
  return Buffer.from(s);
}

// ---------------------------------------------------------------------------------------------------------

describe('round trip: an XDM built by our sending side reads back', () => {
  const { zip, entries, set } = xdm([V1]);
  const intake = readXdm(zip);

  test('one new document, the same uniqueId, entryUUID and bytes', () => {
    expect(intake.operation).toBe('new');
    expect(intake.replaces).toBeUndefined();
    expect(intake.documents).toHaveLength(1);
    const [d] = intake.documents;
    expect(d!.fileName).toBe(DOC);
    expect(d!.bytes.equals(V1)).toBe(true);
    expect(d!.entry).toEqual({
      uniqueId: V1_ID,
      entryUUID: entries[0]!.entryUUID,
      typeCode: { code: '18748-4', scheme: '2.16.840.1.113883.6.1', display: "CR d'imagerie médicale" },
      title: 'Pelvis Masculin',
      mimeType: 'text/xml',
      hash: sha1(V1),
      size: V1.length,
      patientId: CX,
      creationTime: '20210409084914',
      formatCode: 'urn:ihe:iti:xds-sd:pdf:2008',
      confidentialityCodes: ['N'],
    });
    expect(d!.cda.id).toEqual({ root: V1_ID });
    expect(d!.cda.body.kind).toBe('nonXMLBody');
  });

  test('the submission set as written', () => {
    expect(intake.submissionSet).toEqual({
      uniqueId: set.uniqueId,
      sourceId: set.sourceId,
      patientId: CX,
      submissionTime: '20240305140742',
      authorPerson: '801234564895^Eric^Thomas^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS',
      authorInstitution: ['Organisation-Y^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1120456789'],
    });
  });

  test('the patient from the CDA recordTarget: INS and traits', () => {
    expect(intake.patient).toEqual({
      ins: { matricule: INS, oid: INS_OID },
      ids: [{ id: INS, root: INS_OID }],
      birthName: 'PAT-TROIS',
      givenNames: ['DOMINIQUE'],
      firstGivenName: 'DOMINIQUE',
      sex: 'F',
      birthDate: '19790328',
      birthPlaceCode: '63220',
    } satisfies Intake['patient']);
  });

  test('INDEX.HTM and README.TXT are optional', () => {
    const bare = rezip(zip, (f) => {
      delete f['INDEX.HTM'];
      delete f['README.TXT'];
    });
    expect(readXdm(bare).documents[0]!.bytes.equals(V1)).toBe(true);
  });

  test(
    'another writer: other namespace prefixes, ' + 'a URI from the root, a lower-case file name, an upper-case hash',
    () => {
      const other = rezip(zip, (f) => {
        editMetadata(f, (x) =>
          x
            .replace(/<(\/?)rim:/g, '<$1ns2:')
            .replace('xmlns:rim=', 'xmlns:ns2=')
            .replace('<ns2:Value>DOC0001.XML</ns2:Value>', `<ns2:Value>${DOC}</ns2:Value>`)
            .replace(sha1(V1), sha1(V1).toUpperCase()),
        );
        f['IHE_XDM/SUBSET01/doc0001.xml'] = f[DOC]!;
        delete f[DOC];
      });
      const d = readXdm(other).documents[0]!;
      expect(d.fileName).toBe('IHE_XDM/SUBSET01/doc0001.xml');
      expect(d.entry.uniqueId).toBe(V1_ID);
      expect(d.bytes.equals(V1)).toBe(true);
    },
  );

  test(
    'an archive written with data descriptors ' + '(streaming writers) whose compressed bytes hold zip signatures',
    () => {
      // Random bytes deflate to stored blocks: the signatures stay as they are in the compressed data.
      // fflate's Unzip stream looks for them to find the end of such an entry, and cuts it there.
      const files = unzipSync(zip);
      const extra = randomBytes(200_000);
      for (const [at, sig] of [
        [1000, 0x02014b50],
        [50_000, 0x08074b50],
        [120_000, 0x04034b50],
      ] as const)
        extra.writeUInt32LE(sig, at);
      files['IHE_XDM/SUBSET01/EXTRA.BIN'] = extra;
      const chunks: Uint8Array[] = [];
      const writer = new Zip((err, data) => {
        if (err) throw err;
        chunks.push(data);
      });
      for (const [name, bytes] of Object.entries(files)) {
        const f = new ZipDeflate(name, { level: 6 });
        writer.add(f);
        f.push(bytes, true);
      }
      writer.end();
      const streamed = Buffer.concat(chunks);
      expect(streamed.readUInt16LE(6) & 8).toBe(8); // data descriptor flag
      const d = readXdm(streamed).documents[0]!;
      expect(d.bytes.equals(V1)).toBe(true);
    },
  );
});

describe('what the sender asks', () => {
  test('v2 (relatedDocument RPLC), no action slot: replace, replaces = v1', () => {
    const intake = readXdm(xdm([V2]).zip);
    expect(intake.operation).toBe('replace');
    expect(intake.replaces).toBe(V1_ID);
    expect(intake.replaces).toBe(entryOf(V1).uniqueId); // the uniqueId v1 was sent with
    expect(intake.documents[0]!.entry.uniqueId).toBe(V2_ID);
  });

  test('action slot C: replace', () => {
    const intake = readXdm(xdm([V2], 'C').zip);
    expect(intake.operation).toBe('replace');
    expect(intake.replaces).toBe(V1_ID);
  });

  test('action slot D: delete; the document to delete is the one carried, replaces its parent', () => {
    const intake = readXdm(xdm([V2], 'D').zip);
    expect(intake.operation).toBe('delete');
    expect(intake.documents[0]!.entry.uniqueId).toBe(V2_ID);
    expect(intake.replaces).toBe(V1_ID);
  });

  test('action slot D on a first version: delete, no parent', () => {
    const intake = readXdm(xdm([V1], 'D').zip);
    expect(intake.operation).toBe('delete');
    expect(intake.replaces).toBeUndefined();
  });

  test('an RPLC association whose target is a uniqueId: replace, replaces = the target', () => {
    const { zip, entries } = xdm([V1]);
    const assoc = (target: string) =>
      rezip(zip, (f) =>
        editMetadata(f, (x) =>
          x.replace(
            '</rim:RegistryObjectList>',
            '<rim:Association associationType="urn:ihe:iti:2007:AssociationType:RPLC" id="as9" ' +
              `sourceObject="${entries[0]!.entryUUID}" targetObject="${target}"/></rim:RegistryObjectList>`,
          ),
        ),
      );
    const byUniqueId = readXdm(assoc('1.2.250.1.71.4.2.2.120456789.71024000080'));
    expect(byUniqueId.operation).toBe('replace');
    expect(byUniqueId.replaces).toBe('1.2.250.1.71.4.2.2.120456789.71024000080');
    const byUuid = readXdm(assoc('urn:uuid:6f0c1f4e-2a3b-4c5d-8e9f-0a1b2c3d4e5f'));
    expect(byUuid.operation).toBe('replace');
    expect(byUuid.replaces).toBeUndefined();
  });

  test('an action slot that is neither C nor D is refused', () => {
    const zip = rezip(xdm([V1], 'C').zip, (f) =>
      editMetadata(f, (x) => x.replace('<rim:Value>C</rim:Value>', '<rim:Value>X</rim:Value>')),
    );
    expectRefused(zip, 'bad-metadata', /action slot "X"/);
  });
});

describe('several SUBSET folders', () => {
  const V1B = variant('1.2.250.1.71.4.2.2.120456789.71024000083');
  /** SUBSET01 from one XDM, SUBSET02 from another. */
  const twoSubsets = (a: Buffer, b: Buffer) =>
    rezip(a, (f) => {
      for (const [name, bytes] of Object.entries(unzipSync(b))) {
        if (name.startsWith('IHE_XDM/SUBSET01/')) f[name.replace('SUBSET01', 'SUBSET02')] = bytes;
      }
    });

  test('documents of all subsets are read; the submission set is the first one’s', () => {
    const first = xdm([V1]);
    const intake = readXdm(twoSubsets(first.zip, xdm([V1B]).zip));
    expect(intake.operation).toBe('new');
    expect(intake.documents.map((d) => [d.fileName, d.entry.uniqueId])).toEqual([
      [DOC, V1_ID],
      ['IHE_XDM/SUBSET02/DOC0001.XML', '1.2.250.1.71.4.2.2.120456789.71024000083'],
    ]);
    expect(intake.submissionSet.uniqueId).toBe(first.set.uniqueId);
  });

  test('documents asking different operations are refused', () => {
    expectRefused(twoSubsets(xdm([V1]).zip, xdm([V2]).zip), 'bad-metadata', /different operations/);
  });

  test('documents of different patients are refused', () => {
    const other = variant('1.2.250.1.71.4.2.2.120456789.71024000084', '179035121518988');
    const e = expectRefused(twoSubsets(xdm([V1]).zip, xdm([other]).zip), 'bad-metadata', /one patient/);
    expect(e.message).not.toContain('179035121518988');
  });
});

describe('a zip that is not one', () => {
  const { zip } = xdm([V1]);

  test('not a zip at all', () => {
    expectRefused(Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n'), 'not-zip');
    expectRefused(Buffer.alloc(0), 'not-zip');
    expectRefused(V1, 'not-zip');
  });

  test('truncated', () => {
    expectRefused(zip.subarray(0, zip.length - 10), 'not-zip', /truncated/);
    expectRefused(zip.subarray(0, zip.length >> 1), 'not-zip');
    expectRefused(zip.subarray(0, 100), 'not-zip');
  });

  test('a flipped byte in a document’s compressed data', () => {
    const at = dataStart(zip, DOC) + 5000;
    const bad = Buffer.from(zip);
    bad[at] ^= 0x55;
    expectRefused(bad, 'not-zip', /DOC0001\.XML/);
  });

  test('whatever byte is flipped: refused with an IntakeError, or read with the very same document', () => {
    for (let at = 0; at < zip.length; at += Math.max(1, Math.floor(zip.length / 60))) {
      for (const at2 of [at, zip.length - 1 - (at % 200)]) {
        const bad = Buffer.from(zip);
        bad[at2] ^= 0xff;
        let intake: Intake;
        try {
          intake = readXdm(bad);
        } catch (e) {
          expect(e, `byte ${at2}`).toBeInstanceOf(IntakeError);
          continue;
        }
        expect(intake.documents[0]!.bytes.equals(V1), `byte ${at2}`).toBe(true);
      }
    }
  });
});

describe('unsafe entry names', () => {
  test.each([
    ['../EVIL.XML', /"\.\." segment/],
    ['IHE_XDM/SUBSET01/../../EVIL.XML', /"\.\." segment/],
    ['IHE_XDM/.. /EVIL.XML', /"\.\." segment/],
    ['/etc/passwd', /absolute path/],
    ['C:/WINDOWS/EVIL.XML', /drive letter/],
    ['IHE_XDM\\SUBSET01\\DOC0001.XML', /backslash/],
    ['IHE_XDM/SUBSET01/DOC0001.XML\0.EXE', /NUL/],
  ])('%j', (name, message) => {
    const zip = rezip(xdm([V1]).zip, (f) => {
      f[name] = strToU8('x');
    });
    expectRefused(zip, 'path-traversal', message);
  });

  test('a URI slot that leaves the subset', () => {
    const zip = rezip(xdm([V1]).zip, (f) =>
      editMetadata(f, (x) =>
        x.replace('<rim:Value>DOC0001.XML</rim:Value>', '<rim:Value>../../../etc/passwd</rim:Value>'),
      ),
    );
    expectRefused(zip, 'path-traversal', /URI/);
  });
});

describe('limits', () => {
  test('more entries than maxEntries', () => {
    const zip = rezip(xdm([V1]).zip, (f) => {
      for (let i = 0; i < DEFAULT_LIMITS.maxEntries; i++) f[`IHE_XDM/SUBSET01/X${i}.TXT`] = strToU8('x');
    });
    expectRefused(zip, 'too-many-entries', /over the limit of 200/);
    expectRefused(xdm([V1]).zip, 'too-many-entries', /4 entries/, { ...DEFAULT_LIMITS, maxEntries: 3 });
  });

  test('an archive over maxArchiveBytes, or inflating over maxExpandedBytes / maxDocumentBytes', () => {
    const { zip } = xdm([V1]);
    expectRefused(zip, 'zip-bomb', /the archive is/, { ...DEFAULT_LIMITS, maxArchiveBytes: 1000 });
    expectRefused(zip, 'zip-bomb', /in all/, { ...DEFAULT_LIMITS, maxExpandedBytes: 100_000 });
    expectRefused(zip, 'zip-bomb', /per entry/, { ...DEFAULT_LIMITS, maxDocumentBytes: 100_000 });
  });

  test('entries sharing their bytes (overlapping entries)', () => {
    expectRefused(
      duplicateCentralEntry(Buffer.from(zipSync({ 'IHE_XDM/SUBSET01/DOC0001.XML': V1 }))),
      'zip-bomb',
      /overlap/,
    );
  });

  // Linear: the inflated pieces are joined once (copies counted), not once per piece. How fast: `npm run
  // bench` (scenario parsers); the 60 s limit only catches a read gone quadratic.
  test('a 30 MiB document is read, its bytes copied once', () => {
    // The v1 CDA with a 30 MiB base64 body (random: it compresses as a PDF does).
    const open = V1.indexOf('>', V1.indexOf('<text')) + 1;
    const close = V1.lastIndexOf('</text>');
    const body = Buffer.from(randomBytes((30 * 1024 * 1024 * 3) / 4).toString('base64'));
    const big = Buffer.concat([V1.subarray(0, open), body, V1.subarray(close)]);
    const { zip } = xdm([big]);
    const concat = vi.spyOn(Buffer, 'concat');
    let intake: Intake;
    let copied: number;
    try {
      intake = readXdm(zip);
    } finally {
      const bytes = (list: readonly Uint8Array[], length?: number) => length ?? list.reduce((m, b) => m + b.length, 0);
      copied = concat.mock.calls.reduce((n, [list, length]) => n + bytes(list, length), 0);
      concat.mockRestore();
    }
    expect(intake.documents[0]!.bytes.equals(big)).toBe(true);
    expect(intake.documents[0]!.entry.uniqueId).toBe(V1_ID);
    expect(copied).toBeGreaterThanOrEqual(big.length);
    expect(copied).toBeLessThan(2 * big.length);
  }, 60_000);
});

describe('zip bomb: 300 MiB of zeros deflated at level 9', () => {
  let bomb: Buffer;
  beforeAll(() => {
    const chunks: Uint8Array[] = [];
    const writer = new Zip((err, data) => {
      if (err) throw err;
      chunks.push(data);
    });
    const f = new ZipDeflate(DOC, { level: 9 });
    writer.add(f);
    const zeros = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 300; i++) f.push(zeros, i === 299);
    writer.end();
    bomb = Buffer.concat(chunks);
  }, 60_000);

  /**
   * readXdm on it: refused as a bomb; returns the bytes inflated meanwhile. That count is both the work done
   * and the most memory the refusal can have held (no clock, no RSS reading: those depend on the machine).
   */
  function defused(zip: Buffer, message: RegExp): number {
    let inflated = 0;
    const counted = new WeakSet<UnzipInflate>();
    const push = UnzipInflate.prototype.push;
    const spy = vi.spyOn(UnzipInflate.prototype, 'push');
    spy.mockImplementation(function (this: UnzipInflate, chunk, final) {
      if (!counted.has(this)) {
        counted.add(this);
        const ondata = this.ondata;
        this.ondata = (err, data, last) => {
          if (data) inflated += data.length;
          ondata.call(this, err, data, last);
        };
      }
      push.call(this, chunk, final);
    });
    try {
      expectRefused(zip, 'zip-bomb', message);
    } finally {
      spy.mockRestore();
    }
    return inflated;
  }
  /** What one step of the reader (16 KiB of deflate, at most ~1032:1) can inflate at most. */
  const STEP = 17 * 1024 * 1024;

  test('well under 1 MiB', () => {
    expect(bomb.length).toBeLessThan(1024 * 1024);
  });

  test('honest about its size: refused before anything is inflated', () => {
    expect(defused(bomb, /declares 314572800 bytes/)).toBe(0);
  });

  test('lying about its size (1000 bytes declared): stopped at the first bytes past it', () => {
    const inflated = defused(withDeclaredSize(bomb, 1000), /inflates past the 1000 bytes it declares/);
    expect(inflated).toBeGreaterThan(1000);
    expect(inflated).toBeLessThan(1000 + STEP);
  });

  test('declaring a size within the limits (59 MiB): stopped by the ratio, long before the limits', () => {
    const inflated = defused(withDeclaredSize(bomb, 59 * 1024 * 1024), /100 times its own size/);
    expect(inflated).toBeGreaterThan(100 * bomb.length);
    expect(inflated).toBeLessThan(100 * bomb.length + STEP);
    expect(inflated).toBeLessThan(59 * 1024 * 1024);
  });
});

describe('metadata and documents', () => {
  const { zip } = xdm([V1]);

  test('no IHE_XDM/<subset>/METADATA.XML', () => {
    expectRefused(Buffer.from(zipSync({})), 'no-metadata');
    const misplaced = rezip(zip, (f) => {
      f['METADATA.XML'] = f[META]!;
      delete f[META];
    });
    expectRefused(misplaced, 'no-metadata');
  });

  test.each([
    ['not XML', 'this is <not XML', /not XML/],
    ['another root', '<?xml version="1.0"?><html><body/></html>', /root element is html/],
    [
      'no ExtrinsicObject',
      '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" ' +
        'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">' +
        '<rim:RegistryObjectList/></lcm:SubmitObjectsRequest>',
      /no rim:ExtrinsicObject/,
    ],
    [
      'a DOCTYPE (billion laughs)',
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>' +
        '<lolz>&lol2;</lolz>',
      /DOCTYPE/,
    ],
    ['invalid UTF-8', Buffer.from([0x3c, 0x61, 0xc3, 0x28, 0x2f, 0x3e]), /not XML/],
  ])('METADATA.XML: %s', (_what, content, message) => {
    const bad = rezip(zip, (f) => {
      f[META] = typeof content === 'string' ? strToU8(content) : content;
    });
    expectRefused(bad, 'bad-metadata', message);
  });

  test('the document the metadata names is not in the archive', () => {
    expectRefused(
      rezip(zip, (f) => delete f[DOC]),
      'missing-document',
      /names "DOC0001\.XML", which is not in the archive/,
    );
    expectRefused(
      rezip(zip, (f) => editMetadata(f, (x) => x.replace(/<rim:Slot name="URI">.*?<\/rim:Slot>/s, ''))),
      'missing-document',
      /no URI slot/,
    );
  });

  test('a wrong hash', () => {
    const bad = rezip(zip, (f) => editMetadata(f, (x) => x.replace(sha1(V1), sha1(V2))));
    expectRefused(bad, 'hash-mismatch', new RegExp(`hash slot says "${sha1(V2)}", the SHA-1 of ${DOC} is ${sha1(V1)}`));
  });

  test('a wrong size', () => {
    const bad = rezip(zip, (f) =>
      editMetadata(f, (x) =>
        x.replace(`<rim:Value>${V1.length}</rim:Value>`, `<rim:Value>${V1.length + 1}</rim:Value>`),
      ),
    );
    expectRefused(bad, 'size-mismatch', new RegExp(`size slot says ${V1.length + 1} bytes, ${DOC} has ${V1.length}`));
  });

  test('a document that is not a CDA', () => {
    const pdf = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
    expectRefused(xdm([pdf]).zip, 'not-cda', /DOC0001\.XML: not a CDA document/);
    expectRefused(xdm([Buffer.from('<?xml version="1.0"?><html><body/></html>')]).zip, 'not-cda');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Zip surgery

/** Where an entry's compressed data starts (its local header, read through the central directory). */
function dataStart(zip: Buffer, name: string): number {
  const eocd = zip.length - 22;
  let p = zip.readUInt32LE(eocd + 16);
  for (;;) {
    const nameLength = zip.readUInt16LE(p + 28);
    if (zip.toString('latin1', p + 46, p + 46 + nameLength) === name) {
      const l = zip.readUInt32LE(p + 42);
      return l + 30 + zip.readUInt16LE(l + 26) + zip.readUInt16LE(l + 28);
    }
    p += 46 + nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
}

/** The archive with its (only) entry's inflated size, in the central directory, set to size. */
function withDeclaredSize(zip: Buffer, size: number): Buffer {
  const out = Buffer.from(zip);
  const cd = out.readUInt32LE(out.length - 22 + 16);
  expect(out.readUInt32LE(cd)).toBe(0x02014b50);
  out.writeUInt32LE(size, cd + 24);
  return out;
}

/** The archive with its (only) central directory entry written twice: two entries, one local file. */
function duplicateCentralEntry(zip: Buffer): Buffer {
  const eocd = zip.length - 22;
  const cdSize = zip.readUInt32LE(eocd + 12);
  const cdOffset = zip.readUInt32LE(eocd + 16);
  const entry = zip.subarray(cdOffset, cdOffset + cdSize);
  const end = Buffer.from(zip.subarray(eocd));
  end.writeUInt16LE(2, 8);
  end.writeUInt16LE(2, 10);
  end.writeUInt32LE(cdSize * 2, 12);
  return Buffer.concat([zip.subarray(0, cdOffset + cdSize), entry, end]);
}
