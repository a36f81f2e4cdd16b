/**
 * Kong's `POST /schemas/plugins/validate`: checks a plugin entry's
 * `configuration` against the configuration schema in the plugin's manifest
 * (`<name>.manifest.json` next to its `.wasm`, written by the build:
 * scripts/manifests.mjs) without creating anything. The dashboard calls it
 * before it sends a plugin; any client may.
 *
 * The plugin itself stays the authority (its on_configure may refuse what the
 * schema allows); the schema catches the common mistakes with messages that
 * name the field.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import { issuesFromAjv } from '../config/issues.js';
import type { HookwireConfig } from '../config/schema.js';
import type { ConfigIssue } from '../errors.js';
import { BODY_LIMIT, type ApiRoute } from './api.js';
import { AdminHttpError, readObject, schemaViolation } from './http.js';

/** `/x/http-log.wasm` → `/x/http-log.manifest.json`. */
export function manifestPath(wasm: string): string {
  return wasm.replace(/\.wasm$/i, '') + '.manifest.json';
}

/** Where a plugin's `wasm` points, resolved as the configuration resolves it (modules_dir, else the config's directory). */
export function resolveWasm(config: HookwireConfig, wasm: string): string {
  return resolve(config.wasm.modules_dir ?? config.base_dir, wasm);
}

/** The plugin's `configuration` as the plugin will see it: JSON text is parsed, other values taken as they are. */
function configurationValue(value: unknown): unknown {
  if (typeof value !== 'string') return value ?? null;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Problems of `configuration` against `schema`, each under /configuration. */
export function configurationIssues(schema: object, configuration: unknown): ConfigIssue[] {
  // A fresh validator per call: manifests change with rebuilds, and the admin API is not a hot path.
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, allowUnionTypes: true });
  const validate = ajv.compile(schema);
  const value = configurationValue(configuration);
  // No configuration is what a plugin gets when none is set; its schema describes an object.
  if (value === null) return [];
  if (validate(value)) return [];
  return issuesFromAjv(validate.errors ?? []).map((i) => ({ path: `/configuration${i.path}`, message: i.message }));
}

async function readSchema(path: string): Promise<object | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  const manifest = JSON.parse(text) as { config_schema?: unknown };
  const schema = manifest.config_schema;
  return schema !== null && typeof schema === 'object' ? schema : null;
}

export const VALIDATE_PLUGIN_ROUTE: ApiRoute = {
  method: 'POST',
  path: '/schemas/plugins/validate',
  operationId: 'validatePluginConfiguration',
  summary: "Check a plugin's configuration against its manifest",
  description:
    "Kong's schema check, without creating anything: the body is a plugin entry (`wasm` required; other fields ignored); its `configuration` is checked against `config_schema` of the manifest next to the .wasm (`<name>.manifest.json`, written by the build). 200 when it conforms; 400 naming each field that does not (under `configuration`); 404 when the .wasm has no manifest (nothing to check against). The plugin's own on_configure may still refuse it when the plugin is created.",
  tags: ['plugins'],
  body: {
    schema: {
      type: 'object',
      required: ['wasm'],
      properties: { wasm: { type: 'string', minLength: 1, description: 'as in a plugin entry' }, configuration: { description: 'as in a plugin entry' } },
    },
    required: true,
  },
  responses: {
    200: {
      description: 'The configuration conforms',
      schema: { type: 'object', required: ['message', 'manifest'], properties: { message: { type: 'string' }, manifest: { type: 'string', description: 'the manifest checked against' } } },
    },
    400: { description: 'The body or the configuration is invalid; every problem names its field', schema: { $ref: '#/components/schemas/SchemaViolation' } },
    404: { description: 'No manifest (or no config_schema in it) next to the .wasm', schema: { $ref: '#/components/schemas/Error' } },
    413: { description: 'The body is too large', schema: { $ref: '#/components/schemas/Error' } },
    415: { description: 'The body is not JSON (application/json)', schema: { $ref: '#/components/schemas/Error' } },
  },
  async handle(ctx, req) {
    const body = await readObject(req.req, BODY_LIMIT);
    const { wasm, configuration } = body as { wasm?: unknown; configuration?: unknown };
    if (typeof wasm !== 'string' || wasm === '') throw schemaViolation([{ path: '/wasm', message: 'is required: the path of the .wasm file' }]);
    const path = manifestPath(resolveWasm(ctx.gateway.config, wasm));
    let schema: object | null;
    try {
      schema = await readSchema(path);
    } catch (err) {
      throw new AdminHttpError(404, `The manifest ${path} is not JSON (${(err as Error).message}): nothing to check against`);
    }
    if (schema === null) throw new AdminHttpError(404, `No manifest with a config_schema at ${path}: nothing to check against`);
    const issues = configurationIssues(schema, configuration);
    if (issues.length) throw schemaViolation(issues);
    return { status: 200, body: { message: 'schema validation successful', manifest: path } };
  },
};
