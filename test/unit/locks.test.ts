import { describe, expect, it } from "vitest";
import { Mutex, RwLock } from "../../bindings/sched/locks.ts";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("Mutex", () => {
  it("serialises critical sections that await, in FIFO order", async () => {
    const m = new Mutex();
    const log: string[] = [];
    let inside = 0;
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        m.run(async () => {
          inside++;
          expect(inside).toBe(1);
          log.push(`in${i}`);
          await tick();
          log.push(`out${i}`);
          inside--;
        }),
      ),
    );
    expect(log).toEqual(["in0", "out0", "in1", "out1", "in2", "out2", "in3", "out3", "in4", "out4"]);
    expect(m.locked).toBe(false);
  });
  it("releases on throw", async () => {
    const m = new Mutex();
    await expect(m.run(async () => { throw new Error("x"); })).rejects.toThrow("x");
    expect(m.locked).toBe(false);
  });
});

describe("RwLock", () => {
  it("lets readers share, writers exclude, and waiting writers block new readers", async () => {
    const l = new RwLock();
    const log: string[] = [];
    const r1 = await l.lockShared();
    const r2 = await l.lockShared();
    const w = l.exclusive(async () => log.push("writer"));
    const r3 = l.shared(async () => log.push("reader3"));
    await tick();
    expect(log).toEqual([]); // writer waits for r1, r2; reader3 waits behind the writer
    r1();
    await tick();
    expect(log).toEqual([]);
    r2();
    await w;
    await r3;
    expect(log).toEqual(["writer", "reader3"]);
  });
});
