/**
 * Running the real `hookwire` command in tests: one-shot commands (runCli)
 * and a serving gateway (Server) whose JSON log lines are parsed as they come.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export const BIN = join(ROOT, 'bin', 'hookwire.js');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `hookwire <args>` in `cwd` to its end. */
export function runCli(args: string[], cwd: string, timeoutMs = 15_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hookwire ${args.join(' ')} did not exit in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

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

  /** The first log line (from line `from` on) that `pred` accepts, waiting up to `ms` for it. */
  async waitFor(pred: (l: Record<string, unknown>) => boolean, ms = 30_000, from = 0): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.lines.slice(from).find(pred);
      if (found) return found;
      if (Date.now() > end) throw new Error(`log line not seen; stdout so far:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGHUP, then the outcome of that reload: its own "configuration reloaded" line, or an error. */
  async reload(): Promise<Record<string, unknown>> {
    const from = this.lines.length;
    this.child.kill('SIGHUP');
    return this.waitFor((l) => l.msg === 'configuration reloaded' || l.code === 'HW_ERR_RELOAD_FAILED', 30_000, from);
  }
}

/** `hookwire start -c file` in `cwd` (node given `nodeArgs` first), once both listeners are up. */
/** Ends each of `servers` (emptying the list): SIGTERM, then SIGKILL after `graceMs` if it still runs. */
export async function stopServers(servers: Server[], graceMs = 10_000): Promise<void> {
  for (const s of servers.splice(0)) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) continue;
    s.child.kill('SIGTERM');
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, graceMs))]);
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  }
}

export async function startServer(file: string, cwd: string, nodeArgs: readonly string[] = []): Promise<{ server: Server; proxy: string; admin: string }> {
  return listening(new Server(spawn(process.execPath, [...nodeArgs, BIN, 'start', '-c', file], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })));
}

/** The server once both listeners are up, with their URLs. */
export async function listening(server: Server): Promise<{ server: Server; proxy: string; admin: string }> {
  const proxy = (await server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('proxy listening'))).url as string;
  const admin = (await server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('admin listening'))).url as string;
  return { server, proxy, admin };
}

/** Writes `config` to a new file in `dir` and starts `hookwire start -c` on it there, once both listeners are up. */
export async function startConfig(dir: string, config: string): Promise<{ server: Server; proxy: string; admin: string; file: string }> {
  const file = join(dir, `hookwire-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, config);
  return { ...(await startServer(file, dir)), file };
}
