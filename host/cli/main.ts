/**
 * The `hookwire` command (bin/hookwire.js runs `run()`):
 *   hookwire start [-c hookwire.yaml] [--workers N|auto]   serve (built-in defaults without -c)
 *   hookwire validate -c hookwire.yaml  check a configuration; exit 0 "ok" or 1 and why
 * Signals while serving: SIGTERM/SIGINT drain and exit 0; SIGHUP re-reads the file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { destination, pino, stdTimeFunctions, type Logger } from 'pino';
import { defaultConfig, loadConfigDocument, loadConfigFile, PACKAGE_ROOT } from '../config/load.js';
import type { HookwireConfig } from '../config/schema.js';
import { HookwireError } from '../errors.js';
import { formatFacts, inspectFile, manifestOfFile, type ModuleManifest } from '../vm/inspect.js';
import { stringify as toYaml } from 'yaml';
import { compactDocument } from '../config/document.js';
import { countEntities, describeCounts, entitiesOf } from '../config/entities.js';
import type { EntityStore } from '../config/entity-store.js';
import { Watchdog } from '../vm/watchdog.js';
import { MEMORY_STORE } from '../config/normalize.js';
import { startHookwire } from './app.js';
import { startWorker, workerNumber, type Served } from './worker.js';
import { parseWorkers, runPrimary, workerCount } from './workers.js';
import { openEntityStore } from './storage.js';
import { configurePlugins } from './validate.js';

export interface Io {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const processIo: Io = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
};

const USAGE = `Usage: hookwire <command> [options]

Commands:
  start [-c FILE] [--workers N|auto]
                       start the proxy and admin listeners and load the plugins
                       (without -c: the built-in defaults, proxy 127.0.0.1:8000, admin 127.0.0.1:8001);
                       --workers: N processes sharing the listeners (auto: one per core), as proxy.workers
  validate -c FILE     check a configuration file without starting: compile its .wasm modules and
                       configure every plugin (on_vm_start, on_configure) with no listener or call out
  inspect FILE.wasm    print a proxy-wasm module's ABI version, imports, exports and Envoy
                       compatibility (--json for the manifest form); exit 1 if Envoy would refuse it
  config import -c FILE  replace the stored entities (storage.path or storage.url) with FILE's; a
                       running gateway serves them within a moment (PostgreSQL: every node)
  config export -c FILE  print the stored entities as a configuration document (YAML; --json)
  openapi              print the Admin API's OpenAPI 3.1 document (docs/openapi.json)
  help                 show this text
  version              print the version

Options:
  -c, --config FILE    configuration file (YAML or JSON)
  --workers N|auto     start: worker processes (wins over proxy.workers; 1: one process)

Signals (start): SIGTERM/SIGINT drain and stop; SIGHUP reloads the configuration file
(with --workers: the primary passes them to every worker).`;

interface Parsed {
  command: string;
  config: string | null;
  args: string[];
  json: boolean;
  /** --workers; null: proxy.workers decides. */
  workers: number | 'auto' | null;
}

function parseArgs(argv: readonly string[]): Parsed | string {
  let command: string | null = null;
  let config: string | null = null;
  let json = false;
  let workers: number | 'auto' | null = null;
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) return `${a} needs a file name`;
      config = v;
    } else if (a.startsWith('--config=')) {
      config = a.slice('--config='.length);
    } else if (a === '-h' || a === '--help') {
      command = 'help';
    } else if (a === '-v' || a === '--version') {
      command = 'version';
    } else if (a === '--json') {
      json = true;
    } else if (a === '--workers' || a.startsWith('--workers=')) {
      const v = a === '--workers' ? argv[++i] : a.slice('--workers='.length);
      if (v === undefined) return '--workers needs a number of processes, or auto';
      const parsedWorkers = parseWorkers(v);
      if (typeof parsedWorkers === 'string' && parsedWorkers !== 'auto') return parsedWorkers;
      workers = parsedWorkers;
    } else if (a.startsWith('-')) {
      return `unknown option ${a}`;
    } else if (command === null) {
      command = a;
    } else if (command === 'inspect' || command === 'config') {
      args.push(a);
    } else {
      return `unexpected argument ${a}`;
    }
  }
  if (workers !== null && command !== 'start') return '--workers is an option of start';
  return { command: command ?? 'help', config, args, json, workers };
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Run the CLI; resolves with the exit code (`start` resolves when the gateway has stopped). */
export async function run(argv: readonly string[], io: Io = processIo): Promise<number> {
  const parsed = parseArgs(argv);
  if (typeof parsed === 'string') {
    io.err(`hookwire: ${parsed}\n\n${USAGE}`);
    return 2;
  }
  switch (parsed.command) {
    case 'help':
      io.out(USAGE);
      return 0;
    case 'version':
      io.out(version());
      return 0;
    case 'validate':
      return validate(parsed.config, io);
    case 'start':
      return start(parsed.config, parsed.workers, io);
    case 'inspect':
      return inspect(parsed.args, parsed.json, io);
    case 'config':
      return configCommand(parsed.args, parsed.config, parsed.json, io);
    case 'openapi': {
      const { openApiDocument } = await import('../admin/openapi.js');
      const text = JSON.stringify(openApiDocument(), null, 2);
      // The launcher calls process.exit: a large write to a pipe must be flushed first.
      if (io === processIo) await new Promise<void>((resolve) => process.stdout.write(text + '\n', () => resolve()));
      else io.out(text);
      return 0;
    }
    default:
      io.err(`hookwire: unknown command ${JSON.stringify(parsed.command)}\n\n${USAGE}`);
      return 2;
  }
}

async function inspect(files: readonly string[], json: boolean, io: Io): Promise<number> {
  if (files.length === 0) {
    io.err('hookwire inspect: give one or more .wasm files');
    return 2;
  }
  let code = 0;
  const all: ModuleManifest[] = [];
  for (const file of files) {
    try {
      const facts = await inspectFile(file);
      if (json) all.push(await manifestOfFile(facts));
      else io.out(formatFacts(facts) + (files.length > 1 ? '\n' : ''));
      if (!facts.envoy.compatible) code = 1;
    } catch (err) {
      io.err((err as Error).message);
      code = 1;
    }
  }
  if (json) io.out(JSON.stringify(files.length === 1 ? all[0] ?? null : all, null, 2));
  return code;
}

async function validate(path: string | null, io: Io): Promise<number> {
  if (path === null) {
    io.err('hookwire validate: give the file to check with -c FILE');
    return 2;
  }
  try {
    const { config, document } = await loadConfigDocument(path);
    // Without listening or calling out: every .wasm must load, and every plugin accept its configuration.
    await configurePlugins(config, document);
    io.out('ok');
    return 0;
  } catch (err) {
    io.err((err as Error).message);
    return 1;
  }
}

async function configCommand(args: readonly string[], path: string | null, json: boolean, io: Io): Promise<number> {
  const [sub, ...extra] = args;
  if ((sub !== 'import' && sub !== 'export') || extra.length > 0) {
    io.err(`hookwire config: give "import" or "export"${extra.length ? ` (unexpected ${extra.join(' ')})` : ''}\n\n${USAGE}`);
    return 2;
  }
  if (path === null) {
    io.err(`hookwire config ${sub}: give the configuration file with -c FILE (its storage section names the store)`);
    return 2;
  }
  let store: EntityStore | null = null;
  try {
    const { config, document } = await loadConfigDocument(path);
    store = await openEntityStore(config);
    if (store === null) {
      io.err(`hookwire config ${sub}: ${config.source} has storage.kind off (DB-less): the file itself is the truth, there is no store`);
      return 1;
    }
    const stored = await store.load();
    if (sub === 'export') {
      if (stored === null) {
        io.err(`hookwire config export: ${store.location} holds no entities yet (the first start seeds it from the configuration file)`);
        return 1;
      }
      const doc = compactDocument({ ...stored.entities });
      io.out(json ? JSON.stringify(doc, null, 2) : toYaml(doc, { lineWidth: 0 }).trimEnd());
      return 0;
    }
    // Import: only what `start` would accept, plugins configured included.
    await configurePlugins(config, document);
    const incoming = entitiesOf(config);
    await store.save(incoming, stored?.version ?? null);
    const before = stored ? describeCounts(countEntities(stored.entities)) : 'an empty store';
    io.out(`imported ${describeCounts(countEntities(incoming))} into ${store.location} (replacing ${before}); running ${
        config.storage.kind === 'postgres' ? 'nodes' : 'gateways (every worker)'
      } serve them within a moment`);
    return 0;
  } catch (err) {
    io.err((err as Error).message);
    return 1;
  } finally {
    await store?.close();
  }
}

function createLogger(config: HookwireConfig, worker: number | null): { logger: Logger; flush: () => Promise<void> } {
  // Buffered: one write per 8 KiB of log lines instead of one per line (an access-log line per
  // request costs ~8 us of CPU this way, ~40 us with a write per line), flushed at least every 100 ms.
  const stream = destination({ dest: 1, sync: false, minLength: 8192 });
  setInterval(() => stream.flush(), 100).unref();
  process.once('exit', () => {
    try {
      stream.flushSync();
    } catch {
      // Nothing more can be done about logs while exiting.
    }
  });
  const base = worker === null ? { pid: process.pid } : { pid: process.pid, worker };
  const logger = pino({ level: config.log_level, timestamp: stdTimeFunctions.isoTime, base }, stream);
  return { logger, flush: () => new Promise<void>((resolve) => logger.flush(() => resolve())) };
}

/**
 * The process's last guard (every listener already answers its own failures):
 * a promise rejected with nobody waiting is logged and serving continues, as
 * nothing was left half done on the stack; an uncaught exception may have
 * left state half changed, so it is logged and hookwire drains and exits 1
 * (where Node would exit at once, dropping the requests in flight).
 */
function installLastResortHandlers(logger: Logger, shutDown: () => void): void {
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection (a bug: please report it); serving continues');
  });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception (a bug: please report it); draining and exiting');
    shutDown();
  });
}

async function start(path: string | null, workersFlag: number | 'auto' | null, io: Io): Promise<number> {
  let config: HookwireConfig;
  try {
    config = path === null ? defaultConfig() : await loadConfigFile(path);
  } catch (err) {
    io.err((err as Error).message);
    return 1;
  }
  const worker = workerNumber();
  const workers = workerCount(workersFlag ?? config.proxy.workers);
  if (worker === null && workers > 1) {
    const shared = sharedStoreProblem(config);
    if (shared !== null) {
      io.err(`hookwire: --workers ${workers}: ${shared}`);
      return 1;
    }
    const { logger, flush } = createLogger(config, null);
    const code = await runPrimary(workers, logger);
    await flush();
    return code;
  }
  const { logger, flush } = createLogger(config, worker);
  let served: Served;
  try {
    if (worker !== null) {
      served = await startWorker(config, path, logger, worker);
    } else {
      const app = await startHookwire(config, { logger, configPath: path });
      served = { get inflight() { return app.gateway.inflight; }, reloadFromFile: () => app.reloadFromFile(), close: () => app.close() };
    }
  } catch (err) {
    const e = err as Error;
    logger.fatal({ code: (e as HookwireError).code, err: e instanceof HookwireError ? undefined : e }, e.message);
    await flush();
    io.err(`hookwire: ${e.message}`);
    return 1;
  }

  // Off by default: a stall past wasm.watchdog_ms ends the process (see host/vm/watchdog.ts).
  const watchdog = config.wasm.watchdog_ms > 0 ? new Watchdog(config.wasm.watchdog_ms) : null;
  if (watchdog) logger.info({ watchdog_ms: watchdog.limitMs }, 'watchdog on');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string, exitCode = 0) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without waiting for the drain');
        void flush().then(() => resolve(1));
        return;
      }
      stopping = true;
      logger.info({ signal, inflight: served.inflight }, 'shutting down');
      served.close().then(
        () => flush().then(async () => {
          await watchdog?.stop();
          resolve(exitCode);
        }),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          void flush().then(() => resolve(1));
        },
      );
    };
    installLastResortHandlers(logger, () => stop('uncaughtException', 1));
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      logger.info({ file: path }, 'SIGHUP: reloading the configuration');
      served.reloadFromFile().catch(() => {
        // Logged by the gateway; the previous configuration keeps serving.
      });
    });
    // A worker whose primary is gone (killed -9) drains and exits rather than serving unsupervised.
    if (worker !== null) process.on('disconnect', () => stop('primary gone'));
  });
}

/** Stores the worker processes cannot share (each would have its own): null when every store is shared. */
function sharedStoreProblem(config: HookwireConfig): string | null {
  if (config.storage.kind === 'sqlite' && config.storage.path === MEMORY_STORE) {
    return 'storage.path ":memory:" would give every worker its own entities; use a file (SQLite in WAL mode is shared by the workers) or PostgreSQL';
  }
  return null;
}
