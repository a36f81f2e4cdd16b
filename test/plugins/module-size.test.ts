// Release module sizes (docs/module-size.md): issue 13's targets (http-log
// 60 KB, hello-world 20 KB, event-forwarder 40 KB; today 58,749, 19,776 and
// 34,847 bytes). The manifests report the same sizes.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plugin, ROOT } from '../helpers/paths.js';

const KB = 1024;
const BUDGETS: Record<string, number> = {
  'hello-world': 20 * KB,
  'event-forwarder': 40 * KB,
  'http-log': 60 * KB,
};

describe('release module sizes', () => {
  for (const [name, budget] of Object.entries(BUDGETS)) {
    it(`${name}.wasm is at most ${budget / KB} KB, and its manifest says how big it is`, () => {
      const size = statSync(plugin(name)).size;
      expect(size, `${name}.wasm: ${size} bytes`).toBeLessThanOrEqual(budget);
      const manifest = JSON.parse(readFileSync(join(ROOT, 'dist', `${name}.manifest.json`), 'utf8')) as { size: number };
      expect(manifest.size).toBe(size);
    });
  }
});
