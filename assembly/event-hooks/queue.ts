// A FIFO of byte buffers (log entries, event records): a ring buffer that
// tracks the total byte size, for queues bounded by count and bytes.

export class ByteQueue {
  private items: StaticArray<ArrayBuffer | null> = new StaticArray<ArrayBuffer | null>(64);
  private head: i32 = 0;
  private count: i32 = 0;
  /** Sum of the items' byte lengths. */
  bytes: i64 = 0;

  get length(): i32 {
    return this.count;
  }

  push(entry: ArrayBuffer): void {
    const cap = this.items.length;
    if (this.count == cap) this.grow();
    this.items[(this.head + this.count) % this.items.length] = entry;
    this.count++;
    this.bytes += entry.byteLength;
  }

  /** Remove and return the oldest item (the queue must not be empty). */
  shift(): ArrayBuffer {
    const e = this.items[this.head]!;
    this.items[this.head] = null;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    this.bytes -= e.byteLength;
    return e;
  }

  private grow(): void {
    const old = this.items;
    const next = new StaticArray<ArrayBuffer | null>(old.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = old[(this.head + i) % old.length];
    this.items = next;
    this.head = 0;
  }
}
