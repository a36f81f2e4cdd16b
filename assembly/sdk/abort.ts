// The module's abort (asconfig: "use": ["abort=abort_proc_exit"]): the SDK's
// message, logged at critical before the trap AssemblyScript emits after it.
import { log, LogLevelValues } from "./host";

// @ts-ignore: decorator
@global
export function abort_proc_exit(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  let line = "abort: ";
  if (message !== null) line += message;
  if (fileName !== null) line += " at: " + fileName + "(" + lineNumber.toString() + ":" + columnNumber.toString() + ")";
  log(LogLevelValues.critical, line);
}
