// hookwire's lean proxy-wasm layer for AssemblyScript plugins (see host.ts for why).
//   host.ts    calls to the host, log, malloc/free
//   context.ts root and stream contexts, the exported callbacks
//   gc.ts      collection at safe points (minimal runtime)
//   abort.ts   the abort handler asconfig.json names (see there)
//   decimal.ts integers as text for messages
import "./abort";
export * from "./host";
export { decimal, decimalU } from "./decimal";
export * from "./context";
export { enter, leave } from "./gc";
