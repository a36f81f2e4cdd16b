// asconfig.json names "abort=abort_proc_exit" (the SDK's handler), and the
// name must resolve for a module to compile; the SDK's runtime.ts, which
// defined it, is not imported here, so this file does, with the SDK's message.
// The abort a module actually calls is the WASI shim's (its asconfig's
// "abort=wasi_abort" wins when the configs are merged): "abort: <message> in
// <file>(line:col)" on stderr, then proc_exit.
import { decimal } from "./decimal";
import { log, LogLevelValues } from "./host";

// @ts-ignore: decorator
@global
export function abort_proc_exit(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  let line = "abort: ";
  if (message !== null) line += message;
  if (fileName !== null) line += " at: " + fileName + "(" + decimal(lineNumber) + ":" + decimal(columnNumber) + ")";
  log(LogLevelValues.critical, line);
}
