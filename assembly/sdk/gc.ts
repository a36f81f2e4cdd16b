// Garbage collection at safe points, for modules built with AssemblyScript's
// minimal runtime (TCMS: a stop-the-world mark and sweep that runs only when
// __collect is called, and keeps no shadow stack).
//
// TCMS finds live objects from globals and pinned blocks only; a reference
// held in a wasm local is invisible to it. So it may collect only when no
// guest code is on the stack: at the end of the outermost exported callback
// (a callback the host calls from inside a host call, such as a local reply
// answered at once, is not outermost). Envoy never calls __collect, so the
// module does it itself, when its memory grew since the last collection (the
// allocator ran out of free blocks) or every COLLECT_EVERY callbacks, which
// bounds the garbage a long run of callbacks leaves between collections.
// With the incremental runtime (test fixtures) this is a full collection at
// the same points: also safe.

/** Outermost callbacks between two collections, at most. */
const COLLECT_EVERY: u32 = 1024;

let depth: u32 = 0;
let callbacks: u32 = 0;
let pagesAtCollect: i32 = 0;

/** An exported callback starts. */
@inline
export function enter(): void {
  depth++;
}

/** An exported callback ends: collect here when it is the outermost one and collecting is due. */
export function leave(): void {
  if (--depth != 0) return;
  if (++callbacks < COLLECT_EVERY && memory.size() == pagesAtCollect) return;
  __collect();
  callbacks = 0;
  pagesAtCollect = memory.size();
}
