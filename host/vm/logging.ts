/**
 * Log records from plugins (proxy_log, WASI stdout/stderr) and from the VM
 * layer itself, handed to a sink the upper layers choose (pino, the emulator).
 */
import { LOG_LEVEL_NAMES, LogLevel, type LogLevelName } from '../abi/constants.js';

export interface PluginLogRecord {
  readonly level: LogLevel;
  readonly message: string;
  /** Plugin name of the effective context, or null for VM-wide messages. */
  readonly plugin: string | null;
  readonly vmId: string;
  readonly contextId: number;
  readonly source: 'proxy_log' | 'stdout' | 'stderr' | 'host';
}

export type LogSink = (record: PluginLogRecord) => void;

export function levelFromName(name: LogLevelName | 'warning' | 'fatal'): LogLevel {
  if (name === 'warning') return LogLevel.WARN;
  if (name === 'fatal') return LogLevel.CRITICAL;
  const i = LOG_LEVEL_NAMES.indexOf(name);
  if (i < 0) throw new TypeError(`unknown log level ${JSON.stringify(name)}`);
  return i as LogLevel;
}

// The G-Core/FastEdge SDK logs through WASI stdout as "[LEVEL]: message";
// recovering the level keeps its debug lines out of the info log.
const SDK_PREFIX = /^\[(TRACE|DEBUG|INFO|WARN|ERROR|CRITICAL)\]: ?/;

export function parseStdioLine(fd: number, line: string): { level: LogLevel; message: string } {
  const m = SDK_PREFIX.exec(line);
  if (m) return { level: LOG_LEVEL_NAMES.indexOf(m[1]!.toLowerCase() as LogLevelName) as LogLevel, message: line.slice(m[0].length) };
  return { level: fd === 2 ? LogLevel.ERROR : LogLevel.INFO, message: line };
}
