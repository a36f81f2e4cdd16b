/**
 * A private PostgreSQL server for tests: Debian's postgresql 15 binaries
 * (`.ci/run` installs the package), a cluster in a temporary folder on a free
 * port, removed after. PostgreSQL refuses to run as root, so as root the
 * cluster belongs to the `postgres` system user (runuser); otherwise it runs
 * as the current user. One cluster per test file (`usePostgres()` in a
 * describe block); each test gets its own database (`createDatabase`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';

/** The server binaries: HOOKWIRE_PG_BIN, else the newest Debian postgresql-N installed. */
export const PG_BIN = process.env.HOOKWIRE_PG_BIN ?? debianBin();

function debianBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return join(root, versions[0] ?? '15', 'bin');
}

export interface PgCluster {
  port: number;
  /** URL of database `name` (default: postgres). */
  url(name?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  stop(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function asOwner(argv: string[], root: boolean): { cmd: string; args: string[] } {
  return root ? { cmd: 'runuser', args: ['-u', 'postgres', '--', ...argv] } : { cmd: argv[0]!, args: argv.slice(1) };
}

let counter = 0;

/** Starts a cluster (initdb, pg_ctl start) and returns it; `stop()` removes it. */
export async function startPostgres(): Promise<PgCluster> {
  if (!existsSync(join(PG_BIN, 'initdb'))) throw new Error(`PostgreSQL binaries not found in ${PG_BIN} (apt-get install postgresql)`);
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'hookwire-pg-'));
  const data = join(dir, 'data');
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const run = (argv: string[]) => {
    const { cmd, args } = asOwner(argv, root);
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  run([join(PG_BIN, 'initdb'), '-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
  const port = await freePort();
  // Private: loopback only, sockets in our folder, and tuned for tests (no fsync: the test cluster is thrown away).
  const conf = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${dir}'`,
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'max_connections = 200',
    'shared_buffers = 64MB',
  ].join('\n');
  const confFile = join(data, 'postgresql.auto.conf');
  writeFileSync(confFile, conf + '\n');
  if (root) execFileSync('chown', ['postgres:postgres', confFile]);
  run([join(PG_BIN, 'pg_ctl'), '-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  const url = (name = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${name}`;
  let stopped = false;
  return {
    port,
    url,
    async createDatabase(prefix = 'hw') {
      const name = `${prefix}_${process.pid}_${++counter}`;
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run([join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** One cluster for the enclosing describe block (or file): started before its tests, removed after. */
export function usePostgres(): { readonly cluster: PgCluster } {
  const holder: { cluster: PgCluster } = {} as { cluster: PgCluster };
  beforeAll(async () => {
    holder.cluster = await startPostgres();
  }, 120_000);
  afterAll(() => holder.cluster?.stop());
  return holder;
}
