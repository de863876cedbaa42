// Checks shared by the report, demo and walkthrough tests: a strict well-formedness check of generated
// HTML (every non-void element closed in order, attribute quotes balanced) and the URL check.
const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);

/** Throws unless every element of `html` is closed in order (stricter than an HTML5 parser). */
export function checkWellFormed(html: string): { elements: number } {
  const stack: string[] = [];
  let elements = 0;
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'))?)*)\s*(\/?)>|<!doctype html>|<(?![a-zA-Z/!])/gi;
  let last = 0;
  for (let m = re.exec(html); m; m = re.exec(html)) {
    const between = html.slice(last, m.index);
    if (/[<>]/.test(between.replace(/&[a-z]+;|&#\d+;/g, ''))) throw new Error(`stray angle bracket near ${JSON.stringify(html.slice(Math.max(0, m.index - 60), m.index))}`);
    last = m.index + m[0].length;
    if (m[0].toLowerCase() === '<!doctype html>') continue;
    if (m[2] === undefined) throw new Error(`'<' not starting a tag near ${JSON.stringify(html.slice(m.index, m.index + 40))}`);
    const name = m[2].toLowerCase();
    if (m[1]) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      elements++;
      if (!VOID.has(name) && !m[4]) stack.push(name);
    }
  }
  if (/[<>]/.test(html.slice(last))) throw new Error('stray angle bracket at the end');
  if (stack.length) throw new Error(`unclosed: ${stack.join(' > ')}`);
  return { elements };
}

/** Every URL-like reference in the HTML that is not a data: URL or a #fragment. */
export function externalReferences(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/(?:src|href|xlink:href|action|poster)\s*=\s*["']([^"']*)["']/gi)) if (!/^(data:|#)/.test(m[1])) out.push(m[1]);
  for (const m of html.matchAll(/url\(\s*["']?([^"')]*)/gi)) if (!/^(data:|#)/.test(m[1])) out.push(m[1]);
  for (const m of html.matchAll(/(?:https?:|ftp:|wss?:)\/\/[^\s"'<>)]*/gi)) out.push(m[0]);
  if (/@import|<script/i.test(html)) out.push('(script or @import)');
  return out;
}
