/**
 * Certificates made at test time with Debian's openssl binary: a CA, server
 * certificates for given DNS names signed by it, client certificates, all as
 * PEM files in a fresh temporary directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A throwaway certificate authority in its own temporary directory. */
export class TestCa {
  readonly dir: string;
  /** The CA certificate (PEM file). */
  readonly cert: string;
  readonly key: string;
  private serial = 1;

  constructor(name = 'hookwire test CA') {
    this.dir = mkdtempSync(join(tmpdir(), 'hookwire-tls-'));
    this.key = join(this.dir, 'ca.key');
    this.cert = join(this.dir, 'ca.pem');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', this.key, '-out', this.cert, '-subj', `/CN=${name}`, '-days', '2'], this.dir);
  }

  /** A certificate signed by this CA; `dnsNames` and `ips` become its subjectAltName (server certificates), `cn` its subject. */
  issue(file: string, options: { cn: string; dnsNames?: readonly string[]; ips?: readonly string[]; client?: boolean; startDate?: string; endDate?: string }): CertFiles {
    const key = join(this.dir, `${file}.key`);
    const csr = join(this.dir, `${file}.csr`);
    const cert = join(this.dir, `${file}.pem`);
    const ext = join(this.dir, `${file}.ext`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${options.cn}`], this.dir);
    const lines = [options.client ? 'extendedKeyUsage=clientAuth' : 'extendedKeyUsage=serverAuth'];
    const san = [...(options.dnsNames ?? []).map((n) => `DNS:${n}`), ...(options.ips ?? []).map((ip) => `IP:${ip}`)];
    if (san.length > 0) lines.push(`subjectAltName=${san.join(',')}`);
    writeFileSync(ext, lines.join('\n') + '\n');
    openssl(['x509', '-req', '-in', csr, '-CA', this.cert, '-CAkey', this.key, '-set_serial', String(this.serial++), '-days', '2', '-extfile', ext, '-out', cert], this.dir);
    return { cert, key };
  }

  /** The PEM text of a file of this CA's directory. */
  read(file: string): string {
    return readFileSync(file, 'utf8');
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A self-signed certificate that expired (validity 2020-01-01 .. 2020-01-02), made with `openssl ca`. */
export function expiredCertificate(ca: TestCa, file: string, cn: string): CertFiles {
  const dir = ca.dir;
  const key = join(dir, `${file}.key`);
  const csr = join(dir, `${file}.csr`);
  const cert = join(dir, `${file}.pem`);
  const conf = join(dir, `${file}.cnf`);
  writeFileSync(join(dir, `${file}.index`), '');
  writeFileSync(
    conf,
    [
      '[ca]', 'default_ca = test', '[test]', `dir = ${dir}`, `database = ${join(dir, `${file}.index`)}`, `new_certs_dir = ${dir}`,
      `serial = ${join(dir, `${file}.serial`)}`, 'default_md = sha256', 'policy = any', 'unique_subject = no',
      '[any]', 'commonName = supplied',
    ].join('\n') + '\n',
  );
  writeFileSync(join(dir, `${file}.serial`), '1000\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], dir);
  openssl(['ca', '-batch', '-config', conf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert, '-notext', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z'], dir);
  return { cert, key };
}
