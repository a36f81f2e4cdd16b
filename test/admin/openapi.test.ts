// docs/openapi.json is the Admin API's route table, and every route the admin listener serves is documented.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../../host/admin/openapi.js';
import { ROOT } from '../helpers/paths.js';
import { call, startTestApp, type TestApp } from './helpers.js';

const FILE = join(ROOT, 'docs', 'openapi.json');
const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

let t: TestApp;
let doc: any;

beforeAll(async () => {
  t = await startTestApp();
  doc = openApiDocument();
});

afterAll(async () => {
  await t?.close();
});

function documented(d: any): string[] {
  return Object.entries(d.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => METHODS.includes(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
}

describe('OpenAPI document', () => {
  it('docs/openapi.json is up to date (regenerate: npx hookwire openapi > docs/openapi.json)', () => {
    const generated = JSON.stringify(doc, null, 2) + '\n';
    if (process.env.HOOKWIRE_UPDATE_OPENAPI === '1') writeFileSync(FILE, generated);
    expect(readFileSync(FILE, 'utf8')).toBe(generated);
  });

  it('documents every route the admin listener registers, and nothing else', () => {
    const registered = t.app.admin.routes().map((r) => `${r.method} ${r.path}`).sort();
    expect(documented(doc).sort()).toEqual(registered);
    // Only the ingest endpoint skips the admin token.
    expect(t.app.admin.routes().filter((r) => r.public).map((r) => r.path)).toEqual(['/event-hooks/ingest']);
  });

  it('is served at GET /openapi.json', async () => {
    const r = await call(t.admin, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body).toEqual(JSON.parse(readFileSync(FILE, 'utf8')));
  });

  it('is OpenAPI 3.1 with unique operation ids, declared path parameters and resolvable $refs', () => {
    expect(doc.openapi).toBe('3.1.0');
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      const params = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        expect(ids.has(op.operationId), `${method} ${path}: duplicate operationId ${op.operationId}`).toBe(false);
        ids.add(op.operationId);
        const declared = (op.parameters ?? []).filter((p: any) => p.in === 'path').map((p: any) => p.name);
        expect(declared, `${method} ${path}`).toEqual(params);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      }
    }
    const text = JSON.stringify(doc);
    for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) expect(doc.components.schemas, m[1]).toHaveProperty(m[1]!);
    // Every component is a schema JSON Schema 2020-12 (OpenAPI 3.1's dialect) compiles.
    const ajv = new Ajv2020({ strict: false });
    for (const [name, schema] of Object.entries(doc.components.schemas)) ajv.addSchema(schema as object, `#/components/schemas/${name}`);
    expect(() => ajv.compile({ $ref: '#/components/schemas/EventHookInput' })).not.toThrow();
  });

  it('documents Kong\'s status codes on the event-hooks routes', () => {
    expect(Object.keys(doc.paths['/event-hooks'].post.responses)).toContain('201');
    expect(Object.keys(doc.paths['/event-hooks/{id}'].delete.responses)).toContain('204');
    expect(doc.paths['/event-hooks/{id}'].put).toBeUndefined();
    expect(Object.keys(doc.paths['/event-hooks/ingest'].post.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '404', '503']));
    expect(doc.paths['/event-hooks/ingest'].post.security).toEqual([{ ingestToken: [] }]);
  });
});
