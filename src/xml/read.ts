/**
 * Reading XML, one way for every reader (CDA header, ebRIM metadata, SOAP answers, SVS value sets):
 * fast-xml-parser set up once. Strict and safe by construction: the text must be well-formed (the
 * parser alone reads what is not), a DOCTYPE is refused (no DTD, hence no external entity and no
 * "billion laughs"), only the five XML entities and character references are expanded, and values
 * stay text (a code `007` is not the number 7).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { PfiError } from '../errors.js';

export type XmlNode = Record<string, unknown>;

export class XmlError extends PfiError {
  override name = 'XmlError';
  constructor(message: string) {
    super('xml', message);
  }
}

export interface XmlReaderOptions {
  /** Element names always read as arrays (repeatable elements), local names. */
  arrays?: readonly string[];
  /** Document order kept (fast-xml-parser's preserveOrder): elements as a list, attributes under `:@`. */
  ordered?: boolean;
  /** Prefix of attribute keys: `@` (default) or none. */
  attributePrefix?: '@' | '';
  /** Namespace prefixes dropped from names (default true); keep them to resolve namespaces yourself. */
  dropPrefixes?: boolean;
}

/** A DOCTYPE where XML allows one: in the prolog, after the declaration, comments and PIs. A scan, linear. */
export function hasDoctype(text: string): boolean {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (;;) {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
    const end = text.startsWith('<?', i)
      ? text.indexOf('?>', i + 2) + 2
      : text.startsWith('<!--', i)
        ? text.indexOf('-->', i + 4) + 3
        : -1;
    if (end === -1) return text.slice(i, i + 9).toUpperCase() === '<!DOCTYPE';
    if (end < i) return false; // an unclosed PI or comment: not well-formed, the validator says so
    i = end;
  }
}

/** A reader of XML text into fast-xml-parser's tree; throws XmlError on text that is not well-formed XML. */
export function xmlReader(opts: XmlReaderOptions = {}): (text: string) => unknown {
  const arrays = new Set(opts.arrays ?? []);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: opts.attributePrefix ?? '@',
    removeNSPrefix: opts.dropPrefixes ?? true,
    preserveOrder: opts.ordered ?? false,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    processEntities: true,
    htmlEntities: true, // numeric character references; named ones other than the five are refused before
    ignoreDeclaration: true,
    ignorePiTags: true,
    commentPropName: false,
    ...(arrays.size ? { isArray: (name: string) => arrays.has(name) } : {}),
  });
  return (text) => {
    if (hasDoctype(text)) throw new XmlError('a DOCTYPE declaration is not allowed');
    const valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
    if (valid !== true) {
      const e = valid.err;
      throw new XmlError(`not well-formed XML (${e.msg}, line ${e.line}, column ${e.col})`);
    }
    const reference = badReference(text);
    if (reference) throw new XmlError(`not well-formed XML (${reference})`);
    return parser.parse(text) as unknown;
  };
}

/** Markup where `&` is not a reference (comments, CDATA), and the references themselves. */
const REFERENCES = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|&(#x[0-9A-Fa-f]+|#[0-9]+|[^;\s<&]*);/g;
const PREDEFINED = new Set(['lt', 'gt', 'amp', 'apos', 'quot']);

/**
 * What the validator lets through: an entity no DTD declares (`&xxe;`: without a DOCTYPE only the five
 * predefined exist) or a character reference to a character XML excludes (`&#x0;`). Undefined when sound.
 */
function badReference(text: string): string | undefined {
  for (const m of text.matchAll(REFERENCES)) {
    const ref = m[1];
    if (ref === undefined) continue; // a comment or a CDATA section
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      const ok =
        code === 0x9 ||
        code === 0xa ||
        code === 0xd ||
        (code >= 0x20 && code <= 0xd7ff) ||
        (code >= 0xe000 && code <= 0xfffd) ||
        (code >= 0x10000 && code <= 0x10ffff);
      if (!ok) return `character reference &${ref}; to a character XML does not allow`;
    } else if (!PREDEFINED.has(ref)) {
      return `undefined entity &${ref};`;
    }
  }
  return undefined;
}

/** UTF-8 (BOM or not), UTF-16 with a BOM, or the encoding the declaration names; undefined if invalid. */
export function decodeXml(bytes: Buffer): string | undefined {
  let label = 'utf-8';
  let body = bytes;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) body = bytes.subarray(3);
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) [label, body] = ['utf-16le', bytes.subarray(2)];
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) [label, body] = ['utf-16be', bytes.subarray(2)];
  else {
    const declared = /^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(
      bytes.subarray(0, 200).toString('latin1'),
    );
    label = declared?.[1] ?? 'utf-8';
  }
  try {
    return new TextDecoder(label, { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

/** The element nodes of a value that may be one node, a list, or text (an empty element reads as ''). */
export function nodes(v: unknown): XmlNode[] {
  const isNode = (x: unknown): x is XmlNode => typeof x === 'object' && x !== null;
  return Array.isArray(v) ? v.filter(isNode) : isNode(v) ? [v] : [];
}

/** An attribute of an unordered tree's node (prefix `@`), trimmed; undefined when absent or blank. */
export function attr(o: XmlNode | undefined, name: string): string | undefined {
  const v = o?.[`@${name}`];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}
