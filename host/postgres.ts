/**
 * PostgreSQL plumbing shared by the entity store and the event-hooks store
 * (`storage.kind: postgres`): the connection pool, forward-only versioned
 * migrations, and the change feed that tells every node of a write made by
 * another (LISTEN/NOTIFY, with a polling fallback in the stores that use it).
 *
 * Client: `pg` (node-postgres), the standard, maintained Node driver.
 */
import pg from 'pg';
import { PostgresStoreError } from './errors.js';

/** bigint columns (milliseconds, row ids) come back as numbers: every value we store fits in 2^53. */
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface PgPoolSettings {
  max: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
}

export const DEFAULT_POOL: PgPoolSettings = { max: 10, idleTimeoutMs: 30_000, connectTimeoutMs: 10_000 };

export function createPool(url: string, settings: PgPoolSettings = DEFAULT_POOL): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.max,
    idleTimeoutMillis: settings.idleTimeoutMs,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    application_name: 'hookwire',
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/** The table recording each component's schema version (one row per component). */
const VERSIONS_TABLE = `CREATE TABLE IF NOT EXISTS hookwire_schema (
  component TEXT PRIMARY KEY,
  version   INTEGER NOT NULL
)`;

/** Serializes migrations across nodes starting at once (pg_advisory_xact_lock key). */
const MIGRATION_LOCK = 0x686b7731; // "hkw1"

/**
 * Runs `component`'s migrations from its stored version on, in one
 * transaction under an advisory lock (nodes starting together migrate
 * once). Index + 1 of `migrations` is the version each leads to. A stored
 * version above what this hookwire knows is refused untouched (code
 * HW_ERR_POSTGRES_STORE_VERSION).
 */
export async function migrate(pool: pg.Pool, url: string, component: string, migrations: readonly string[]): Promise<void> {
  const client = await connect(pool, url);
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(VERSIONS_TABLE);
    const r = await client.query<{ version: number }>('SELECT version FROM hookwire_schema WHERE component = $1', [component]);
    const found = r.rows[0]?.version ?? 0;
    if (found > migrations.length) {
      throw new PostgresStoreError(
        'HW_ERR_POSTGRES_STORE_VERSION',
        url,
        `${component} schema version ${found}; this hookwire knows up to ${migrations.length}`,
      );
    }
    for (let v = found; v < migrations.length; v++) await client.query(migrations[v]!);
    await client.query(
      'INSERT INTO hookwire_schema (component, version) VALUES ($1, $2) ON CONFLICT (component) DO UPDATE SET version = excluded.version',
      [component, migrations.length],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    if (err instanceof PostgresStoreError) throw err;
    throw new PostgresStoreError('HW_ERR_POSTGRES_STORE', url, `migrating ${component} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    client.release();
  }
}

export async function connect(pool: pg.Pool, url: string): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (cause) {
    throw new PostgresStoreError('HW_ERR_POSTGRES_STORE', url, `cannot connect: ${(cause as Error).message}`, { cause });
  }
}

/** Runs `fn` in one transaction on one pooled connection; rolls back when it throws. */
export async function transaction<T>(pool: pg.Pool, url: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await connect(pool, url);
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** The channel every hookwire node listens on; the payload names what changed (`entities`, `hooks`). */
export const CHANGE_CHANNEL = 'hookwire_changes';

/**
 * One LISTEN connection: calls `onChange(payload)` for every notification on
 * CHANGE_CHANNEL, and `onReconnect()` after a lost connection is back (what
 * was notified meanwhile is gone: the caller checks for itself). The poll of
 * the stores that use it covers the gap.
 */
export class ChangeFeed {
  private client: pg.Client | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly onChange: (payload: string) => void,
    private readonly onReconnect: () => void,
  ) {}

  async start(): Promise<void> {
    await this.open(false);
  }

  private async open(again: boolean): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, application_name: 'hookwire-listen' });
    const lost = () => {
      if (this.client !== client) return;
      this.client = null;
      client.end().catch(() => {});
      this.scheduleReopen();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      if (n.channel === CHANGE_CHANNEL) this.onChange(n.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (err) {
      client.end().catch(() => {});
      if (!again) throw new PostgresStoreError('HW_ERR_POSTGRES_STORE', this.url, `cannot listen for changes: ${(err as Error).message}`, { cause: err });
      this.scheduleReopen();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    if (again) this.onReconnect();
  }

  private scheduleReopen(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.open(true);
    }, 1000);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}

/**
 * Watches other nodes' changes of one kind: `payload` notifications on the
 * change feed, and a poll of `probe` (a version or fingerprint) every
 * `pollIntervalMs` as the fallback for a notification lost with its
 * connection. `changed` is also called once right away (what changed between
 * the caller's load and the LISTEN) and after a reconnect.
 */
export class ChangeWatch {
  private poller: NodeJS.Timeout | null = null;

  private constructor(private readonly feed: ChangeFeed) {}

  static async start(url: string, payload: string, probe: () => Promise<unknown>, pollIntervalMs: number, changed: () => void): Promise<ChangeWatch> {
    const watch = new ChangeWatch(new ChangeFeed(url, (p) => p === payload && changed(), changed));
    await watch.feed.start();
    // The poll's baseline is taken now, so a change landing before its first tick still counts.
    let seen = await probe();
    changed();
    watch.poller = setInterval(() => {
      probe().then(
        (v) => {
          if (v !== seen) changed();
          seen = v;
        },
        () => {},
      );
    }, pollIntervalMs);
    watch.poller.unref();
    return watch;
  }

  async close(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    await this.feed.close();
  }
}
