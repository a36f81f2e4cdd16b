// The dashboard's build: ui/ → dist/ui (served by the admin listener under /ui/, host/admin/ui.ts).
// Preact's automatic JSX runtime through Vite's own transform (Oxc); no plugin needed.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/ui/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    target: 'es2022',
    // Everything ships with the package: no module preload polyfill fetching anything.
    modulePreload: { polyfill: false },
  },
});
