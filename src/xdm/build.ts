/**
 * IHE XDM (Cross-Enterprise Document Media Interchange, ITI TF-1 §16, ITI TF-3 §4.2.1 / §4.3) as MSSanté
 * carries it: the `IHE_XDM.ZIP` attachment of a mail.
 *
 *   INDEX.HTM                      what the archive holds (a link per document, and to README.TXT)
 *   README.TXT                     who sent it, with which software, how the archive is organised
 *   IHE_XDM/SUBSET01/METADATA.XML  ebRIM SubmitObjectsRequest: the submission set and its entries
 *   IHE_XDM/SUBSET01/DOC0001.XML   the documents, byte for byte as stored, next to their metadata
 *
 * File names are ISO 9660 style (8.3, upper case), as XDM requires of every file on the media. The
 * `URI` slot of each entry names its file relative to METADATA.XML (ITI TF-3 §4.2.1), and its hash and
 * size are recomputed here from the bytes that go in the archive, so that they always agree.
 */
import { createHash } from 'node:crypto';
import { strToU8, zipSync, type Zippable } from 'fflate';
import { submitObjectsRequest } from '../xds/ebrim.js';
import type { DocumentEntry, SubmissionSet } from '../xds/model.js';
import { xmlEscape } from '../util/xml-text.js';

export interface XdmDocument {
  entry: DocumentEntry;
  /** The CDA exactly as stored (the volet forbids touching it: its hash is its identity). */
  bytes: Buffer;
}

export interface XdmOptions {
  /** The From mailbox (the channel's BAL applicative), named in README.TXT as the sender. */
  sender: string;
  softwareName: string;
  /** The archive's entry dates; fixed so that the same input gives the same bytes. */
  now?: Date;
  /**
   * The volet's extra metadata `action` on every document entry (exemples.md of "Transmission de
   * document(s) CDA en HL7v2"): `C` (change) when the documents replace a version sent before,
   * `D` (deleted) when they are to be deleted; absent for a first transmission.
   */
  action?: 'C' | 'D';
}

export const XDM_SUBSET = 'IHE_XDM/SUBSET01';
/** The name the volet gives the extra metadata of a replacement / deletion (exemples.md). */
export const XDM_ACTION_SLOT = 'action';

/** DOC0001.XML, DOC0002.XML...: 8.3 names, the extension from the media type. */
export function xdmFileName(index: number, mimeType = 'text/xml'): string {
  const ext = mimeType === 'application/pdf' ? 'PDF' : mimeType.endsWith('xml') ? 'XML' : 'BIN';
  return `DOC${String(index + 1).padStart(4, '0')}.${ext}`;
}

/** IHE_XDM.ZIP for one submission (see the module comment for the layout). */
export function buildXdm(set: SubmissionSet, documents: XdmDocument[], opts: XdmOptions): Buffer {
  if (documents.length === 0) throw new Error('an XDM archive needs at least one document');
  if (documents.length > 9999) throw new Error('an XDM subset holds at most 9999 documents (8.3 file names)');
  const now = opts.now ?? new Date();
  const files = documents.map((d, i) => ({
    name: xdmFileName(i, d.entry.mimeType),
    bytes: d.bytes,
    entry: { ...d.entry, hash: createHash('sha1').update(d.bytes).digest('hex'), size: d.bytes.length },
  }));
  const uris = Object.fromEntries(files.map((f) => [f.entry.entryUUID, f.name]));
  let metadata = submitObjectsRequest(
    set,
    files.map((f) => f.entry),
    { documentUris: uris },
  );
  if (opts.action) metadata = withActionSlot(metadata, opts.action);

  const zippable: Zippable = {
    'INDEX.HTM': strToU8(indexHtm(files, opts.sender)),
    'README.TXT': strToU8(readmeTxt(files, opts, now)),
    [`${XDM_SUBSET}/METADATA.XML`]: strToU8(`<?xml version="1.0" encoding="UTF-8"?>\n${metadata}\n`),
  };
  for (const f of files)
    zippable[`${XDM_SUBSET}/${f.name}`] = new Uint8Array(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length);
  return Buffer.from(zipSync(zippable, { level: 6, mtime: dosTime(now) }));
}

/**
 * fflate writes the entry's DOS date from the *local* fields of mtime: a Date whose local fields are
 * now's UTC ones makes the archive the same whatever the server's time zone (the zip shows UTC).
 */
function dosTime(now: Date): Date {
  return new Date(
    now.getUTCFullYear(),
    now.getUTCMonth(),
    now.getUTCDate(),
    now.getUTCHours(),
    now.getUTCMinutes(),
    now.getUTCSeconds(),
  );
}

/**
 * ebrim.ts has no extra-metadata option: the slot goes in each ExtrinsicObject after its other slots,
 * before its rim:Name (ebRIM requires Slots first). A `<` cannot occur unescaped in an attribute or a
 * text, so the first `<rim:Name` after the ExtrinsicObject start tag is that element's own Name.
 */
function withActionSlot(xml: string, action: 'C' | 'D'): string {
  let found = 0;
  const out = xml.replace(
    /(<rim:ExtrinsicObject\b[^>]*>[\s\S]*?)(\n([ \t]*)<rim:Name>)/g,
    (_m, before: string, name: string, indent: string) => {
      found++;
      const value = `<rim:ValueList><rim:Value>${action}</rim:Value></rim:ValueList>`;
      const slot = `<rim:Slot name="${XDM_ACTION_SLOT}">${value}</rim:Slot>`;
      return `${before}\n${indent}${slot}${name}`;
    },
  );
  if (found === 0) throw new Error('METADATA.XML: no DocumentEntry to mark with the action slot');
  return out;
}

const html = xmlEscape;

/**
 * The XDM manifest a person opens first: XHTML (well-formed, so that a reader may parse it), the
 * documents by title only (no patient data beyond what the titles say), and a link to README.TXT.
 */
function indexHtm(files: { name: string; entry: DocumentEntry }[], sender: string): string {
  const items = files
    .map(
      (f) => `      <li><a href="${XDM_SUBSET}/${f.name}">${html(f.entry.title || f.name)}</a> (${html(f.name)})</li>`,
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="fr" lang="fr">
  <head>
    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
    <title>IHE XDM</title>
  </head>
  <body>
    <h1>Documents</h1>
    <p>Archive IHE XDM envoyée par ${html(sender)}.</p>
    <ul>
${items}
    </ul>
    <p>Métadonnées : <a href="${XDM_SUBSET}/METADATA.XML">${XDM_SUBSET}/METADATA.XML</a>.
      Informations : <a href="README.TXT">README.TXT</a>.</p>
  </body>
</html>
`;
}

/**
 * README.TXT as ITI TF-3 §4.2.1 asks: who made the media, with which application, how it is organised;
 * no patient data. ASCII only and CRLF, so that any reader shows it as written.
 */
function readmeTxt(files: { name: string }[], opts: XdmOptions, now: Date): string {
  const ascii = (s: string) =>
    s
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/[^\x20-\x7e]/g, '?');
  const lines = [
    'IHE XDM - Cross-Enterprise Document Media Interchange',
    '',
    `Sender: ${ascii(opts.sender)}`,
    `Application: ${ascii(opts.softwareName)}`,
    `Created: ${now.toISOString()}`,
    '',
    'Contents:',
    '  INDEX.HTM                       list of the documents',
    '  README.TXT                      this file',
    `  ${XDM_SUBSET}/METADATA.XML   XDS metadata (ebRIM SubmitObjectsRequest)`,
    ...files.map((f) => `  ${XDM_SUBSET}/${f.name}    document`),
    '',
  ];
  return lines.join('\r\n');
}
