/**
 * Shared queues: registered by a root context of a VM (vm_id, name), resolved
 * and fed by anyone. Enqueueing notifies the registering root context through
 * proxy_on_queue_ready, asynchronously as Envoy posts it. The host itself may
 * also consume a queue natively (the event-hooks service does).
 */
import { Status } from '../abi/constants.js';
import { BoundHits, GUEST_LIMITS } from './limits.js';

/** Who hears about new items: the guest owner (via its VM) and/or a native consumer. */
export interface QueueOwner {
  notify(queueId: number): void;
}

export type NativeQueueConsumer = (item: Uint8Array, queue: QueueInfo) => void;

export interface QueueInfo {
  readonly id: number;
  readonly vmId: string;
  readonly name: string;
}

interface Queue extends QueueInfo {
  items: Uint8Array[];
  /** Bytes of `items`. */
  bytes: number;
  owner: QueueOwner | null;
  consumer: NativeQueueConsumer | null;
}

export class SharedQueues {
  private readonly byKey = new Map<string, Queue>();
  private readonly byId = new Map<number, Queue>();
  private readonly countByVm = new Map<string, number>();
  /** Bytes waiting in all queues of a vm_id (bounded by GUEST_LIMITS.queueBytes). */
  private readonly bytesByVm = new Map<string, number>();
  private nextId = 1;

  constructor(private readonly bounds: BoundHits = new BoundHits()) {}

  private static key(vmId: string, name: string): string {
    return `${vmId}\0${name}`;
  }

  private ensure(vmId: string, name: string): Queue {
    const key = SharedQueues.key(vmId, name);
    let q = this.byKey.get(key);
    if (!q) {
      q = { id: this.nextId++, vmId, name, items: [], bytes: 0, owner: null, consumer: null };
      this.countByVm.set(vmId, (this.countByVm.get(vmId) ?? 0) + 1);
      this.byKey.set(key, q);
      this.byId.set(q.id, q);
    }
    return q;
  }

  /** Register (or re-register) a queue; the latest registrant is notified. */
  register(vmId: string, name: string, owner: QueueOwner): number {
    if (!this.byKey.has(SharedQueues.key(vmId, name)) && (this.countByVm.get(vmId) ?? 0) >= GUEST_LIMITS.sharedQueues) {
      this.bounds.hit(vmId, 'shared_queue');
      return 0;
    }
    const q = this.ensure(vmId, name);
    q.owner = owner;
    return q.id;
  }

  resolve(vmId: string, name: string): number | undefined {
    const q = this.byKey.get(SharedQueues.key(vmId, name));
    return q && (q.owner || q.consumer) ? q.id : undefined;
  }

  /**
   * Consume a queue natively: every enqueued item is handed to `consumer`
   * (synchronously, in order) instead of being stored. Returns an unsubscribe function.
   */
  consume(vmId: string, name: string, consumer: NativeQueueConsumer): () => void {
    const q = this.ensure(vmId, name);
    q.consumer = consumer;
    // Hand over what arrived before the consumer attached.
    this.bytesByVm.set(q.vmId, (this.bytesByVm.get(q.vmId) ?? 0) - q.bytes);
    q.bytes = 0;
    for (const item of q.items.splice(0)) consumer(item, q);
    return () => {
      if (q.consumer === consumer) q.consumer = null;
    };
  }

  enqueue(id: number, item: Uint8Array): Status {
    const q = this.byId.get(id);
    // A queue nobody listens to any more (its VM went away) is gone, as in Envoy:
    // producers learn it and can hold their records instead of losing them here.
    if (!q || (!q.owner && !q.consumer)) return Status.NOT_FOUND;
    if (q.consumer) {
      q.consumer(item, q);
      return Status.OK;
    }
    const vmBytes = this.bytesByVm.get(q.vmId) ?? 0;
    if (q.items.length >= GUEST_LIMITS.queueItems || vmBytes + item.byteLength > GUEST_LIMITS.queueBytes) {
      // Full: the producer learns it (as from a queue gone) and can hold or drop its record.
      this.bounds.hit(q.vmId, 'queue_items');
      return Status.INTERNAL_FAILURE;
    }
    q.items.push(item);
    q.bytes += item.byteLength;
    this.bytesByVm.set(q.vmId, vmBytes + item.byteLength);
    q.owner?.notify(q.id);
    return Status.OK;
  }

  dequeue(id: number): Uint8Array | Status {
    const q = this.byId.get(id);
    if (!q) return Status.NOT_FOUND;
    const item = q.items.shift();
    if (item === undefined) return Status.EMPTY;
    q.bytes -= item.byteLength;
    this.bytesByVm.set(q.vmId, (this.bytesByVm.get(q.vmId) ?? 0) - item.byteLength);
    return item;
  }

  size(vmId: string, name: string): number {
    return this.byKey.get(SharedQueues.key(vmId, name))?.items.length ?? 0;
  }

  /** Peek at a queue's pending items (for tests and the emulator). */
  peek(vmId: string, name: string): readonly Uint8Array[] {
    return this.byKey.get(SharedQueues.key(vmId, name))?.items ?? [];
  }

  /** Drop the owner link of every queue owned by `owner` (its VM went away). */
  release(owner: QueueOwner): void {
    for (const q of this.byId.values()) if (q.owner === owner) q.owner = null;
  }
}
