// The transaction handle's forget(): a freed metadata block's unwritten change must never
// reach the device. The oracle is the device's own bytes, read back after a full flush.
import { describe, expect, it } from "vitest";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import { BlockCache } from "../../bindings/cache.ts";
import { MemoryDevice } from "../../bindings/devices/memory.ts";
import { CacheHandle } from "../../bindings/journal/handle.ts";

const BS = 4096;

async function rig() {
  const engine = await Engine.create();
  const dev = new MemoryDevice(64 * BS);
  const cache = new BlockCache(engine, dev, BS, 16 * BS);
  return { engine, dev, cache };
}

function blockOf(dev: MemoryDevice, blk: number): Uint8Array {
  return dev.bytes().subarray(blk * BS, (blk + 1) * BS);
}

describe("CacheHandle.forget", () => {
  it("drops a dirtied block so write-back never writes it, and keeps the others", async () => {
    const { dev, cache } = await rig();
    const h = new CacheHandle(cache);
    const freed = await h.getWriteAccess(5);
    cache.bytes(freed).fill(0xaa);
    h.dirty(freed);
    const kept = await h.getWriteAccess(6);
    cache.bytes(kept).fill(0xbb);
    h.dirty(kept);
    await h.forget(5);
    await h.stop();
    await cache.flush();
    expect(blockOf(dev, 5).every((b) => b === 0)).toBe(true);
    expect(blockOf(dev, 6).every((b) => b === 0xbb)).toBe(true);
    expect(cache.stats().pinned).toBe(0);
  });

  it("a block a reader still pins at forget() is dropped at stop(), once the reader lets go", async () => {
    const { dev, cache } = await rig();
    const h = new CacheHandle(cache);
    const ref = await h.getWriteAccess(7);
    cache.bytes(ref).fill(0xcc);
    h.dirty(ref);
    const reader = await cache.get(7);
    await h.forget(7);
    const stopping = h.stop();
    cache.release(reader);
    await stopping;
    await cache.flush();
    expect(blockOf(dev, 7).every((b) => b === 0)).toBe(true);
    expect(cache.stats().resident).toBe(0);
  });
});
