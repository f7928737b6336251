import { describe, expect, it } from "vitest";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import { FsError } from "../../bindings/fs/errors.ts";

describe("engine instance", () => {
  it("instantiates, allocates and refreshes views after growth", async () => {
    const e = await Engine.create();
    const before = e.x.memory.buffer.byteLength;
    const p = e.alloc(8 << 20);
    expect(e.x.memory.buffer.byteLength).toBeGreaterThan(before);
    e.u8[p + (8 << 20) - 1] = 7;
    expect(e.dv.getUint8(p + (8 << 20) - 1)).toBe(7);
  });

  it("turns a trap into FsError EIO and refuses later calls", async () => {
    const e = await Engine.create();
    const err = (() => {
      try {
        e.call(() => e.x.memAlloc(0xffffffff));
      } catch (x) {
        return x;
      }
    })();
    expect(err).toBeInstanceOf(FsError);
    expect((err as FsError).code).toBe("EIO");
    expect(e.failed).toBe(true);
    expect(() => e.call(() => e.x.memAlloc(16))).toThrow(FsError);
  });
});
