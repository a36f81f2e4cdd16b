/**
 * Kong's form bodies (`application/x-www-form-urlencoded` and
 * `multipart/form-data`), so Kong's curl examples work as written:
 *
 *   -d name=r -d paths[]=/a -d 'paths[2]=/b'      → {name: "r", paths: ["/a", "/b"]}
 *   -d config.url=http://x -d config.headers.x-team=blue
 *                                                 → {config: {url: "http://x", headers: {"x-team": "blue"}}}
 *
 * Keys: `.` nests (not inside `[...]`), `x[]` appends, `x[n]` sets the n-th
 * item (1-based), `x[name]` a map key; a repeated key makes a list. Values
 * arrive as strings and are coerced by the JSON Schema that validates the
 * same body as JSON (Kong's `infer_value`): `""` is null, numbers and
 * `true` / `false` where the schema says so, a scalar where a list is
 * expected becomes a one-item list. Anything the schema does not know stays a
 * string and is refused by it as usual. Multipart is parsed by undici's
 * `Response.formData()` (Node's own fetch).
 */
/** A form body that cannot be read (the HTTP layer answers 400 with the message). */
export class FormBodyError extends Error {}

/** Kong's limit on form arguments (`Too many arguments` beyond). */
export const MAX_FORM_ARGS = 1000;

export const FORM_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data'] as const;

type Node = Record<string, unknown>;
type Segment = string | number | typeof APPEND;
const APPEND = Symbol('append');

/** A JSON Schema, as far as coercion reads it. */
export interface CoercionSchema {
  type?: string | readonly string[];
  properties?: Record<string, CoercionSchema>;
  additionalProperties?: boolean | CoercionSchema;
  items?: CoercionSchema;
  enum?: readonly unknown[];
}

export function isFormType(contentType: string | undefined): boolean {
  const type = contentType?.split(';')[0]!.trim().toLowerCase() ?? '';
  return (FORM_TYPES as readonly string[]).includes(type);
}

/** The form's fields, nested by Kong's key rules; values are strings (multipart files: their text). */
export async function parseForm(body: Buffer, contentType: string): Promise<Node> {
  const entries: [string, string][] = [];
  if (contentType.toLowerCase().startsWith('multipart/form-data')) {
    let form: FormData;
    try {
      form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    } catch (err) {
      throw new FormBodyError(`Cannot parse multipart body: ${(err as Error).message}`);
    }
    for (const [key, value] of form.entries()) entries.push([key, typeof value === 'string' ? value : await value.text()]);
  } else {
    for (const [key, value] of new URLSearchParams(body.toString('utf8'))) entries.push([key, value]);
  }
  if (entries.length > MAX_FORM_ARGS) throw new FormBodyError('Too many arguments');
  const root: Node = Object.create(null) as Node;
  for (const [key, value] of entries) assign(root, keyPath(key), value);
  return root;
}

/** `a.b[2].c[]` → ['a', 'b', 1, 'c', APPEND]; dots inside brackets stay in the name. */
function keyPath(key: string): Segment[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key[i];
    if (c === '[') depth++;
    else if (c === ']' && depth > 0) depth--;
    else if (c === '.' && depth === 0) {
      parts.push(key.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(key.slice(start));
  const path: Segment[] = [];
  for (const part of parts) {
    const open = part.indexOf('[');
    if (open <= 0 || !part.endsWith(']')) {
      path.push(part);
      continue;
    }
    path.push(part.slice(0, open));
    for (const m of part.slice(open).matchAll(/\[([^\]]*)\]/g)) {
      const inner = m[1]!;
      if (inner === '') path.push(APPEND);
      else if (/^[1-9]\d{0,5}$/.test(inner)) path.push(Number(inner) - 1);
      else path.push(inner);
    }
  }
  return path;
}

function assign(root: Node, path: Segment[], value: string): void {
  let node: Node | unknown[] = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    const next = path[i + 1];
    const container = (): Node | unknown[] => (next === APPEND || typeof next === 'number' ? [] : (Object.create(null) as Node));
    if (Array.isArray(node)) {
      const index = seg === APPEND ? node.length : typeof seg === 'number' ? seg : Number.NaN;
      if (Number.isNaN(index)) throw new FormBodyError(`Cannot mix list items and names in form key ${JSON.stringify(path.filter((s) => s !== APPEND).join('.'))}`);
      if (last) node[index] = value;
      else node = (node[index] ??= container()) as Node | unknown[];
      continue;
    }
    const key = String(seg === APPEND ? '' : seg);
    const existing = Object.hasOwn(node, key) ? node[key] : undefined;
    if (last) {
      // A repeated key makes a list (`paths=/a&paths=/b`).
      if (existing === undefined) node[key] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else node[key] = [existing, value];
    } else {
      node = (existing !== undefined && typeof existing === 'object' ? existing : (node[key] = container())) as Node | unknown[];
    }
  }
}

function types(schema: CoercionSchema): readonly string[] {
  if (schema.type === undefined) return [];
  return typeof schema.type === 'string' ? [schema.type] : schema.type;
}

/** Form strings turned into the types `schema` expects (see the module comment); unknown fields are left alone. */
export function coerceForm(value: unknown, schema: CoercionSchema | undefined): unknown {
  if (schema === undefined) return value;
  const t = types(schema);
  if (typeof value === 'string') {
    if (value === '' && !(t.length === 1 && t[0] === 'string')) return null;
    if (t.includes('array')) return [coerceForm(value, schema.items)];
    if ((t.includes('integer') || t.includes('number')) && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
    if (t.includes('boolean') && (value === 'true' || value === 'false')) return value === 'true';
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => coerceForm(v, schema.items));
  if (value !== null && typeof value === 'object') {
    const node = value as Node;
    for (const key of Object.keys(node)) {
      const sub = schema.properties && Object.hasOwn(schema.properties, key) ? schema.properties[key] : typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
      node[key] = coerceForm(node[key], sub);
    }
  }
  return value;
}
