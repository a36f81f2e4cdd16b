/**
 * The real CLI as a child process: `hookwire start -c <file>` with its
 * stdout log lines parsed, for tests that need real signals (SIGHUP, SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export const BIN = join(ROOT, 'bin', 'hookwire.js');

/** A running `hookwire start`, with its stdout log lines parsed. */
export class Server {
  readonly lines: Record<string, unknown>[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';
  private buffer = '';
  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ msg: line });
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  async waitFor(pred: (l: Record<string, unknown>) => boolean, ms = 10_000): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.lines.find(pred);
      if (found) return found;
      if (Date.now() > end) throw new Error(`log line not seen; stdout so far:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Write `config` to a file in `dir` and start `hookwire start -c` on it; resolves once both listeners are up. */
export async function startServer(dir: string, config: string): Promise<{ server: Server; proxy: string; admin: string; file: string }> {
  const file = join(dir, `hookwire-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, config);
  const server = new Server(spawn(process.execPath, [BIN, 'start', '-c', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }));
  const proxy = (await server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('proxy listening'))).url as string;
  const admin = (await server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('admin listening'))).url as string;
  return { server, proxy, admin, file };
}
