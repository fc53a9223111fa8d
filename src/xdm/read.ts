/**
 * Flow B intake: the `IHE_XDM.ZIP` a hospital, a lab or a GP sends to our application mailbox by
 * MSSanté, unpacked defensively and read into what the sender asks (a new document, a replacement, a
 * deletion) and for which patient. Pure: bytes in, an Intake or an IntakeError out; no I/O.
 *
 * Volet "Transmission au LPS d'un document CDA provenant d'un courriel MSSanté" (def-proc-collab.md):
 * the GESTIONNAIRE (us) unzips the XDM archive, checks that it holds health documents of one patient in
 * CDA format and a metadata file, and learns from it what is to be done with the document(s). The
 * ANS examples (Readme.md) say how: the extra metadata `action`, C for a replacement, D for a deletion.
 *
 * The layout is the one mssante/xdm.ts writes (ITI TF-1 §16, ITI TF-3 §4.2.1):
 *   INDEX.HTM, README.TXT             optional here
 *   IHE_XDM/SUBSETnn/METADATA.XML     ebRIM SubmitObjectsRequest; every subset is read
 *   IHE_XDM/SUBSETnn/DOC0001.XML      each document, named by its entry's URI slot
 *
 * The zip is read from its central directory, and every entry is inflated by fflate's streaming
 * decoder (UnzipInflate) fed 16 KiB of compressed bytes at a time, so that the inflated bytes are
 * counted as they come out and inflation stops as soon as a limit is passed. The sizes the archive
 * declares are never trusted to accept anything: they may only reject earlier (an entry declared over
 * a limit), and an entry that inflates past its declared size is stopped right there.
 *
 * Why not fflate's `Unzip` stream: it ignores the central directory (a truncated archive reads as
 * complete, an entry hidden from the directory is read), and when a local header defers its sizes to a
 * data descriptor (Java's ZipOutputStream, .NET, fflate's own Zip) it finds the end of the entry by
 * looking for a zip signature in the compressed bytes, which cuts a sound entry short when those four
 * bytes occur in it by chance (about 2 % of 30 MiB entries). See the data-descriptor test.
 */
import { createHash } from 'node:crypto';
import { UnzipInflate, UnzipPassThrough, type UnzipDecoder } from 'fflate';
import { readCdaHeader, type CdaHeader, type InstanceId } from '../cda/header.js';
import { XDM_ACTION_SLOT } from './build.js';
import {
  EbrimError,
  readSubmitObjectsRequest,
  type EbrimDocumentEntry,
  type SubmitObjectsRequest,
} from '../xds/ebrim-read.js';
import { PfiError } from '../errors.js';

// ---------------------------------------------------------------------------------------------------------
// API

export interface IntakeLimits {
  /** The archive itself (the caller bounds the attachment before; checked again here). */
  maxArchiveBytes: number;
  /** All entries together, inflated. */
  maxExpandedBytes: number;
  maxEntries: number;
  /** Any one entry, inflated. */
  maxDocumentBytes: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: IntakeLimits = Object.freeze({
  maxArchiveBytes: 40 * MiB,
  maxExpandedBytes: 200 * MiB,
  maxEntries: 200,
  maxDocumentBytes: 60 * MiB,
});

export type IntakeReason =
  | 'not-zip'
  | 'zip-bomb'
  | 'too-many-entries'
  | 'path-traversal'
  | 'no-metadata'
  | 'bad-metadata'
  | 'missing-document'
  | 'hash-mismatch'
  | 'size-mismatch'
  | 'not-cda'
  | 'no-document';

/** Why an archive is refused; the message names entries and rules, never patient data. */
export class IntakeError extends PfiError {
  override name = 'IntakeError';
  constructor(
    readonly reason: IntakeReason,
    message: string,
  ) {
    super('xdm', message);
  }
}

export interface ReceivedDocument {
  /** Path in the archive. */
  fileName: string;
  /** The document exactly as in the archive. */
  bytes: Buffer;
  /** Its metadata (XDS DocumentEntry), as METADATA.XML gives it. */
  entry: Omit<EbrimDocumentEntry, 'uri' | 'slots' | 'size'> & { size?: number };
  cda: CdaHeader;
}

export interface Intake {
  /**
   * From the `action` slot (C: replace, D: delete) when present, else an RPLC association, else a CDA
   * relatedDocument[@typeCode=RPLC] (replace); else new. All documents of the archive must agree.
   */
  operation: 'new' | 'replace' | 'delete';
  /**
   * uniqueId of the document this version replaces, when known: the CDA relatedDocument RPLC
   * parentDocument id (`root^extension`, or the root alone), else the target of an RPLC association
   * when it is a uniqueId. For a deletion, the document to delete is the one carried
   * (documents[i].entry.uniqueId) and this is still its parent, as TXA-13 of the ANS deletion example.
   */
  replaces?: string;
  submissionSet: {
    uniqueId?: string;
    sourceId?: string;
    patientId?: string;
    submissionTime?: string;
    authorPerson?: string;
    authorInstitution?: string[];
  };
  /** At least one. */
  documents: ReceivedDocument[];
  /** From the first CDA's recordTarget (all documents must be of this patient). */
  patient: {
    ins?: { matricule: string; oid: string };
    ids: { id: string; root: string }[];
    birthName?: string;
    givenNames: string[];
    firstGivenName?: string;
    sex?: string;
    birthDate?: string;
    birthPlaceCode?: string;
  };
}

/**
 * Unpacks and checks an IHE_XDM.ZIP (as a Buffer, already bounded by the caller to maxArchiveBytes).
 * Throws IntakeError with a precise, operator-readable message (no patient data in the message).
 */
export function readXdm(zip: Buffer, limits: IntakeLimits = DEFAULT_LIMITS): Intake {
  if (zip.length > limits.maxArchiveBytes) {
    throw new IntakeError(
      'zip-bomb',
      `IHE_XDM.ZIP: the archive is ${zip.length} bytes, over the limit of ${limits.maxArchiveBytes}`,
    );
  }
  const files = unzip(zip, limits);

  const metadataFiles = [...files.keys()].filter((n) => METADATA_PATH.test(n)).sort();
  if (metadataFiles.length === 0) {
    throw new IntakeError('no-metadata', 'IHE_XDM.ZIP: no IHE_XDM/<subset>/METADATA.XML in the archive');
  }

  let submissionSet: Intake['submissionSet'] | undefined;
  const documents: (ReceivedDocument & { operation: Intake['operation']; parent?: string })[] = [];
  for (const metadataFile of metadataFiles) {
    const subset = readMetadata(metadataFile, files.get(metadataFile)!);
    submissionSet ??= subset.submissionSet;
    const dir = metadataFile.slice(0, metadataFile.lastIndexOf('/'));
    for (const e of subset.entries) documents.push(receive(e, dir, files, subset.rplc));
  }
  if (documents.length === 0) throw new IntakeError('no-document', 'IHE_XDM.ZIP: no document in the archive');

  // One archive, one request: the documents must ask the same operation...
  const operations = [...new Set(documents.map((d) => d.operation))];
  if (operations.length > 1) {
    const detail = documents.map((d) => `${d.fileName}: ${d.operation}`).join(', ');
    throw new IntakeError(
      'bad-metadata',
      `IHE_XDM.ZIP: the documents ask different operations (${detail}); one archive must ask one`,
    );
  }
  // ...for one patient (def-proc-collab.md: "des documents de santé d'un patient").
  const first = documents[0]!;
  for (const d of documents.slice(1)) {
    if (!samePatient(first.cda, d.cda)) {
      throw new IntakeError(
        'bad-metadata',
        `IHE_XDM.ZIP: ${d.fileName} is not for the patient of ${first.fileName}; one archive must be for one patient`,
      );
    }
  }

  const rt = first.cda.recordTarget;
  const patient: Intake['patient'] = {
    ids: rt.ids.map((x) => ({ id: x.extension ?? x.root, root: x.root })),
    givenNames: rt.givenNames,
  };
  if (rt.ins) patient.ins = rt.ins;
  if (rt.birthName) patient.birthName = rt.birthName;
  if (rt.firstGivenName) patient.firstGivenName = rt.firstGivenName;
  if (rt.sex) patient.sex = rt.sex;
  if (rt.birthDate) patient.birthDate = rt.birthDate;
  if (rt.birthPlaceCode) patient.birthPlaceCode = rt.birthPlaceCode;

  const intake: Intake = {
    operation: operations[0]!,
    submissionSet: submissionSet ?? {},
    documents: documents.map(({ operation: _o, parent: _p, ...d }) => d),
    patient,
  };
  const replaces = intake.operation === 'new' ? undefined : documents.find((d) => d.parent)?.parent;
  if (replaces) intake.replaces = replaces;
  return intake;
}

// ---------------------------------------------------------------------------------------------------------
// Zip

/** Compressed bytes given to the decoder at a time: deflate expands at most ~1032:1, so ≤ 17 MiB per step. */
const CHUNK = 16 * 1024;
/** Inflated / archive bytes above which the archive is a bomb, once past RATIO_FLOOR (real CDAs: ≤ 20:1). */
const BOMB_RATIO = 100;
const RATIO_FLOOR = 10 * MiB;

interface ZipEntry {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  /** Declared inflated size: an upper bound, never a promise. */
  size: number;
  localOffset: number;
  /** Where the compressed bytes start (after the local header). */
  dataStart: number;
}

const notZip = (what: string) => new IntakeError('not-zip', `IHE_XDM.ZIP: not a readable zip archive (${what})`);

/** Shows an entry name in a message: quoted, control characters escaped, cut at 120 characters. */
const show = (name: string): string => JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);

/** Every file of the archive, inflated and checked (CRC-32, size), by name. */
function unzip(zip: Buffer, limits: IntakeLimits): Map<string, Buffer> {
  const entries = centralDirectory(zip, limits);

  // Names first: nothing is inflated from an archive that tries to escape its folder.
  const seen = new Set<string>();
  for (const e of entries) {
    const bad = unsafePath(e.name);
    if (bad) throw new IntakeError('path-traversal', `IHE_XDM.ZIP: entry ${show(e.name)} has ${bad}; refused`);
    if (seen.has(e.name)) throw notZip(`entry ${show(e.name)} appears twice`);
    seen.add(e.name);
  }
  for (const e of entries) {
    if (e.flags & 1) throw notZip(`entry ${show(e.name)} is encrypted`);
    if (e.method !== 0 && e.method !== 8)
      throw notZip(`entry ${show(e.name)} uses compression method ${e.method}; only stored and deflate are read`);
  }

  // Declared sizes may only reject early; the real bytes are counted while inflating.
  let declared = 0;
  for (const e of entries) {
    if (e.size > limits.maxDocumentBytes) {
      throw new IntakeError(
        'zip-bomb',
        `IHE_XDM.ZIP: entry ${show(e.name)} declares ${e.size} bytes, ` +
          `over the limit of ${limits.maxDocumentBytes} per entry`,
      );
    }
    declared += e.size;
  }
  if (declared > limits.maxExpandedBytes) {
    throw new IntakeError(
      'zip-bomb',
      `IHE_XDM.ZIP: the entries declare ${declared} bytes in all, over the limit of ${limits.maxExpandedBytes}`,
    );
  }

  const files = new Map<string, Buffer>();
  const budget = { total: 0 };
  for (const e of entries) {
    if (e.name.endsWith('/')) continue; // a folder
    files.set(e.name, inflate(zip, e, limits, budget));
  }
  return files;
}

/** The central directory (EOCD, ZIP64 when needed), each entry checked against its local header. */
function centralDirectory(zip: Buffer, limits: IntakeLimits): ZipEntry[] {
  const sig = zip.length >= 4 ? zip.readUInt32LE(0) : 0;
  if (sig !== 0x04034b50 && sig !== 0x06054b50) throw notZip('it does not start with a zip signature');

  // End of central directory: the last 22 bytes plus a comment of at most 65535; the comment must end
  // the file exactly (a truncated archive, or bytes appended after it, are refused).
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50 && i + 22 + zip.readUInt16LE(i + 20) === zip.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw notZip('no end of central directory: truncated or corrupted');
  if (zip.readUInt16LE(eocd + 4) !== 0 || zip.readUInt16LE(eocd + 6) !== 0) throw notZip('multi-volume archive');
  let count = zip.readUInt16LE(eocd + 10);
  let cdSize = zip.readUInt32LE(eocd + 12);
  let cdOffset = zip.readUInt32LE(eocd + 16);
  let cdLimit = eocd; // the directory must end before this
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // ZIP64: the locator just before the EOCD points at the ZIP64 end of central directory record.
    const loc = eocd - 20;
    if (loc < 0 || zip.readUInt32LE(loc) !== 0x07064b50) throw notZip('ZIP64 locator missing');
    const rec = safeNumber(zip.readBigUInt64LE(loc + 8));
    if (rec < 0 || rec + 56 > loc || zip.readUInt32LE(rec) !== 0x06064b50)
      throw notZip('ZIP64 end of central directory missing');
    count = safeNumber(zip.readBigUInt64LE(rec + 32));
    cdSize = safeNumber(zip.readBigUInt64LE(rec + 40));
    cdOffset = safeNumber(zip.readBigUInt64LE(rec + 48));
    cdLimit = rec;
  }
  if (count > limits.maxEntries) {
    throw new IntakeError('too-many-entries', `IHE_XDM.ZIP: ${count} entries, over the limit of ${limits.maxEntries}`);
  }
  if (cdOffset + cdSize > cdLimit) throw notZip('central directory out of bounds');

  const entries: ZipEntry[] = [];
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cdOffset + cdSize || zip.readUInt32LE(p) !== 0x02014b50) throw notZip('central directory corrupted');
    const nameLength = zip.readUInt16LE(p + 28);
    const extraLength = zip.readUInt16LE(p + 30);
    const commentLength = zip.readUInt16LE(p + 32);
    const end = p + 46 + nameLength + extraLength + commentLength;
    if (end > cdOffset + cdSize) throw notZip('central directory corrupted');
    const flags = zip.readUInt16LE(p + 8);
    const rawName = zip.subarray(p + 46, p + 46 + nameLength);
    const e: ZipEntry = {
      // Bit 11: UTF-8 name; else the legacy code page, read as latin1 (XDM names are ASCII anyway).
      name: rawName.toString(flags & 0x800 ? 'utf8' : 'latin1'),
      flags,
      method: zip.readUInt16LE(p + 10),
      crc: zip.readUInt32LE(p + 16),
      compressedSize: zip.readUInt32LE(p + 20),
      size: zip.readUInt32LE(p + 24),
      localOffset: zip.readUInt32LE(p + 42),
      dataStart: 0,
    };
    zip64Extra(zip.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength), e);

    // The local header must name the same file (else two readers would see two archives).
    const l = e.localOffset;
    if (l + 30 > cdOffset || zip.readUInt32LE(l) !== 0x04034b50)
      throw notZip(`no local header for entry ${show(e.name)}`);
    const localNameLength = zip.readUInt16LE(l + 26);
    if (!zip.subarray(l + 30, l + 30 + localNameLength).equals(rawName)) {
      throw notZip(`local header of entry ${show(e.name)} names another file`);
    }
    e.dataStart = l + 30 + localNameLength + zip.readUInt16LE(l + 28);
    if (e.dataStart + e.compressedSize > cdOffset)
      throw notZip(`entry ${show(e.name)} runs past the central directory`);
    entries.push(e);
    p = end;
  }
  if (p !== cdOffset + cdSize) throw notZip('central directory size does not match its entries');

  // Entries may not share bytes: overlapping entries make a small archive inflate to many copies.
  const byOffset = [...entries].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    if (byOffset[i]!.localOffset < prev.dataStart + prev.compressedSize) {
      throw new IntakeError(
        'zip-bomb',
        `IHE_XDM.ZIP: entries ${show(prev.name)} and ${show(byOffset[i]!.name)} overlap`,
      );
    }
  }
  return entries;
}

function safeNumber(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw notZip('ZIP64 value out of range');
  return Number(n);
}

/** ZIP64 extended information (header 0x0001): the 64-bit values of the fields set to 0xFFFFFFFF. */
function zip64Extra(extra: Buffer, e: ZipEntry): void {
  for (let i = 0; i + 4 <= extra.length;) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (id === 0x0001) {
      let q = i + 4;
      const next = (): number => {
        if (q + 8 > i + 4 + len || q + 8 > extra.length) throw notZip('ZIP64 extra field too short');
        const v = safeNumber(extra.readBigUInt64LE(q));
        q += 8;
        return v;
      };
      if (e.size === 0xffffffff) e.size = next();
      if (e.compressedSize === 0xffffffff) e.compressedSize = next();
      if (e.localOffset === 0xffffffff) e.localOffset = next();
      return;
    }
    i += 4 + len;
  }
}

/**
 * Why an entry name (or a URI) cannot be a path inside the archive, or undefined when it can:
 * a `..` segment, an absolute path, a backslash, a drive letter, a NUL.
 */
function unsafePath(name: string): string | undefined {
  if (name === '') return 'an empty name';
  if (name.includes('\0')) return 'a NUL character';
  if (name.includes('\\')) return 'a backslash';
  if (name.startsWith('/')) return 'an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'a drive letter';
  // `..`, and what Windows reads as `..` (trailing dots and spaces dropped).
  if (name.split('/').some((s) => s.includes('..') && /^[. ]+$/.test(s))) return 'a ".." segment';
  return undefined;
}

/**
 * One entry, inflated through fflate's streaming decoder: the real bytes are counted as they come and
 * inflation stops (by throwing out of the decoder's callback) as soon as a limit is passed.
 */
function inflate(zip: Buffer, e: ZipEntry, limits: IntakeLimits, budget: { total: number }): Buffer {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let crc = 0;
  let done = false;
  const decoder: UnzipDecoder = e.method === 8 ? new UnzipInflate() : new UnzipPassThrough();
  decoder.ondata = (err, data, final) => {
    // UnzipInflate catches what this callback throws and calls it again with it as err: rethrow.
    if (err) throw err instanceof IntakeError ? err : notZip(`entry ${show(e.name)}: ${err.message}`);
    size += data.length;
    budget.total += data.length;
    const bomb = (why: string) =>
      new IntakeError('zip-bomb', `IHE_XDM.ZIP: entry ${show(e.name)} ${why}; inflation stopped`);
    if (size > e.size) throw bomb(`inflates past the ${e.size} bytes it declares`);
    if (size > limits.maxDocumentBytes)
      throw bomb(`inflates past the limit of ${limits.maxDocumentBytes} bytes per entry`);
    if (budget.total > limits.maxExpandedBytes)
      throw bomb(`brings the archive past the limit of ${limits.maxExpandedBytes} inflated bytes`);
    if (budget.total > RATIO_FLOOR && budget.total > BOMB_RATIO * zip.length) {
      throw bomb(`brings the archive past ${BOMB_RATIO} times its own size (${zip.length} bytes)`);
    }
    crc = crc32(data, crc);
    chunks.push(data);
    if (final) done = true;
  };
  const end = e.dataStart + e.compressedSize;
  if (e.compressedSize === 0) decoder.push(new Uint8Array(0), true);
  for (let at = e.dataStart; at < end; at += CHUNK)
    decoder.push(zip.subarray(at, Math.min(end, at + CHUNK)), at + CHUNK >= end);
  if (!done) throw notZip(`entry ${show(e.name)}: compressed data ends early`);
  if (size !== e.size) throw notZip(`entry ${show(e.name)} inflates to ${size} bytes, the archive declares ${e.size}`);
  if (crc !== e.crc) throw notZip(`entry ${show(e.name)}: CRC-32 mismatch, the archive is corrupted`);
  return Buffer.concat(chunks, size);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (zip's), continued from crc over data. */
function crc32(data: Uint8Array, crc: number): number {
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------------------------------------------------
// METADATA.XML (ebRIM 3.0 SubmitObjectsRequest, read by src/xds/ebrim-read.ts)

const METADATA_PATH = /^IHE_XDM\/[^/]+\/METADATA\.XML$/i;

interface MetadataEntry {
  id: string;
  uri?: string;
  action?: string;
  entry: ReceivedDocument['entry'];
}

interface Subset {
  submissionSet: Intake['submissionSet'];
  entries: MetadataEntry[];
  /** RPLC associations: sourceObject (an entry id) → targetObject. */
  rplc: Map<string, string>;
}

function readMetadata(fileName: string, bytes: Buffer): Subset {
  let request: SubmitObjectsRequest;
  try {
    request = readSubmitObjectsRequest(bytes);
  } catch (e) {
    if (e instanceof EbrimError) throw new IntakeError('bad-metadata', `${fileName}: ${e.message}`);
    throw e;
  }
  const entries = request.entries.map(({ uri, slots, size, ...e }): MetadataEntry => {
    const entry: ReceivedDocument['entry'] = e;
    if (size !== undefined) {
      if (!/^\d+$/.test(size))
        throw new IntakeError(
          'size-mismatch',
          `${fileName}: entry ${e.entryUUID}: size slot ${show(size)} is not a number of bytes`,
        );
      entry.size = Number(size);
    }
    const m: MetadataEntry = { id: e.entryUUID, entry };
    if (uri) m.uri = uri;
    const action = slots.get(XDM_ACTION_SLOT)?.[0];
    if (action) m.action = action;
    return m;
  });
  return { submissionSet: request.submissionSet, entries, rplc: request.rplc };
}

// ---------------------------------------------------------------------------------------------------------
// Documents

/** An instance id as an XDS uniqueId: `root^extension`, or the root alone. */
const uniqueIdOf = (id: InstanceId): string => (id.extension ? `${id.root}^${id.extension}` : id.root);
/** An OID, with an optional `^extension`: what a uniqueId looks like (an entryUUID is urn:uuid:...). */
const UNIQUE_ID = /^[0-2](\.\d+)+(\^\S+)?$/;

/** The entry's file found, checked (size, hash, CDA) and what it asks. */
function receive(
  m: MetadataEntry,
  dir: string,
  files: Map<string, Buffer>,
  rplc: Map<string, string>,
): ReceivedDocument & { operation: Intake['operation']; parent?: string } {
  const where = `${dir}/METADATA.XML: entry ${m.entry.uniqueId}`;
  if (!m.uri) throw new IntakeError('missing-document', `${where} has no URI slot naming its file`);
  const unsafe = unsafePath(m.uri);
  if (unsafe) throw new IntakeError('path-traversal', `${where}: URI ${show(m.uri)} has ${unsafe}; refused`);
  const fileName = findFile(files, `${dir}/${m.uri}`) ?? findFile(files, m.uri);
  if (!fileName)
    throw new IntakeError('missing-document', `${where} names ${show(m.uri)}, which is not in the archive`);
  const bytes = files.get(fileName)!;

  if (m.entry.size !== undefined && m.entry.size !== bytes.length) {
    throw new IntakeError(
      'size-mismatch',
      `${where}: size slot says ${m.entry.size} bytes, ${fileName} has ${bytes.length}`,
    );
  }
  if (m.entry.hash !== undefined) {
    const sha1 = createHash('sha1').update(bytes).digest('hex');
    if (m.entry.hash.toLowerCase() !== sha1) {
      throw new IntakeError(
        'hash-mismatch',
        `${where}: hash slot says ${show(m.entry.hash)}, the SHA-1 of ${fileName} is ${sha1}`,
      );
    }
  }
  let cda: CdaHeader;
  try {
    cda = readCdaHeader(bytes);
  } catch (e) {
    throw new IntakeError('not-cda', `${fileName}: not a CDA document (${e instanceof Error ? e.message : String(e)})`);
  }

  // What the sender asks: the action slot, else an RPLC association, else the CDA's relatedDocument.
  let operation: Intake['operation'] = 'new';
  const action = m.action?.toUpperCase();
  const target = rplc.get(m.id);
  if (action === 'C') operation = 'replace';
  else if (action === 'D') operation = 'delete';
  else if (action !== undefined)
    throw new IntakeError(
      'bad-metadata',
      `${where}: action slot ${show(m.action!)} is neither C (replace) nor D (delete)`,
    );
  else if (target !== undefined || cda.replaces.length > 0) operation = 'replace';

  const parent = cda.replaces[0]
    ? uniqueIdOf(cda.replaces[0])
    : target !== undefined && UNIQUE_ID.test(target)
      ? target
      : undefined;
  const doc: ReceivedDocument & { operation: Intake['operation']; parent?: string } = {
    fileName,
    bytes,
    entry: m.entry,
    cda,
    operation,
  };
  if (parent) doc.parent = parent;
  return doc;
}

/** The file of that path: exactly, else the only one equal but for case (8.3 names are case-blind). */
function findFile(files: Map<string, Buffer>, path: string): string | undefined {
  if (files.has(path)) return path;
  const lower = path.toLowerCase();
  const matches = [...files.keys()].filter((n) => n.toLowerCase() === lower);
  return matches.length === 1 ? matches[0] : undefined;
}

/** Same INS when both carry one; else at least one identifier in common (when both have some). */
function samePatient(a: CdaHeader, b: CdaHeader): boolean {
  const x = a.recordTarget;
  const y = b.recordTarget;
  if (x.ins && y.ins) return x.ins.matricule === y.ins.matricule && x.ins.oid === y.ins.oid;
  if (x.ids.length === 0 || y.ids.length === 0) return true;
  const key = (i: InstanceId) => `${i.root}|${i.extension ?? ''}`;
  const ids = new Set(x.ids.map(key));
  return y.ids.some((i) => ids.has(key(i)));
}
