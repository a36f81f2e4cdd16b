/**
 * Webhook signatures.
 *
 * Standard Webhooks (standardwebhooks.com, spec v1.0.0): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}` over the exact bytes sent.
 * - `v1`: HMAC-SHA256, secret `whsec_` + base64 (a bare base64 secret works too);
 * - `v1a`: ed25519, secret key `whsk_` + base64(seed32 ‖ pub32), public key `whpk_` + base64(pub32).
 * `webhook-signature` lists one `version,base64` entry per secret, space
 * separated: during a rotation every secret signs and a receiver accepts the
 * message if any entry verifies.
 *
 * Kong: `X-Kong-Signature: sha256=<hex HMAC-SHA256(secret, body)>` (Kong
 * ≥ 3.14) or `sha1=<hex HMAC-SHA1(secret, body)>` (Kong ≤ 3.13), keyed by the
 * secret string's UTF-8 bytes, with no timestamp. Nothing is signed when
 * there is no body, as in Kong.
 */
import { createHmac, createPrivateKey, createPublicKey, sign as edSign, timingSafeEqual, verify as edVerify, type KeyObject } from 'node:crypto';
import { WebhookVerificationError } from '../errors.js';
import type { KongSignatureAlgorithm } from './types.js';

/** Standard Webhooks' tolerance for the timestamp, in seconds (every reference library uses 5 min). */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export type SigningKey = { kind: 'hmac'; key: Buffer } | { kind: 'ed25519'; key: KeyObject };

const keyCache = new Map<string, SigningKey>();

/** The signing key of a secret (`whsec_…`, bare base64, or `whsk_…`); cached. */
export function signingKey(secret: string): SigningKey {
  let k = keyCache.get(secret);
  if (k) return k;
  if (secret.startsWith('whsk_')) {
    const raw = Buffer.from(secret.slice(5), 'base64');
    if (raw.length !== 64) throw new TypeError('a whsk_ key must be base64 of 64 bytes');
    k = { kind: 'ed25519', key: createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' }) };
  } else {
    k = { kind: 'hmac', key: Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64') };
  }
  if (keyCache.size > 10_000) keyCache.clear();
  keyCache.set(secret, k);
  return k;
}

function signedContent(id: string, timestamp: number, body: Uint8Array | string): Buffer {
  const prefix = `${id}.${timestamp}.`;
  return typeof body === 'string' ? Buffer.from(prefix + body, 'utf8') : Buffer.concat([Buffer.from(prefix, 'utf8'), body]);
}

/** One `webhook-signature` entry (`v1,…` or `v1a,…`) for one secret. */
export function signEntry(secret: string, id: string, timestamp: number, body: Uint8Array | string): string {
  const k = signingKey(secret);
  if (k.kind === 'hmac') return `v1,${createHmac('sha256', k.key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
  return `v1a,${edSign(null, signedContent(id, timestamp, body), k.key).toString('base64')}`;
}

/** The `webhook-signature` header: every secret signs (rotation). */
export function standardSignature(secrets: readonly string[], id: string, timestamp: number, body: Uint8Array | string): string {
  // One secret is the common case: no list, no join.
  if (secrets.length === 1) return signEntry(secrets[0]!, id, timestamp, body);
  return secrets.map((s) => signEntry(s, id, timestamp, body)).join(' ');
}

/** Whether a secret is a Standard Webhooks key by its form (`whsec_…` or `whsk_…`), as `signature: auto` decides. */
export function isStandardWebhooksKey(secret: string): boolean {
  return secret.startsWith('whsec_') || secret.startsWith('whsk_');
}

/** The `X-Kong-Signature` value: `<algorithm>=` + hex HMAC of the body, keyed by the secret's UTF-8 bytes. */
export function kongSignature(secret: string, body: Uint8Array | string, algorithm: KongSignatureAlgorithm = 'sha256'): string {
  return `${algorithm}=${createHmac(algorithm, Buffer.from(secret, 'utf8')).update(body).digest('hex')}`;
}

/** The `whpk_` public key of a `whsk_` secret key (give it to receivers). */
export function publicKeyOf(secretKey: string): string {
  const k = signingKey(secretKey);
  if (k.kind !== 'ed25519') throw new TypeError('not a whsk_ key');
  const spki = createPublicKey(k.key).export({ format: 'der', type: 'spki' });
  return `whpk_${spki.subarray(SPKI_ED25519_PREFIX.length).toString('base64')}`;
}

export interface VerifyOptions {
  /** Seconds; default 300. */
  toleranceSeconds?: number;
  /** Current time in seconds; default Date.now()/1000. */
  now?: number;
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const rec = headers as Record<string, string | string[] | undefined>;
  for (const k of Object.keys(rec)) {
    if (k.toLowerCase() === name) {
      const v = rec[k];
      return Array.isArray(v) ? v.join(', ') : v;
    }
  }
  return undefined;
}

function toBytes(body: Uint8Array | string): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Verifies a received Standard Webhooks message over its **raw** body bytes
 * (never a re-serialized JSON: a parser reorders, re-escapes and re-spaces).
 * `key` is the endpoint's `whsec_…` secret (or bare base64) for v1, or the
 * `whpk_…` public key for v1a. Header names are case-insensitive. Throws
 * WebhookVerificationError with the reason; returns the parsed id and
 * timestamp. Signatures are compared in constant time.
 */
export function verifyWebhook(
  key: string,
  headers: HeaderSource,
  body: Uint8Array | string,
  options: VerifyOptions = {},
): { id: string; timestamp: number } {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const sig = header(headers, 'webhook-signature');
  if (!id || !ts || !sig) throw new WebhookVerificationError('missing required headers (webhook-id, webhook-timestamp, webhook-signature)');
  if (!/^\d+$/.test(ts)) throw new WebhookVerificationError('invalid webhook-timestamp');
  const timestamp = Number(ts);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (timestamp < now - tolerance) throw new WebhookVerificationError('message timestamp too old');
  if (timestamp > now + tolerance) throw new WebhookVerificationError('message timestamp too new');

  let version: 'v1' | 'v1a';
  let check: (content: Buffer, sig: Buffer) => boolean;
  if (key.startsWith('whpk_')) {
    const raw = Buffer.from(key.slice(5), 'base64');
    if (raw.length !== 32) throw new WebhookVerificationError('a whpk_ key must be base64 of 32 bytes');
    const pub = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
    version = 'v1a';
    check = (content, s) => s.length === 64 && edVerify(null, content, pub, s);
  } else {
    const b64 = key.startsWith('whsec_') ? key.slice(6) : key;
    const secret = Buffer.from(b64, 'base64');
    if (secret.length === 0) throw new WebhookVerificationError('empty secret');
    version = 'v1';
    check = (content, s) => {
      const expected = createHmac('sha256', secret).update(content).digest();
      return s.length === expected.length && timingSafeEqual(s, expected);
    };
  }
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`, 'utf8'), toBytes(body)]);
  for (const entry of sig.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== version) continue;
    const value = entry.slice(comma + 1);
    if (value.length === 0) continue;
    if (check(content, Buffer.from(value, 'base64'))) return { id, timestamp };
  }
  throw new WebhookVerificationError('no matching signature found');
}

/** Verifies `X-Kong-Signature: sha256=<hex>` (or Kong ≤ 3.13's `sha1=<hex>`) over the raw body; constant time. */
export function verifyKongSignature(secret: string, headerValue: string | undefined, body: Uint8Array | string): boolean {
  if (!headerValue) return false;
  const eq = headerValue.indexOf('=');
  const algorithm = headerValue.slice(0, eq);
  if (algorithm !== 'sha256' && algorithm !== 'sha1') return false;
  const got = Buffer.from(headerValue.slice(eq + 1), 'hex');
  const expected = createHmac(algorithm, Buffer.from(secret, 'utf8')).update(toBytes(body)).digest();
  return got.length === expected.length && timingSafeEqual(got, expected);
}
