// Every error code the code can raise is documented, so users can look it up.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('docs/errors.md', () => {
  it('lists every HW_ERR_* code raised under host/', () => {
    const codes = new Set<string>();
    for (const file of sources(join(ROOT, 'host'))) for (const m of readFileSync(file, 'utf8').matchAll(/'(HW_ERR_[A-Z_]+)'/g)) codes.add(m[1]!);
    const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
    expect([...codes].filter((c) => !doc.includes('`' + c + '`')).sort()).toEqual([]);
  });
});
