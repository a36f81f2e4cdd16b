/**
 * The certificates of one TLS listener (proxy or admin): PEM files read and
 * checked, one SecureContext per certificate, the one for a client's SNI
 * name chosen per handshake, and a reload (SIGHUP) that swaps them for new
 * handshakes only: connections already open keep theirs.
 *
 * ```ts
 * const certs = ListenerCertificates.load(listener.tls, logger);  // TlsConfigError naming the file
 * const server = createHttpsServer(certs.serverOptions(), handler);
 * certs.reload(server);                                            // re-read the files; throws, old ones keep serving
 * ```
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions, type TlsOptions, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config/schema.js';
import { TlsConfigError } from './errors.js';

/** What a listener's handshakes need: the default context's options and the contexts by SNI name. */
interface Loaded {
  /** Options of the first certificate (served when SNI names no other): setSecureContext takes these. */
  readonly defaults: SecureContextOptions;
  readonly defaultContext: SecureContext;
  /** Lower-case DNS names (SAN, else CN) to their certificate's context. */
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** "*.example.com" certificates by their suffix ".example.com". */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
}

function readPem(file: string, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(file, `cannot read the ${what} file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  if (!bytes.includes('-----BEGIN ')) throw new TlsConfigError(file, `is not a PEM ${what} (no "-----BEGIN" line)`);
  return bytes;
}

/**
 * A PEM file of CA certificates (a listener's client_ca, a service's
 * ca_file), checked to hold at least one readable certificate.
 */
export function readCaBundle(file: string): Buffer {
  const ca = readPem(file, 'CA certificate');
  try {
    new X509Certificate(ca);
  } catch (err) {
    throw new TlsConfigError(file, `holds no readable CA certificate (${(err as Error).message})`, { cause: err });
  }
  return ca;
}

/** The DNS names a certificate is for: its subjectAltName DNS entries, else its subject CN. */
function dnsNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(', ')) if (entry.startsWith('DNS:')) names.push(entry.slice(4).toLowerCase());
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
    if (cn !== undefined) names.push(cn.toLowerCase());
  }
  return names;
}

function load(tls: TlsConfig, logger: Logger): Loaded {
  const shared: SecureContextOptions = { minVersion: tls.min_version };
  if (tls.ciphers !== null) shared.ciphers = tls.ciphers;
  if (tls.client_ca !== null) shared.ca = readCaBundle(tls.client_ca);
  let defaults: SecureContextOptions | null = null;
  let defaultContext: SecureContext | null = null;
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  const now = Date.now();
  for (const pair of tls.certificates) {
    const certPem = readPem(pair.cert, 'certificate');
    const keyPem = readPem(pair.key, 'private key');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch (err) {
      throw new TlsConfigError(pair.cert, `is not a readable certificate (${(err as Error).message})`, { cause: err });
    }
    let matches: boolean;
    try {
      matches = cert.checkPrivateKey(createPrivateKey(keyPem));
    } catch (err) {
      throw new TlsConfigError(pair.key, `is not a readable private key (${(err as Error).message}; encrypted keys are not supported)`, { cause: err });
    }
    if (!matches) throw new TlsConfigError(pair.key, `does not match the certificate ${pair.cert} (a key of another certificate?)`);
    // An expired certificate still serves (clients decide); the operator is told.
    if (Date.parse(cert.validTo) < now) logger.warn({ file: pair.cert, valid_to: cert.validTo }, `certificate ${pair.cert} expired on ${cert.validTo}`);
    else if (Date.parse(cert.validFrom) > now) logger.warn({ file: pair.cert, valid_from: cert.validFrom }, `certificate ${pair.cert} is not valid before ${cert.validFrom}`);
    const options: SecureContextOptions = { ...shared, cert: certPem, key: keyPem };
    let context: SecureContext;
    try {
      context = createSecureContext(options);
    } catch (err) {
      throw new TlsConfigError(pair.cert, `cannot be used with ${pair.key} (${(err as Error).message})`, { cause: err });
    }
    if (defaults === null) {
      defaults = options;
      defaultContext = context;
    }
    // The first certificate naming a host wins, as listed.
    for (const name of dnsNames(cert)) {
      if (name.startsWith('*.')) {
        if (!wildcard.has(name.slice(1))) wildcard.set(name.slice(1), context);
      } else if (!exact.has(name)) exact.set(name, context);
    }
  }
  // The schema requires at least one certificate.
  return { defaults: defaults!, defaultContext: defaultContext!, exact, wildcard };
}

export class ListenerCertificates {
  private loaded: Loaded;

  private constructor(
    private readonly tls: TlsConfig,
    private readonly logger: Logger,
  ) {
    this.loaded = load(tls, logger);
  }

  /** Read and check every file of `tls`; TlsConfigError names the file at fault. */
  static load(tls: TlsConfig, logger: Logger): ListenerCertificates {
    return new ListenerCertificates(tls, logger);
  }

  /** The context for a client's SNI name: exact name, then a wildcard one label up, then the first certificate. */
  contextFor(servername: string): SecureContext {
    const l = this.loaded;
    const name = servername.toLowerCase();
    const hit = l.exact.get(name);
    if (hit !== undefined) return hit;
    const dot = name.indexOf('.');
    return (dot > 0 ? l.wildcard.get(name.slice(dot)) : undefined) ?? l.defaultContext;
  }

  /** Options for https/http2 createServer: the first certificate, SNI selection, client verification. */
  serverOptions(): TlsOptions {
    const verify = this.tls.verify_client;
    return {
      ...this.loaded.defaults,
      SNICallback: (servername, cb) => cb(null, this.contextFor(servername)),
      requestCert: verify !== 'off',
      rejectUnauthorized: verify === 'on',
    };
  }

  /**
   * Re-read the files (throws TlsConfigError, nothing changed) and return
   * the switch to them: new handshakes get the new certificates, open
   * connections keep theirs. Two steps, so that several listeners (and a
   * configuration reload) change together or not at all.
   */
  prepareReload(server: { setSecureContext(options: SecureContextOptions): void }): () => void {
    const next = load(this.tls, this.logger);
    return () => {
      server.setSecureContext(next.defaults);
      this.loaded = next;
    };
  }
}

/** OpenSSL's texts of the verification failures a client certificate commonly meets. */
const VERIFY_ERRORS: Readonly<Record<string, string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  CERT_REVOKED: 'certificate revoked',
  INVALID_PURPOSE: 'unsupported certificate purpose',
};

/**
 * nginx's $ssl_client_verify, as Kong's http-log writes `request.tls.client_verify`:
 * "NONE" (no certificate sent), "SUCCESS", or "FAILED:<reason>".
 */
export function clientVerify(socket: TLSSocket): string {
  if (socket.authorized) return 'SUCCESS';
  const peer = socket.getPeerCertificate();
  if (peer === null || Object.keys(peer).length === 0) return 'NONE';
  // nginx writes OpenSSL's text (X509_verify_cert_error_string); Node gives the code.
  const reason = socket.authorizationError as unknown;
  const code = reason instanceof Error ? ((reason as NodeJS.ErrnoException).code ?? reason.message) : String(reason ?? 'unknown');
  return `FAILED:${VERIFY_ERRORS[code] ?? code}`;
}

// ---- Envoy's connection.* attributes of a TLS connection (properties.ts) ----

/** The downstream socket when it is TLS, else null (the attributes are then not found; connection.mtls false). */
export function tlsSocket(socket: unknown): TLSSocket | null {
  return (socket as { encrypted?: boolean }).encrypted === true ? (socket as TLSSocket) : null;
}

/** A subject as Envoy formats it: RFC 2253, most specific first ("CN=client,O=Example"). */
function rfc2253(cert: X509Certificate | undefined): string | undefined {
  return cert === undefined ? undefined : cert.subject.split('\n').reverse().join(',');
}

function firstSan(cert: X509Certificate | undefined, kind: 'DNS:' | 'URI:'): string | undefined {
  if (cert === undefined) return undefined;
  for (const entry of (cert.subjectAltName ?? '').split(', ')) if (entry.startsWith(kind)) return entry.slice(kind.length);
  return undefined;
}

const peer = (s: TLSSocket): X509Certificate | undefined => s.getPeerX509Certificate();
const local = (s: TLSSocket): X509Certificate | undefined => s.getX509Certificate();

/** Resolvers of the TLS attributes, by key; each gets the TLS socket. */
export const TLS_ATTRIBUTES: ReadonlyMap<string, (s: TLSSocket) => string | boolean | undefined> = new Map<string, (s: TLSSocket) => string | boolean | undefined>([
  ['connection.tls_version', (s) => s.getProtocol() ?? undefined],
  ['connection.requested_server_name', (s) => (typeof s.servername === 'string' ? s.servername : undefined)],
  ['connection.subject_local_certificate', (s) => rfc2253(local(s))],
  ['connection.subject_peer_certificate', (s) => rfc2253(peer(s))],
  ['connection.dns_san_local_certificate', (s) => firstSan(local(s), 'DNS:')],
  ['connection.dns_san_peer_certificate', (s) => firstSan(peer(s), 'DNS:')],
  ['connection.uri_san_local_certificate', (s) => firstSan(local(s), 'URI:')],
  ['connection.uri_san_peer_certificate', (s) => firstSan(peer(s), 'URI:')],
  ['connection.sha256_peer_certificate_digest', (s) => peer(s)?.fingerprint256.replaceAll(':', '').toLowerCase()],
  // Kong's request.tls for http-log (nginx's $ssl_cipher, $ssl_client_verify); Envoy has no attribute for these.
  ['hookwire.tls_cipher', (s) => s.getCipher()?.name],
  ['hookwire.tls_client_verify', (s) => clientVerify(s)],
]);
