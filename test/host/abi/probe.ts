/**
 * Driving the abi-probe fixture (test/fixtures/assembly/abi-probe.ts): build
 * its script, start it in the HostEmulator, and read back the "R ..." records
 * it logs after each raw host call.
 */
import { readFileSync } from 'node:fs';
import { HostEmulator, type EmulatorOptions } from '../../../host/testing/emulator.js';
import { fixture } from '../../helpers/paths.js';

export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_ARGUMENT: 2,
  INVALID_MEMORY_ACCESS: 6,
  UNIMPLEMENTED: 12,
} as const;

/** What the guest finds in an untouched return slot (0xDEADBEEF). */
export const SENTINEL = 0xdeadbeef;

let wasm: Uint8Array | undefined;

/** The compiled probe, read once per test file. */
export function probeWasm(): Uint8Array {
  return (wasm ??= readFileSync(fixture('abi-probe')));
}

export type Arg = string | number | Uint8Array;

/** One script argument: bytes outside printable ASCII, '%' and '~' are %XX-escaped; '' is '~'. */
export function tok(arg: Arg): string {
  if (typeof arg === 'number') return String(arg >>> 0);
  const bytes = typeof arg === 'string' ? Buffer.from(arg, 'utf8') : Buffer.from(arg);
  if (bytes.length === 0) return '~';
  let s = '';
  for (const c of bytes) {
    s += c > 0x20 && c < 0x7f && c !== 0x25 && c !== 0x7e ? String.fromCharCode(c) : `%${c.toString(16).padStart(2, '0')}`;
  }
  return s;
}

/** One script line: when `phase` runs, perform `op` with `args`. */
export function op(phase: string, name: string, ...args: Arg[]): string {
  return [phase, name, ...args.map(tok)].join(' ');
}

/** Start the probe with a script (the plugin configuration). */
export async function startProbe(
  script: readonly string[],
  options: Omit<EmulatorOptions, 'wasm' | 'pluginConfig'> = {},
): Promise<HostEmulator> {
  return HostEmulator.start({ ...options, wasm: probeWasm(), pluginConfig: script.join('\n') });
}

/** One report line of the probe: "R <phase> <op> s=<status> key=value...". */
export interface Rec {
  readonly phase: string;
  readonly op: string;
  /** Status of the host call (absent for "args" records). */
  readonly s: number;
  readonly f: Readonly<Record<string, string>>;
}

export function parseRecord(message: string): Rec | null {
  if (!message.startsWith('R ')) return null;
  const [, phase, opName, ...rest] = message.split(' ');
  const f: Record<string, string> = {};
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    if (eq > 0) f[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { phase: phase!, op: opName!, s: f.s === undefined ? NaN : Number(f.s), f };
}

/** Every record logged so far (optionally of one phase), in order. */
export function records(host: HostEmulator, phase?: string): Rec[] {
  return host
    .logs('info')
    .map(parseRecord)
    .filter((r): r is Rec => r !== null && (phase === undefined || r.phase === phase));
}

/** The operation records (not "args", "config" or "return"), then clear the log. */
export function drain(host: HostEmulator, phase?: string): Rec[] {
  const out = records(host, phase).filter((r) => r.op !== 'args' && r.op !== 'config' && r.op !== 'return');
  host.clearLogs();
  return out;
}

/** The bytes a record reports (hex field). */
export function bytes(rec: Rec): Buffer {
  return Buffer.from(rec.f.hex ?? '', 'hex');
}

/** The value a record reports, as UTF-8 text. */
export function value(rec: Rec): string {
  return bytes(rec).toString('utf8');
}

/** Statuses of the operation records, in order. */
export function statuses(recs: readonly Rec[]): number[] {
  return recs.map((r) => r.s);
}

/** FNV-1a (32 bit), as the probe computes it for values above 8 KiB. */
export function fnv1a(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of data) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** A byte string (latin1 chars = bytes), as HeaderMap stores names and values. */
export function byteString(utf8: string): string {
  return Buffer.from(utf8, 'utf8').toString('latin1');
}
