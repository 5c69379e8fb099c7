/**
 * A small, strict XML reader for the answers of XML APIs (Route 53): elements, attributes (read
 * and dropped), text with the five predefined entities and character references, comments and
 * CDATA. No DTD (a DOCTYPE is refused, so no entity can expand), no processing instruction but
 * the leading XML declaration. Namespace prefixes are dropped from element names. Anything
 * malformed (a tag left open, a stray `<` or `&`, text after the root) throws XmlError.
 */

export interface XmlElement {
  name: string;
  children: XmlElement[];
  /** The element's own text (its character data, not its children's), entities resolved. */
  text: string;
}

export class XmlError extends Error {}

const MAX_DEPTH = 64;
const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
const NAME = /[A-Za-z_][\w.:-]*/y;

function decode(raw: string, at: number): string {
  return raw.replace(/&([^;&<]*);|&|</g, (m, ent: string | undefined) => {
    if (ent === undefined) throw new XmlError(`stray "${m}" in text near offset ${at}`);
    if (ENTITIES[ent]) return ENTITIES[ent];
    const num = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ent);
    if (!num) throw new XmlError(`unknown entity &${ent}; near offset ${at}`);
    const code = num[1] !== undefined ? Number.parseInt(num[1], 16) : Number(num[2]);
    if (code === 0 || code > 0x10ffff)
      throw new XmlError(`bad character reference &${ent}; near offset ${at}`);
    return String.fromCodePoint(code);
  });
}

/** Parses a whole document; returns its root element. */
export function parseXml(doc: string): XmlElement {
  let i = 0;
  const fail = (what: string): never => {
    throw new XmlError(`${what} at offset ${i}`);
  };
  const skipMisc = () => {
    for (;;) {
      while (i < doc.length && /\s/.test(doc[i] as string)) i++;
      if (doc.startsWith("<!--", i)) {
        const end = doc.indexOf("-->", i + 4);
        if (end < 0) fail("unterminated comment");
        i = end + 3;
      } else return;
    }
  };
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(doc);
    if (!m) return fail("expected a name");
    i += m[0].length;
    const n = m[0];
    return n.includes(":") ? n.slice(n.indexOf(":") + 1) : n;
  };
  const element = (depth: number): XmlElement => {
    if (depth > MAX_DEPTH) fail("elements nested too deep");
    if (doc[i] !== "<") fail('expected "<"');
    i++;
    const el: XmlElement = { name: name(), children: [], text: "" };
    // Attributes: name="value" or name='value', dropped.
    for (;;) {
      const before = i;
      while (/\s/.test(doc[i] ?? "")) i++;
      if (doc.startsWith("/>", i)) {
        i += 2;
        return el;
      }
      if (doc[i] === ">") {
        i++;
        break;
      }
      if (i === before) fail(`expected an attribute or the end of <${el.name}>`);
      name();
      if (doc[i] !== "=") fail('expected "=" after an attribute name');
      const q = doc[i + 1];
      if (q !== '"' && q !== "'") fail("expected a quoted attribute value");
      const end = doc.indexOf(q as string, i + 2);
      if (end < 0) fail("unterminated attribute value");
      decode(doc.slice(i + 2, end), i);
      i = end + 1;
    }
    for (;;) {
      const lt = doc.indexOf("<", i);
      if (lt < 0) fail(`<${el.name}> is not closed`);
      el.text += decode(doc.slice(i, lt), i);
      i = lt;
      if (doc.startsWith("</", i)) {
        i += 2;
        const close = name();
        if (close !== el.name) fail(`</${close}> closes <${el.name}>`);
        while (/\s/.test(doc[i] ?? "")) i++;
        if (doc[i] !== ">") fail('expected ">"');
        i++;
        return el;
      }
      if (doc.startsWith("<!--", i)) {
        const end = doc.indexOf("-->", i + 4);
        if (end < 0) fail("unterminated comment");
        i = end + 3;
      } else if (doc.startsWith("<![CDATA[", i)) {
        const end = doc.indexOf("]]>", i + 9);
        if (end < 0) fail("unterminated CDATA section");
        el.text += doc.slice(i + 9, end);
        i = end + 3;
      } else if (doc.startsWith("<!", i) || doc.startsWith("<?", i)) {
        fail("a declaration or processing instruction inside an element");
      } else {
        el.children.push(element(depth + 1));
      }
    }
  };
  if (doc.charCodeAt(0) === 0xfeff) i = 1;
  if (doc.startsWith("<?xml", i)) {
    const end = doc.indexOf("?>", i);
    if (end < 0) fail("unterminated XML declaration");
    i = end + 2;
  }
  skipMisc();
  if (doc.startsWith("<!", i) || doc.startsWith("<?", i)) fail("a DOCTYPE or processing instruction");
  const root = element(1);
  skipMisc();
  if (i < doc.length) fail("content after the root element");
  return root;
}

/** The first child element named `name`. */
export function xmlChild(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** Every child element named `name`. */
export function xmlChildren(el: XmlElement | undefined, name: string): XmlElement[] {
  return el?.children.filter((c) => c.name === name) ?? [];
}

/** The text of the element at `path` below `el` (each step the first child of that name). */
export function xmlText(el: XmlElement | undefined, ...path: string[]): string | undefined {
  let cur = el;
  for (const p of path) cur = xmlChild(cur, p);
  return cur?.text;
}

/** `s` escaped for XML text or an attribute value. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&${Object.keys(ENTITIES).find((k) => ENTITIES[k] === c)};`);
}
