/**
 * Bearer tokens of the admin listener and the ingest endpoint: one reading of
 * the Authorization header for both. The scheme is case-insensitive (RFC 9110
 * §11.1: `bearer`, `Bearer` and `BEARER` are the same), the token is compared
 * in constant time whatever the lengths.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth !== 'string') return undefined;
  const m = /^Bearer[ \t]+(\S.*)$/i.exec(auth);
  return m ? m[1]!.trim() : undefined;
}

/** Whether `given` is `expected`, in constant time whatever the lengths (both sides hashed first). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
