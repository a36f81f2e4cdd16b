import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { WebhookVerificationError } from '../../host/errors.js';
import {
  kongSignature,
  publicKeyOf,
  signEntry,
  standardSignature,
  verifyKongSignature,
  verifyWebhook,
} from '../../host/hooks/signing.js';
import { ROOT } from '../helpers/paths.js';

// A copy of shared/conformance/webhook-signature-vectors.json, so a clean clone runs these too.
const FIXTURE = join(ROOT, 'test', 'hooks', 'fixtures', 'webhook-signature-vectors.json');
const SHARED = join(ROOT, '..', 'shared', 'conformance', 'webhook-signature-vectors.json');
// Convoy's advanced and Hook0's schemes (timestamp-prefixed hex HMACs) are in the shared file but
// are not schemes hookwire signs or verifies; the file is kept whole so it stays the shared one.
const vectors = JSON.parse(readFileSync(FIXTURE, 'utf8')) as {
  convoy_simple_sha256_hex: { secret_utf8: string; payload: string; 'header_X-Convoy-Signature': string };
  standard_webhooks_v1_hmac: { secret: string; msg_id: string; timestamp: number; payload: string; signed_content: string; expected_signature: string };
  standard_webhooks_v1a_ed25519: { secret_key: string; public_key: string; msg_id: string; timestamp: number; payload: string; expected_signature: string };
};
const V1 = vectors.standard_webhooks_v1_hmac;
const V1A = vectors.standard_webhooks_v1a_ed25519;

function headers(id: string, ts: number, sig: string): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': sig };
}

describe('Standard Webhooks conformance vectors', () => {
  it.skipIf(!existsSync(SHARED))('the fixture is the shared conformance file, byte for byte', () => {
    expect(readFileSync(FIXTURE, 'utf8')).toBe(readFileSync(SHARED, 'utf8'));
  });

  it('v1 (HMAC-SHA256) signs vector A exactly', () => {
    expect(signEntry(V1.secret, V1.msg_id, V1.timestamp, V1.payload)).toBe(V1.expected_signature);
    expect(`${V1.msg_id}.${V1.timestamp}.${V1.payload}`).toBe(V1.signed_content);
    // The same from bytes, not a string.
    expect(signEntry(V1.secret, V1.msg_id, V1.timestamp, Buffer.from(V1.payload))).toBe(V1.expected_signature);
  });

  it('v1a (ed25519) signs vector B exactly, and the whsk_ key yields the vector public key', () => {
    expect(signEntry(V1A.secret_key, V1A.msg_id, V1A.timestamp, V1A.payload)).toBe(V1A.expected_signature);
    expect(publicKeyOf(V1A.secret_key)).toBe(V1A.public_key);
  });

  it('the verifier accepts both vectors at their timestamp', () => {
    const opts = { now: V1.timestamp };
    expect(verifyWebhook(V1.secret, headers(V1.msg_id, V1.timestamp, V1.expected_signature), V1.payload, opts)).toEqual({
      id: V1.msg_id,
      timestamp: V1.timestamp,
    });
    expect(verifyWebhook(V1A.public_key, headers(V1A.msg_id, V1A.timestamp, V1A.expected_signature), Buffer.from(V1A.payload), opts).id).toBe(V1A.msg_id);
  });

  it('a secret works with or without the whsec_ prefix', () => {
    const bare = V1.secret.slice('whsec_'.length);
    expect(verifyWebhook(bare, headers(V1.msg_id, V1.timestamp, V1.expected_signature), V1.payload, { now: V1.timestamp }).id).toBe(V1.msg_id);
  });
});

describe('verifier negative cases (vector C)', () => {
  const ok = headers(V1.msg_id, V1.timestamp, V1.expected_signature);
  const now = { now: V1.timestamp };
  const fails = (h: Record<string, string>, body = V1.payload, key = V1.secret, o = now): string => {
    try {
      verifyWebhook(key, h, body, o);
    } catch (err) {
      expect(err).toBeInstanceOf(WebhookVerificationError);
      expect((err as WebhookVerificationError).code).toBe('HW_ERR_WEBHOOK_SIGNATURE');
      return (err as Error).message;
    }
    throw new Error('verified but should not have');
  };

  it('missing id, timestamp or signature header', () => {
    for (const k of Object.keys(ok)) {
      const h = { ...ok };
      delete h[k];
      expect(fails(h)).toMatch(/missing required headers/);
    }
  });

  it('a timestamp that is not a number', () => {
    expect(fails({ ...ok, 'webhook-timestamp': 'hello' })).toMatch(/invalid webhook-timestamp/);
  });

  it('garbage, truncated and empty signatures', () => {
    expect(fails({ ...ok, 'webhook-signature': 'v1,dawfeoifkpqwoekfpqoekf' })).toMatch(/no matching signature/);
    expect(fails({ ...ok, 'webhook-signature': V1.expected_signature.slice(0, -4) })).toMatch(/no matching signature/);
    expect(fails({ ...ok, 'webhook-signature': 'v1,' })).toMatch(/no matching signature/);
  });

  it('timestamps more than 5 minutes old or in the future', () => {
    expect(fails(ok, V1.payload, V1.secret, { now: V1.timestamp + 301 })).toMatch(/too old/);
    expect(fails(ok, V1.payload, V1.secret, { now: V1.timestamp - 301 })).toMatch(/too new/);
    // Within tolerance on both sides.
    expect(verifyWebhook(V1.secret, ok, V1.payload, { now: V1.timestamp + 299 }).id).toBe(V1.msg_id);
    expect(verifyWebhook(V1.secret, ok, V1.payload, { now: V1.timestamp - 299 }).id).toBe(V1.msg_id);
  });

  it('a multi-signature header with one valid entry verifies', () => {
    const sig = `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ${V1.expected_signature} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=`;
    expect(verifyWebhook(V1.secret, { ...ok, 'webhook-signature': sig }, V1.payload, now).id).toBe(V1.msg_id);
  });

  it('an empty secret or a bare whsec_ is an error', () => {
    expect(fails(ok, V1.payload, '')).toMatch(/empty secret/);
    expect(fails(ok, V1.payload, 'whsec_')).toMatch(/empty secret/);
  });

  it('header names are case-insensitive (plain objects and Headers)', () => {
    const upper = { 'Webhook-Id': V1.msg_id, 'WEBHOOK-TIMESTAMP': String(V1.timestamp), 'Webhook-Signature': V1.expected_signature };
    expect(verifyWebhook(V1.secret, upper, V1.payload, now).id).toBe(V1.msg_id);
    expect(verifyWebhook(V1.secret, new Headers(upper), V1.payload, now).id).toBe(V1.msg_id);
  });

  it('one changed byte of the body fails (the raw bytes are what is signed)', () => {
    expect(fails(ok, V1.payload.replace(' ', ''))).toMatch(/no matching signature/);
    expect(fails(ok, `${V1.payload}\n`)).toMatch(/no matching signature/);
  });

  it('a v1 entry is not checked against an ed25519 key and vice versa', () => {
    expect(fails(ok, V1.payload, V1A.public_key)).toMatch(/no matching signature/);
    const b = headers(V1A.msg_id, V1A.timestamp, V1A.expected_signature);
    expect(fails(b, V1A.payload, V1.secret)).toMatch(/no matching signature/);
  });
});

describe('rotation and the Kong signature', () => {
  it('every secret signs: one entry each, and each verifies alone', () => {
    const other = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const h = standardSignature([V1.secret, other, V1A.secret_key], 'msg_x', 1700000000, '{"a":1}');
    const entries = h.split(' ');
    expect(entries).toHaveLength(3);
    expect(entries[0]!.startsWith('v1,')).toBe(true);
    expect(entries[2]!.startsWith('v1a,')).toBe(true);
    const hd = headers('msg_x', 1700000000, h);
    for (const key of [V1.secret, other, V1A.public_key]) {
      expect(verifyWebhook(key, hd, '{"a":1}', { now: 1700000000 }).id).toBe('msg_x');
    }
  });

  it('X-Kong-Signature is sha256=<hex HMAC of the body> keyed by the secret string', () => {
    const body = '{"event":"consumers","source":"crud"}';
    const expected = createHmac('sha256', 'my-kong-secret').update(body).digest('hex');
    expect(kongSignature('my-kong-secret', body)).toBe(`sha256=${expected}`);
    expect(verifyKongSignature('my-kong-secret', `sha256=${expected}`, Buffer.from(body))).toBe(true);
    expect(verifyKongSignature('other', `sha256=${expected}`, body)).toBe(false);
    expect(verifyKongSignature('my-kong-secret', `sha1=${expected}`, body)).toBe(false);
  });

  it("X-Kong-Signature's HMAC is Convoy's simple scheme (hex HMAC-SHA256 of the raw body): the Convoy vector signs and verifies", () => {
    const c = vectors.convoy_simple_sha256_hex;
    expect(kongSignature(c.secret_utf8, c.payload)).toBe(`sha256=${c['header_X-Convoy-Signature']}`);
    expect(verifyKongSignature(c.secret_utf8, `sha256=${c['header_X-Convoy-Signature']}`, Buffer.from(c.payload))).toBe(true);
    expect(verifyKongSignature(c.secret_utf8, `sha256=${c['header_X-Convoy-Signature']}`, c.payload + ' ')).toBe(false);
  });

  it('Kong <= 3.13: sha1=<hex HMAC-SHA1 of the body>, signed and verified', () => {
    const body = '{"event":"consumers","source":"crud"}';
    const expected = createHmac('sha1', 'my-kong-secret').update(body).digest('hex');
    expect(kongSignature('my-kong-secret', body, 'sha1')).toBe(`sha1=${expected}`);
    expect(verifyKongSignature('my-kong-secret', `sha1=${expected}`, body)).toBe(true);
    expect(verifyKongSignature('my-kong-secret', `md5=${expected}`, body)).toBe(false);
  });
});
