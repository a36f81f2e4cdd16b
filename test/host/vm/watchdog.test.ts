// The watchdog (host/vm/watchdog.ts) in a child process: a stalled event loop
// ends the process with SIGKILL after one stderr line; a live loop is left alone.
// Runs the compiled module (dist/, built by `npm run build` before the tests).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/paths.js';

const WATCHDOG = pathToFileURL(join(ROOT, 'dist', 'host', 'vm', 'watchdog.js')).href;

function run(script: string): Promise<{ code: number | null; signal: string | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    // Bound: the stalling script gives up by itself after 20 s anyway.
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, stdout });
    });
  });
}

describe('watchdog', () => {
  it('ends a process whose event loop stalls past the limit, naming the stall', async () => {
    const r = await run(`
      import { Watchdog } from ${JSON.stringify(WATCHDOG)};
      import { guestActivity } from ${JSON.stringify(WATCHDOG.replace('watchdog.js', 'deadline.js'))};
      new Watchdog(200);
      setTimeout(() => {
        guestActivity.sink?.('looper', 'proxy_on_request_headers');
        const end = Date.now() + 20_000;
        while (Date.now() < end) {} // the stall (bounded, should the watchdog fail)
        console.log('survived');
      }, 50);
    `);
    expect(r.signal).toBe('SIGKILL');
    expect(r.stdout).not.toContain('survived');
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 60, code: 'HW_WATCHDOG_STALL', limit_ms: 200, last_guest_call: 'proxy_on_request_headers of plugin looper' });
    expect(line.stalled_ms as number).toBeGreaterThan(200);
  }, 30_000);

  it('leaves a live process alone, and stop() lets it exit normally', async () => {
    const r = await run(`
      import { Watchdog } from ${JSON.stringify(WATCHDOG)};
      const dog = new Watchdog(100);
      let n = 0;
      const t = setInterval(() => { if (++n === 20) { clearInterval(t); dog.stop().then(() => console.log('done')); } }, 20);
    `);
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.stdout).toContain('done');
    expect(r.stderr).toBe('');
  }, 30_000);
});
