// TLS on the proxy and admin listeners, with certificates made by openssl at test time, through real sockets:
// SNI choosing the certificate, SIGHUP re-reading the files without dropping connections, errors naming the
// file, client certificates (mTLS) accepted and refused, and the admin listener's TLS rule off loopback.
import { copyFileSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../host/errors.js';
import { loadConfigFile } from '../../host/config/load.js';
import { ReloadError, TlsConfigError } from '../../host/proxy/errors.js';
import { Gateway } from '../../host/proxy/gateway.js';
import { memoryLogger, startApp, testConfig } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { expiredCertificate, TestCa, type CertFiles } from '../helpers/tls.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let ca: TestCa;
let otherCa: TestCa;
let alpha: CertFiles;
let beta: CertFiles;
let client: CertFiles;
let stranger: CertFiles;

beforeAll(async () => {
  upstream = await startUpstream();
  ca = new TestCa();
  otherCa = new TestCa('another CA');
  alpha = ca.issue('alpha', { cn: 'alpha.test', dnsNames: ['alpha.test', 'www.alpha.test'] });
  beta = ca.issue('beta', { cn: 'beta.test', dnsNames: ['*.beta.test'] });
  client = ca.issue('client', { cn: 'client-one', client: true });
  stranger = otherCa.issue('stranger', { cn: 'stranger', client: true });
});

afterAll(async () => {
  await upstream?.close();
  ca?.remove();
  otherCa?.remove();
});

interface HttpsReply {
  status: number;
  body: string;
  /** CN of the certificate the server presented. */
  servedCn: string;
  socket: TLSSocket;
}

function get(url: string, options: RequestOptions & { servername?: string } = {}): Promise<HttpsReply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: u.hostname, port: Number(u.port), path: u.pathname + u.search, ca: ca.read(ca.cert), agent: false, ...options },
      (res) => {
        // Read now: a keep-alive agent takes the socket back at 'end'.
        const socket = res.socket as TLSSocket;
        const servedCn = String(socket.getPeerCertificate().subject?.CN);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), servedCn, socket }));
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('https request timed out')));
    req.end();
  });
}

/** The CN of the certificate served for `servername` (a bare TLS handshake). */
function servedFor(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const cn = String(socket.getPeerCertificate().subject?.CN);
      socket.end();
      resolve(cn);
    });
    socket.on('error', reject);
  });
}

const TLS_PROPS = [
  'connection.tls_version',
  'connection.requested_server_name',
  'connection.subject_peer_certificate',
  'connection.subject_local_certificate',
  'connection.dns_san_local_certificate',
  'connection.sha256_peer_certificate_digest',
  'hookwire.tls_cipher',
  'hookwire.tls_client_verify',
  'request.scheme',
];

function tlsDoc(tls: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    proxy: { listen: [{ address: '127.0.0.1', port: 0, tls }] },
    services: [{ name: 'echo', url: upstream.url }],
    routes: [
      { name: 'all', service: 'echo', paths: ['/'] },
      // A filter that answers the TLS properties as response headers (x-prop-<key with "." as "-">).
      { name: 'props', service: 'echo', paths: ['/props'], plugins: [{ name: 'props', wasm: fixture('proxy-filter'), configuration: { props: TLS_PROPS } }] },
    ],
    ...extra,
  };
}

async function startTls(tls: Record<string, unknown>) {
  const { logger, lines } = memoryLogger();
  const gateway = await Gateway.start(testConfig(tlsDoc(tls)), { logger });
  return { gateway, url: gateway.listeners[0]!.url, port: gateway.listeners[0]!.port, lines };
}

describe('TLS on the proxy listener', () => {
  it('terminates TLS and chooses the certificate by SNI (exact and wildcard names), the first without SNI', async () => {
    const { gateway, url, port } = await startTls({ certificates: [alpha, beta] });
    try {
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(gateway.listeners[0]!.tls).toBe(true);
      const a = await get(url + '/hello', { servername: 'alpha.test' });
      expect(a.status).toBe(200);
      expect(a.servedCn).toBe('alpha.test');
      // The upstream is told the client spoke https.
      expect(JSON.parse(a.body).headers['x-forwarded-proto']).toBe('https');
      const b = await get(url + '/hello', { servername: 'api.beta.test' });
      expect(b.status).toBe(200);
      expect(b.servedCn).toBe('beta.test');
      expect(await servedFor(port, 'WWW.ALPHA.TEST')).toBe('alpha.test');
      expect(await servedFor(port, 'unknown.test')).toBe('alpha.test');
      expect(await servedFor(port, undefined)).toBe('alpha.test');
    } finally {
      await gateway.close({ drainTimeoutMs: 1000 });
    }
  });

  it('refuses TLS 1.2 clients when min_version is TLSv1.3', async () => {
    const { gateway, port } = await startTls({ certificates: [alpha], min_version: 'TLSv1.3' });
    try {
      const attempt = (maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
        new Promise<string>((resolve) => {
          const s = connect({ host: '127.0.0.1', port, servername: 'alpha.test', rejectUnauthorized: false, maxVersion }, () => {
            const v = s.getProtocol() ?? '';
            s.end();
            resolve(v);
          });
          s.on('error', (err) => resolve(`error: ${err.message}`));
        });
      expect(await attempt('TLSv1.3')).toBe('TLSv1.3');
      expect(await attempt('TLSv1.2')).toMatch(/^error: .*(protocol|version)/i);
    } finally {
      await gateway.close({ drainTimeoutMs: 1000 });
    }
  });

  it('names the file and the problem: unreadable, not PEM, a key that does not match; warns on an expired certificate', async () => {
    const { logger, lines } = memoryLogger();
    const start = (tls: Record<string, unknown>) => Gateway.start(testConfig(tlsDoc(tls)), { logger });
    const missing = join(ca.dir, 'missing.pem');
    await expect(start({ certificates: [{ cert: missing, key: alpha.key }] })).rejects.toThrow(
      new TlsConfigError(missing, 'cannot read the certificate file (ENOENT)').message,
    );
    const notPem = join(ca.dir, 'not-pem.pem');
    writeFileSync(notPem, 'hello\n');
    await expect(start({ certificates: [{ cert: alpha.cert, key: notPem }] })).rejects.toMatchObject({
      code: 'HW_ERR_TLS_CONFIG',
      file: notPem,
      message: expect.stringContaining('is not a PEM private key'),
    });
    await expect(start({ certificates: [{ cert: alpha.cert, key: beta.key }] })).rejects.toMatchObject({
      code: 'HW_ERR_TLS_CONFIG',
      file: beta.key,
      message: `${beta.key}: does not match the certificate ${alpha.cert} (a key of another certificate?)`,
    });
    await expect(start({ certificates: [alpha], verify_client: 'on', client_ca: missing })).rejects.toMatchObject({ file: missing });

    const expired = expiredCertificate(ca, 'expired', 'old.test');
    const gateway = await start({ certificates: [alpha, expired] });
    try {
      const warning = lines.find((l) => l.level === 40 && l.file === expired.cert);
      expect(warning?.msg).toMatch(/expired on Jan {1,2}2 00:00:00 2020 GMT/);
      expect(lines.some((l) => l.level === 40 && l.file === alpha.cert)).toBe(false);
    } finally {
      await gateway.close({ drainTimeoutMs: 1000 });
    }
  });

  it('requires client_ca when client certificates are verified', () => {
    expect(() => testConfig(tlsDoc({ certificates: [alpha], verify_client: 'on' }))).toThrow(ConfigError);
    expect(() => testConfig(tlsDoc({ certificates: [alpha], verify_client: 'on' }))).toThrow(
      /\/proxy\/listen\/0\/tls\/client_ca: must name a PEM file of CA certificates when verify_client is "on"/,
    );
  });
});

describe('certificates reloaded on SIGHUP', () => {
  it('re-reads the files with the configuration: new handshakes get the new certificate, open connections keep theirs', async () => {
    const dir = ca.dir;
    const served = { cert: join(dir, 'served.pem'), key: join(dir, 'served.key') };
    copyFileSync(alpha.cert, served.cert);
    copyFileSync(alpha.key, served.key);
    const file = join(dir, 'hookwire.json');
    writeFileSync(file, JSON.stringify({ ...tlsDoc({ certificates: [served] }), admin: { listen: { port: 0 } } }));
    const { logger } = memoryLogger();
    const gateway = await Gateway.start(await loadConfigFile(file), { logger, configPath: file });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const url = gateway.listeners[0]!.url;
      const first = await get(url + '/one', { agent, servername: 'alpha.test' });
      expect(first.servedCn).toBe('alpha.test');

      // The files now hold another certificate (the name stays: clients ask for alpha.test).
      const renewed = ca.issue('renewed', { cn: 'renewed alpha', dnsNames: ['alpha.test'] });
      copyFileSync(renewed.cert, served.cert);
      copyFileSync(renewed.key, served.key);
      await gateway.reloadFromFile();

      const again = await get(url + '/two', { agent, servername: 'alpha.test' });
      expect(again.socket).toBe(first.socket); // the same connection, still open
      expect(again.status).toBe(200);
      expect(again.servedCn).toBe('alpha.test');
      const fresh = await get(url + '/three', { servername: 'alpha.test' });
      expect(fresh.servedCn).toBe('renewed alpha');

      // A broken file refuses the whole reload: the certificates (and configuration) already loaded keep serving.
      writeFileSync(served.key, 'not a key\n');
      const generation = gateway.generation;
      const err = await gateway.reloadFromFile().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReloadError);
      expect(err).toMatchObject({ stage: 'tls', message: expect.stringContaining(`${served.key}: is not a PEM private key`) });
      expect(gateway.generation).toBe(generation);
      expect((await get(url + '/four', { servername: 'alpha.test' })).servedCn).toBe('renewed alpha');
    } finally {
      agent.destroy();
      await gateway.close({ drainTimeoutMs: 1000 });
    }
  });
});

describe('client certificates (mTLS)', () => {
  it('verify_client "on": a certificate from client_ca is accepted, none or another CA\'s is refused', async () => {
    const { gateway, url } = await startTls({ certificates: [alpha], verify_client: 'on', client_ca: ca.cert });
    try {
      const ok = await get(url + '/mtls', { servername: 'alpha.test', cert: ca.read(client.cert), key: ca.read(client.key) });
      expect(ok.status).toBe(200);
      // Refused in the handshake (TLS 1.3: the client learns it at its first read).
      await expect(get(url + '/mtls', { servername: 'alpha.test' })).rejects.toThrow(/certificate required|socket hang up|ECONNRESET/i);
      await expect(get(url + '/mtls', { servername: 'alpha.test', cert: ca.read(stranger.cert), key: ca.read(stranger.key) })).rejects.toThrow(
        /unknown ca|socket hang up|ECONNRESET/i,
      );
      expect(upstream.received.filter((r) => r.url === '/mtls')).toHaveLength(1);
    } finally {
      await gateway.close({ drainTimeoutMs: 1000 });
    }
  });

  it('verify_client "optional": requests without a certificate pass too; the TLS properties say what happened', async () => {
    const { gateway, url } = await startTls({ certificates: [alpha], verify_client: 'optional', client_ca: ca.cert });
    const props = async (options: RequestOptions) => {
      const u = new URL(url + '/props');
      return new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
        const req = httpsRequest({ host: u.hostname, port: Number(u.port), path: u.pathname, ca: ca.read(ca.cert), agent: false, servername: 'alpha.test', ...options }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.headers));
        });
        req.on('error', reject);
        req.end();
      });
    };
    try {
      expect((await get(url + '/opt', { servername: 'alpha.test' })).status).toBe(200);
      expect((await get(url + '/opt', { servername: 'alpha.test', cert: ca.read(client.cert), key: ca.read(client.key) })).status).toBe(200);

      const withCert = await props({ cert: ca.read(client.cert), key: ca.read(client.key) });
      expect(withCert).toMatchObject({
        'x-prop-connection-tls_version': 'TLSv1.3',
        'x-prop-connection-requested_server_name': 'alpha.test',
        'x-prop-connection-subject_peer_certificate': 'CN=client-one',
        'x-prop-connection-subject_local_certificate': 'CN=alpha.test',
        'x-prop-connection-dns_san_local_certificate': 'alpha.test',
        'x-prop-hookwire-tls_client_verify': 'SUCCESS',
        'x-prop-request-scheme': 'https',
      });
      expect(withCert['x-prop-connection-sha256_peer_certificate_digest']).toMatch(/^[0-9a-f]{64}$/);
      expect(withCert['x-prop-hookwire-tls_cipher']).toMatch(/^TLS_AES_/);

      const without = await props({});
      expect(without['x-prop-hookwire-tls_client_verify']).toBe('NONE');
      expect(without['x-prop-connection-subject_peer_certificate']).toBe(''); // not found: the fixture adds it empty
      const strangers = await props({ cert: ca.read(stranger.cert), key: ca.read(stranger.key) });
      expect(strangers['x-prop-hookwire-tls_client_verify']).toBe('FAILED:unable to verify the first certificate');
      expect(strangers['x-prop-connection-subject_peer_certificate']).toBe('CN=stranger');
    } finally {
      await gateway.close({ drainTimeoutMs: 1000 });
    }
  });
});

describe('the admin listener', () => {
  it('refuses to start off loopback without TLS, unless plaintext is accepted by name', () => {
    const offLoopback = (admin: Record<string, unknown>) => testConfig({ admin: { token: 'secret-token', ...admin } });
    expect(() => offLoopback({ listen: { address: '0.0.0.0', port: 0 } })).toThrow(
      /\/admin\/listen\/tls: is required when admin\.listen\.address is not a loopback address .*admin\.allow_plaintext_off_loopback: true/,
    );
    expect(offLoopback({ listen: { address: '0.0.0.0', port: 0 }, allow_plaintext_off_loopback: true }).admin.allow_plaintext_off_loopback).toBe(true);
    expect(offLoopback({ listen: { address: '0.0.0.0', port: 0, tls: { certificates: [alpha] } } }).admin.listen.tls?.certificates).toHaveLength(1);
    // Both rules at once: no token and no TLS.
    expect(() => testConfig({ admin: { listen: { address: '10.1.2.3', port: 0 } } })).toThrow(/\/admin\/token: .*\n.*\/admin\/listen\/tls: /s);
  });

  it('serves the Admin API over TLS (with its token)', async () => {
    const { app, admin } = await startApp({ admin: { token: 'secret-token', listen: { address: '127.0.0.1', port: 0, tls: { certificates: [alpha] } } } });
    try {
      expect(admin).toMatch(/^https:/);
      const denied = await get(admin + '/status', { servername: 'alpha.test' });
      expect(denied.status).toBe(401);
      const status = await get(admin + '/status', { servername: 'alpha.test', headers: { authorization: 'Bearer secret-token' } });
      expect(status.status).toBe(200);
      expect(status.servedCn).toBe('alpha.test');
      expect(JSON.parse(status.body).listeners.admin).toMatchObject({ tls: true });
    } finally {
      await app.close({ drainTimeoutMs: 1000 });
    }
  });
});
