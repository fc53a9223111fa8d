import { describe, expect, test } from 'vitest';
import { hasDoctype, xmlReader, XmlError } from '../../src/xml/read.js';

describe('xmlReader: strict and safe for every reader', () => {
  const read = xmlReader({ arrays: ['b'] });

  test('values stay text, repeatable elements are arrays, namespace prefixes dropped', () => {
    expect(read('<x:a xmlns:x="urn:x" code="007"><x:b>007</x:b></x:a>')).toEqual({ a: { '@code': '007', b: ['007'] } });
  });

  test('a DOCTYPE is refused wherever the prolog puts it: after the declaration, PIs and comments', () => {
    const doc = '<?xml version="1.0"?>\n<?pi a?>\n<!-- c -->\n<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>';
    expect(() => read(doc)).toThrow(new XmlError('a DOCTYPE declaration is not allowed'));
    expect(hasDoctype('\uFEFF<!doctype a><a/>')).toBe(true);
    expect(hasDoctype('<a><!-- <!DOCTYPE a> --></a>')).toBe(false);
  });

  test('a prolog of many processing instructions is read in one pass (no backtracking blow-up)', () => {
    // Eight <?...?> and blank lines before the root, as the ANS CDA examples have: a regex with lazy
    // alternatives took minutes on this shape.
    const prolog = Array.from({ length: 2000 }, (_, i) => `<?oxygen SCHSchema="s${i}.sch"?> \n`).join('');
    expect(hasDoctype(`${prolog}<a/>`)).toBe(false);
    expect(read(`${prolog}<a><b>1</b></a>`)).toEqual({ a: { b: ['1'] } });
  });

  test('text that is not well-formed XML is an XmlError with its line and column', () => {
    expect(() => read('<a><b></a>')).toThrow(XmlError);
    // Issue 12: an undefined entity or a reference to an excluded character passed the validator.
    expect(() => read('<a>x &xxe; y</a>')).toThrow(new XmlError('not well-formed XML (undefined entity &xxe;)'));
    expect(() => read('<a b="&#x0;"/>')).toThrow(/character reference &#x0;/);
    expect(() => read('<a>&#1;</a>')).toThrow(/character reference &#1;/);
    expect(read('<a>&lt;&#233;&#xE9;<!-- &nbsp; --><![CDATA[&nbsp;]]></a>')).toEqual({ a: '<éé&nbsp;' });
    expect(read('<a>&amp;lt;b&amp;gt; &#38;amp;</a>')).toEqual({ a: '&lt;b&gt; &amp;' }); // decoded once
    expect(() => read('<a>\n<b x="1" x="2"/></a>')).toThrow(/line 2/);
  });
});
