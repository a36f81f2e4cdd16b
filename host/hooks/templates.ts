/**
 * webhook-custom templates, rendered with Handlebars (handlebarsjs.com) where
 * Kong uses lua-resty-template: `{{x}}` is HTML-escaped (as Kong's `{{x}}`),
 * `{{{x}}}` is raw (Kong's `{*x*}`); `{{#if}}`, `{{#each}}`, `{{a.b}}` work.
 * Unlike lua-resty-template's `{% lua %}`, a template cannot run code.
 * Handlebars blocks prototype properties by default (4.6+), and this
 * instance has no custom helpers or partials.
 *
 * Compiled templates are cached by their text (bounded).
 */
import Handlebars from 'handlebars';

const hb = Handlebars.create();
const MAX_CACHED = 1000;
const cache = new Map<string, Handlebars.TemplateDelegate>();

/** Compiles (or finds) a template; throws Error with Handlebars' message when it does not parse. */
export function compileTemplate(text: string): Handlebars.TemplateDelegate {
  let t = cache.get(text);
  if (t) return t;
  // precompile parses eagerly; compile() alone would defer syntax errors to the first render.
  hb.precompile(text, { strict: false });
  t = hb.compile(text, { strict: false, noEscape: false });
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
  cache.set(text, t);
  return t;
}

export function render(text: string, data: Record<string, unknown>): string {
  // A text without mustaches renders to itself: skip the template machinery.
  if (!text.includes('{{')) return text;
  return compileTemplate(text)(data);
}

/** The reason a template does not parse, or null. */
export function templateError(text: string): string | null {
  try {
    compileTemplate(text);
    return null;
  } catch (err) {
    // Handlebars: "Parse error on line 1:\n<text>\n----^\nExpecting ..., got 'EOF'": one line, with the column.
    const lines = (err as Error).message.split('\n');
    const caret = lines.find((l) => /^-*\^$/.test(l));
    const head = (lines[0] ?? 'does not parse').replace(/:$/, '');
    const why = lines[lines.length - 1] ?? '';
    const text = caret ? `${head}, column ${caret.length}: ${why}` : lines.join(' ');
    return text.length > 300 ? `${text.slice(0, 297)}...` : text;
  }
}
