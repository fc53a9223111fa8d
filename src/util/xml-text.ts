/**
 * XML 1.0 text: the characters its Char production excludes (C0 controls but tab, LF and CR; U+FFFE,
 * U+FFFF; lone surrogates), which a document we write must not carry, whatever a sender put in a field.
 */
const NOT_XML_CHAR =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** True when s holds a character XML 1.0 cannot carry. */
export function hasNonXmlChar(s: string): boolean {
  NOT_XML_CHAR.lastIndex = 0;
  return NOT_XML_CHAR.test(s);
}

/** s without the characters XML 1.0 cannot carry. */
export function xmlSafe(s: string): string {
  return s.replace(NOT_XML_CHAR, '');
}

/** Text or attribute value escaped for XML, the characters XML cannot carry dropped. */
export function xmlEscape(s: string): string {
  return xmlSafe(s).replace(/[&<>"']/g, (c) => XML_ENTITIES[c]!);
}

const XML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/**
 * A value for xmlbuilder2's `txt()` / `att()`: it escapes `<` and a bare `&` but leaves `&name;` and
 * `&#n;` as it finds them, taking them for references; a text that holds `&nbsp;` or `&lt;b&gt;` as
 * characters would come out as an undefined entity or markup. Every `&` escaped here, which it keeps.
 */
export function builderText(s: string): string {
  return xmlSafe(s).replace(/&/g, '&amp;');
}
