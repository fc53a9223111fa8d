import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { unzipSync } from 'fflate';
import { describe, expect, test } from 'vitest';
import { extractDocuments } from '../../src/cda/extract.js';
import { splitMessages } from '../../src/cli/split.js';
import { interpret, type Submission } from '../../src/flows/transmission/interpret.js';
import { loadTransmissionMapping } from '../../src/flows/transmission/mapping.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { buildXdm, XDM_ACTION_SLOT, type XdmDocument } from '../../src/xdm/build.js';
import { cx, XDS_UUID } from '../../src/xds/ebrim.js';
import { Terminology } from '../../src/xds/terminology.js';
import { packageRoot } from '../../src/util/paths.js';

const ROOT = packageRoot();
const REF = join(ROOT, '..', 'shared', 'reference', 'ansforge', 'hl7v2-exemples');
const V2 = join(REF, 'Vague 2', 'Trans_Doc-CDA-HL7V2', 'TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1');
const V20 = join(REF, 'Volets', 'TRANS_DOC_CDA_HL7V2', 'V2.0');
const terminology = Terminology.load(join(ROOT, 'mappings', 'terminology.json'));
const mapping = loadTransmissionMapping(join(ROOT, 'mappings', 'transmission.yaml'));

/** A request of the ANS examples: the submission and the stored bytes of each document. */
function load(file: string): { sub: Submission; docs: XdmDocument[] } {
  const msg = Hl7Message.parse(splitMessages(readFileSync(file))[0]!);
  const sub = interpret(msg, { terminology, mapping });
  const raws = extractDocuments(msg);
  const docs = sub.documents.map((d) => ({ entry: d.entry, bytes: raws.find((r) => r.obx === d.obx)!.bytes }));
  return { sub, docs };
}

const NOW = new Date('2024-03-05T14:07:42Z');
const OPTS = { sender: 'pfi@hopital.test-ci-sis.mssante.fr', softwareName: 'pfi-engine 0.1.0', now: NOW };

const asArray = new Set(['ExtrinsicObject', 'Slot', 'Value', 'Classification', 'ExternalIdentifier', 'Association']);
const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  isArray: (name) => asArray.has(name),
});
/** An element as `xml` reads it: its attributes as '@name' strings, the asArray elements as lists. */
interface Node {
  readonly [attribute: `@${string}`]: string;
  readonly Slot?: Node[];
  readonly ValueList?: { readonly Value: unknown[] };
  readonly ExtrinsicObject?: Node[];
  readonly RegistryPackage?: Node;
  readonly Association?: Node[];
  readonly Classification?: Node[];
  readonly ExternalIdentifier?: Node[];
}
const slot = (o: Node, name: string): string[] | undefined =>
  o.Slot?.find((s: Node) => s['@name'] === name)?.ValueList!.Value.map(String);

/** The local file headers of a zip, in order: name, compression method, DOS time and date. */
function localHeaders(zip: Buffer): { name: string; method: number; time: number; date: number }[] {
  const out = [];
  let at = 0;
  while (zip.readUInt32LE(at) === 0x04034b50) {
    const compressed = zip.readUInt32LE(at + 18);
    const nameLength = zip.readUInt16LE(at + 26);
    const extra = zip.readUInt16LE(at + 28);
    out.push({
      name: zip.toString('latin1', at + 30, at + 30 + nameLength),
      method: zip.readUInt16LE(at + 8),
      time: zip.readUInt16LE(at + 10),
      date: zip.readUInt16LE(at + 12),
    });
    at += 30 + nameLength + extra + compressed;
  }
  return out;
}

describe('IHE_XDM.ZIP of the PAT-TROIS CR d’imagerie (Vague 2 MDM^T02, CDA N1)', () => {
  const { sub, docs } = load(join(V2, 'MDM', 'Transmission initiale MDM', 'message_MDM_CR_Radio_INIT_N1_Base64.er7'));
  const zip = buildXdm(sub.submissionSet, docs, OPTS);
  const files = unzipSync(zip);
  const metadata = Buffer.from(files['IHE_XDM/SUBSET01/METADATA.XML']!).toString('utf8');

  test('the XDM layout: INDEX.HTM and README.TXT at the root, the metadata and the document in SUBSET01', () => {
    expect(Object.keys(files).sort()).toEqual([
      'IHE_XDM/SUBSET01/DOC0001.XML',
      'IHE_XDM/SUBSET01/METADATA.XML',
      'INDEX.HTM',
      'README.TXT',
    ]);
    // ISO 9660 names: 8.3, upper case, for every path component.
    for (const path of Object.keys(files))
      for (const part of path.split('/')) expect(part).toMatch(/^[A-Z0-9_]{1,8}(\.[A-Z0-9]{1,3})?$/);
  });

  test('DOC0001.XML is the stored CDA, byte for byte', () => {
    expect(Buffer.from(files['IHE_XDM/SUBSET01/DOC0001.XML']!).equals(docs[0]!.bytes)).toBe(true);
  });

  test(
    'METADATA.XML: well-formed ebRIM, ' +
      'the submission set and the entry with its patientId, typeCode, URI, hash and size',
    () => {
      expect(XMLValidator.validate(metadata)).toBe(true);
      const list = xml.parse(metadata).SubmitObjectsRequest.RegistryObjectList as Node;
      const [eo] = list.ExtrinsicObject as Node[];
      const entry = docs[0]!.entry;
      const bytes = Buffer.from(files['IHE_XDM/SUBSET01/DOC0001.XML']!);
      expect(eo!['@id']).toBe(entry.entryUUID);
      expect(slot(eo!, 'URI')).toEqual(['DOC0001.XML']);
      expect(slot(eo!, 'hash')).toEqual([createHash('sha1').update(bytes).digest('hex')]);
      expect(slot(eo!, 'size')).toEqual([String(bytes.length)]);
      expect(slot(eo!, XDM_ACTION_SLOT)).toBeUndefined();
      const ids = Object.fromEntries(
        (eo!.ExternalIdentifier as Node[]).map((e) => [e['@identificationScheme'], e['@value']]),
      );
      expect(ids[XDS_UUID.documentEntry.patientId]).toBe('279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH');
      expect(ids[XDS_UUID.documentEntry.uniqueId]).toBe(entry.uniqueId);
      const type = (eo!.Classification as Node[]).find(
        (c) => c['@classificationScheme'] === XDS_UUID.documentEntry.typeCode,
      )!;
      expect(type['@nodeRepresentation']).toBe('18748-4');
      const set = list.RegistryPackage as Node;
      expect(set['@id']).toBe(sub.submissionSet.entryUUID);
      const setIds = Object.fromEntries(
        (set.ExternalIdentifier as Node[]).map((e) => [e['@identificationScheme'], e['@value']]),
      );
      expect(setIds[XDS_UUID.submissionSet.patientId]).toBe(cx(sub.submissionSet.patientId));
      expect(list.Association).toHaveLength(1);
    },
  );

  test('hash and size are recomputed from the bytes, whatever the entry said', () => {
    const stale = [{ entry: { ...docs[0]!.entry, hash: '0'.repeat(40), size: 1 }, bytes: docs[0]!.bytes }];
    const again = buildXdm(sub.submissionSet, stale, OPTS);
    expect(again.equals(zip)).toBe(true);
  });

  test(
    'INDEX.HTM lists the document by its title and links README.TXT; ' + 'README.TXT names the sender and the software',
    () => {
      const index = Buffer.from(files['INDEX.HTM']!).toString('utf8');
      expect(XMLValidator.validate(index)).toBe(true);
      expect(index).toContain('href="IHE_XDM/SUBSET01/DOC0001.XML"');
      expect(index).toContain('href="README.TXT"');
      expect(index).toContain(docs[0]!.entry.title.replace(/'/g, "'"));
      expect(index).not.toContain('PAT-TROIS');
      const readme = Buffer.from(files['README.TXT']!).toString('latin1');
      expect(readme).toMatch(/^[\x20-\x7e\r\n]*$/);
      expect(readme).toContain(OPTS.sender);
      expect(readme).toContain(OPTS.softwareName);
      expect(readme).not.toContain('PAT-TROIS');
    },
  );

  test('deterministic: same input and now, same bytes; entry dates are now (UTC), documents deflated', () => {
    expect(buildXdm(sub.submissionSet, docs, OPTS).equals(zip)).toBe(true);
    expect(buildXdm(sub.submissionSet, docs, { ...OPTS, now: new Date(NOW.getTime() + 3600_000) }).equals(zip)).toBe(
      false,
    );
    const headers = localHeaders(zip);
    expect(headers.map((h) => h.name).sort()).toEqual(Object.keys(files).sort());
    for (const h of headers) {
      expect(h.date).toBe(((2024 - 1980) << 9) | (3 << 5) | 5);
      expect(h.time).toBe((14 << 11) | (7 << 5) | (42 >> 1));
    }
    expect(headers.find((h) => h.name.endsWith('DOC0001.XML'))!.method).toBe(8);
  });
});

describe('IHE_XDM.ZIP of an ORU^R01 replacing an N1 and an N3 (V2.0)', () => {
  const { sub, docs } = load(join(V20, 'ORU', 'Remplacement ORU', 'message_ORU_CR_Bio_RPLC_N1_Base64_N3_Base64.er7'));
  const files = unzipSync(buildXdm(sub.submissionSet, docs, { ...OPTS, action: 'C' }));
  const metadata = Buffer.from(files['IHE_XDM/SUBSET01/METADATA.XML']!).toString('utf8');

  test('DOC0001.XML and DOC0002.XML, each the CDA as stored, each with its URI, hash and size', () => {
    expect(
      Object.keys(files)
        .filter((f) => f.includes('/DOC'))
        .sort(),
    ).toEqual(['IHE_XDM/SUBSET01/DOC0001.XML', 'IHE_XDM/SUBSET01/DOC0002.XML']);
    const eos = xml.parse(metadata).SubmitObjectsRequest.RegistryObjectList.ExtrinsicObject as Node[];
    expect(eos).toHaveLength(2);
    docs.forEach((d, i) => {
      const name = `DOC000${i + 1}.XML`;
      const bytes = Buffer.from(files[`IHE_XDM/SUBSET01/${name}`]!);
      expect(bytes.equals(d.bytes)).toBe(true);
      const eo = eos.find((e) => e['@id'] === d.entry.entryUUID)!;
      expect(slot(eo, 'URI')).toEqual([name]);
      expect(slot(eo, 'hash')).toEqual([createHash('sha1').update(bytes).digest('hex')]);
      expect(slot(eo, 'size')).toEqual([String(bytes.length)]);
      expect(
        (eo.ExternalIdentifier as Node[]).find((e) => e['@identificationScheme'] === XDS_UUID.documentEntry.patientId)![
          '@value'
        ],
      ).toBe('277076322082910^^^&1.2.250.1.213.1.4.8&ISO^NH');
    });
  });

  test(
    'a replacement marks every entry with the volet’s extra metadata action = C, ' + 'before rim:Name (ebRIM order)',
    () => {
      expect(XMLValidator.validate(metadata)).toBe(true);
      const eos = xml.parse(metadata).SubmitObjectsRequest.RegistryObjectList.ExtrinsicObject as Node[];
      for (const eo of eos) expect(slot(eo, XDM_ACTION_SLOT)).toEqual(['C']);
      for (const block of metadata.split('<rim:ExtrinsicObject').slice(1)) {
        expect(block.indexOf(`<rim:Slot name="${XDM_ACTION_SLOT}">`)).toBeLessThan(block.indexOf('<rim:Name>'));
      }
    },
  );
});
