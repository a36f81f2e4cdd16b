#!/usr/bin/env node
// Launcher for the compiled CLI (npm run build produces dist/host/cli/main.js).
let cli;
try {
  cli = await import('../dist/host/cli/main.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/host/cli/main.js')) {
    console.error('hookwire: dist/host/cli/main.js is missing; run "npm run build" first');
    process.exit(1);
  }
  throw err;
}
const code = await cli.run(process.argv.slice(2));
// `start` resolves once the gateway has stopped; timers a plugin left behind must not keep us alive.
process.exit(code);
