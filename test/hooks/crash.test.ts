import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import Database from 'better-sqlite3';
import { verifyWebhook } from '../../host/hooks/index.js';
import { ROOT } from '../helpers/paths.js';
import { receiver, sleep, tempDir, waitUntil, type Receiver } from './helpers.js';

// Plain node cannot run TypeScript: transpile the service and the child script
// into build/ (inside the package, so node_modules resolve).
const OUT = join(ROOT, 'build', `test-hooks-child-${process.pid}`);

function treeOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? treeOf(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

function transpileTree(): string {
  // The whole host tree: whatever the service imports, now or later (transpiling is per file and quick).
  const files = [...treeOf(join(ROOT, 'host')), join(ROOT, 'test', 'hooks', 'crash-child.ts')];
  for (const file of files) {
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    const out = join(OUT, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, js);
  }
  return join(OUT, 'test', 'hooks', 'crash-child.js');
}

function run(script: string, args: string[]): { child: ChildProcess; line: (n: number) => Promise<string> } {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  // The n-th line (0-based) the child prints.
  const line = (n: number): Promise<string> =>
    waitUntil(() => {
      const lines = out.split('\n');
      if (lines.length > n + 1) return lines[n];
      if (child.exitCode !== null) throw new Error(`child exited (${child.exitCode}): ${err}`);
      return undefined;
    }, 15_000, `line ${n} from the child`);
  return { child, line };
}

describe('durability: kill -9 during delivery', () => {
  let script: string;
  let r: Receiver;
  const tmp = tempDir();
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    script = transpileTree();
    r = await receiver(async (_, res) => {
      await sleep(200); // slow: deliveries are in flight when the kill comes
      res.end('ok');
    });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await r.close();
    tmp.cleanup();
    rmSync(OUT, { recursive: true, force: true });
  });

  it('every accepted event is delivered after a restart; duplicates carry the same webhook-id', async () => {
    const COUNT = 16;
    const first = run(script, [tmp.db, r.url, 'first', String(COUNT)]);
    children.push(first.child);
    expect(JSON.parse(await first.line(0))).toEqual({ accepted: COUNT }); // on disk before the answer
    await r.waitFor(3);
    first.child.kill('SIGKILL');
    await new Promise((ok) => first.child.once('exit', ok));
    const beforeRestart = r.received.length;
    expect(beforeRestart).toBeLessThan(COUNT);

    const second = run(script, [tmp.db, r.url, 'restart', '0']);
    children.push(second.child);
    expect(await second.line(0)).toBe('ready');
    // The child says when its outbox has nothing pending left.
    expect(await second.line(1)).toBe('drained');
    const byN = new Map<number, Set<string>>();
    for (const q of r.received) {
      const n = (JSON.parse(q.body.toString()) as { n: number }).n;
      if (!byN.has(n)) byN.set(n, new Set());
      byN.get(n)!.add(q.headers['webhook-id']!);
    }
    // The request the receiver was still holding at the kill was sent again.
    expect(r.received.length).toBeGreaterThan(COUNT);
    // Every event arrived; an event sent twice (in flight at the kill) kept its webhook-id.
    expect([...byN.keys()].sort((a, b) => a - b)).toEqual([...Array(COUNT).keys()]);
    for (const [n, ids] of byN) expect(ids.size, `event ${n}`).toBe(1);
    for (const q of r.received) expect(() => verifyWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', q.headers, q.body)).not.toThrow();

    // And the outbox agrees: every delivery succeeded.
    second.child.kill('SIGTERM');
    await new Promise((ok) => second.child.once('exit', ok));
    const db = new Database(tmp.db, { readonly: true });
    const states = db.prepare('SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state').all();
    db.close();
    expect(states).toEqual([{ state: 'succeeded', n: COUNT }]);
  });
});

describe('durability: kill -9 during ingest', () => {
  let script: string;
  let r: Receiver;
  const tmp = tempDir();
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    script = transpileTree();
    r = await receiver();
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await r.close();
    tmp.cleanup();
    rmSync(OUT, { recursive: true, force: true });
  });

  it('every acknowledged event is committed and delivered after a restart; none twice', async () => {
    const BATCH = 50;
    const first = run(script, [tmp.db, r.url, 'ingest', String(BATCH)]);
    children.push(first.child);
    // Kill while the next batch is being ingested: its answer is lost.
    const acked = JSON.parse(await first.line(4)) as { batch: number; accepted: number };
    first.child.kill('SIGKILL');
    await new Promise((ok) => first.child.once('exit', ok));
    expect(acked).toEqual({ batch: 4, accepted: BATCH });

    const db = new Database(tmp.db, { readonly: true });
    const stored = (db.prepare('SELECT data FROM deliveries').all() as { data: string }[]).map((row) => (JSON.parse(row.data) as { n: number }).n);
    db.close();
    // Acknowledged: batches 0-4 at least, all of them; nothing stored twice.
    const acknowledged = [...Array(5 * BATCH).keys()];
    expect(new Set(stored).size).toBe(stored.length);
    expect(stored.filter((n) => n < 5 * BATCH).sort((a, b) => a - b)).toEqual(acknowledged);

    const second = run(script, [tmp.db, r.url, 'restart', '0']);
    children.push(second.child);
    expect(await second.line(0)).toBe('ready');
    expect(await second.line(1)).toBe('drained');
    const received = new Set(r.received.map((q) => (JSON.parse(q.body.toString()) as { n: number }).n));
    for (const n of stored) expect(received.has(n), `event ${n}`).toBe(true);
    second.child.kill('SIGTERM');
    await new Promise((ok) => second.child.once('exit', ok));
  });
});
