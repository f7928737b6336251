/**
 * The Wasm boundary: compiling the engine once per runtime, instantiating it per volume,
 * and the views through which the bindings see its linear memory.
 *
 * Why one instance per volume (or mkfs run): the engine keeps a volume's state (block
 * cache index, geometry) in module globals, so separate instances isolate volumes from one
 * another, and an internal failure in one cannot corrupt another's memory. Compilation is
 * shared: the WebAssembly.Module is compiled once and cached.
 *
 * Memory views: linear memory only grows through `Engine.alloc` (at init, the block cache
 * arena, staging buffers). Growing detaches every view, so the views are re-created in one
 * place (`refresh`) and reached through getters that check the buffer is still current.
 *
 * Failures inside Wasm: the module is built with the WASI shim, so an AssemblyScript
 * `abort` writes its message to fd 2 and calls `proc_exit`; our `proc_exit` import throws
 * an EngineAbort carrying that message, which unwinds out of Wasm. Traps (unreachable,
 * out-of-bounds) arrive as WebAssembly.RuntimeError. Either way the instance is marked
 * failed — its globals may be half-updated — and every later call is refused with EIO.
 * Corrupt on-disk data must never get this far: the engine validates and returns error
 * codes; an abort is a bug, reported as EIO, never as an unrelated exception.
 */
import { FsError } from "./fs/errors.ts";

/** The raw exports. Functions take and return numbers (i32/u32/f64, never i64). */
export type EngineExports = {
  memory: WebAssembly.Memory;
  _start(): void;
  memAlloc(size: number): number;
  memFree(ptr: number): void;
} & Record<string, any>;

export type EngineSource = () => Promise<WebAssembly.Module | BufferSource | Response>;

let loader: EngineSource | undefined;
let compiled: Promise<WebAssembly.Module> | undefined;

/** Called by each runtime entry file (node.ts, browser.ts, deno/mod.ts) at import time. */
export function setEngineSource(load: EngineSource): void {
  loader = load;
  compiled = undefined;
}

/** The compiled module, compiled on first use and then shared by every instance. */
export function engineModule(): Promise<WebAssembly.Module> {
  if (!compiled) {
    if (!loader) {
      return Promise.reject(
        new FsError("ENOSYS", "no engine loader: import ext4-wasm through its node, browser or deno entry"),
      );
    }
    const load = loader;
    compiled = (async () => {
      const src = await load();
      if (src instanceof WebAssembly.Module) return src;
      // Bytes first, before any mention of Response: on Node, reading the global Response
      // (even `typeof Response`) loads the whole fetch implementation (undici) — a few
      // tens of ms at every CLI start, for a loader (node.ts) that never returns one.
      if (src instanceof ArrayBuffer || ArrayBuffer.isView(src)) return WebAssembly.compile(src);
      if (typeof Response !== "undefined" && src instanceof Response) {
        if (typeof WebAssembly.compileStreaming === "function") {
          try {
            return await WebAssembly.compileStreaming(src.clone());
          } catch {
            // Wrong MIME type on some servers: fall back to compiling the bytes.
          }
        }
        return WebAssembly.compile(await src.arrayBuffer());
      }
      throw new FsError("EINVAL", "the engine loader returned neither a WebAssembly.Module, bytes nor a Response");
    })();
    compiled.catch(() => (compiled = undefined));
  }
  return compiled;
}

/** Thrown by our proc_exit import to unwind out of Wasm after an engine abort. */
export class EngineAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineAbort";
  }
}

export class Engine {
  readonly x: EngineExports;
  private _u8!: Uint8Array;
  private _dv!: DataView;
  private failure: string | undefined;
  /** Text the module wrote to fd 1/2 (abort messages); kept short. */
  private stderr = "";

  private constructor(instance: WebAssembly.Instance, owner: { engine?: Engine }) {
    this.x = instance.exports as EngineExports;
    owner.engine = this;
    this.refresh();
  }

  static async create(): Promise<Engine> {
    const module = await engineModule();
    const owner: { engine?: Engine } = {};
    const imports = Engine.imports(module, owner);
    const instance = await WebAssembly.instantiate(module, imports);
    const engine = new Engine(instance, owner);
    engine.call(() => engine.x._start());
    return engine;
  }

  /** Current byte view of linear memory (re-created after growth). */
  get u8(): Uint8Array {
    // Growth detaches the old buffer, and a view of a detached buffer has length 0 (the
    // memory is never empty): a property read, where asking memory.buffer is a call into
    // the runtime — and this getter runs on every name, inode and block-map copy.
    if (this._u8.length === 0) this.refresh();
    return this._u8;
  }

  /** Current DataView of linear memory (little-endian reads: pass `true`). */
  get dv(): DataView {
    if (this._u8.length === 0) this.refresh(); // _dv shares _u8's buffer (see u8)
    return this._dv;
  }

  /** A view of `len` bytes at `ptr`, valid until the next allocation. */
  bytes(ptr: number, len: number): Uint8Array {
    return this.u8.subarray(ptr, ptr + len);
  }

  /** Allocate long-lived memory in the engine (may grow memory: views are refreshed). */
  alloc(size: number): number {
    const ptr = this.call(() => this.x.memAlloc(size)) as number;
    this.refresh();
    return ptr;
  }

  /** Value of an exported constant (the ondisk/ offsets are exported this way). */
  constant(name: string): number {
    const g = this.x[name];
    if (!(g instanceof WebAssembly.Global)) throw new FsError("ENOSYS", `engine has no constant ${name}`);
    return Number(g.value);
  }

  /**
   * Run a call into the engine, converting aborts and traps into FsError EIO and marking
   * the instance failed. Use it around every call whose failure must not escape raw; the
   * hottest paths may call `x` directly when the API edge wraps them.
   */
  call<T>(fn: () => T): T {
    if (this.failure !== undefined) throw new FsError("EIO", `engine stopped after an internal error: ${this.failure}`);
    try {
      return fn();
    } catch (e) {
      if (e instanceof EngineAbort || e instanceof WebAssembly.RuntimeError) {
        this.failure = e instanceof EngineAbort ? e.message : `trap: ${(e as Error).message}`;
        throw new FsError("EIO", `engine internal error: ${this.failure}`, { cause: e });
      }
      throw e;
    }
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  private refresh(): void {
    const buf = this.x.memory.buffer;
    this._u8 = new Uint8Array(buf);
    this._dv = new DataView(buf);
  }

  /**
   * Imports for the WASI shim. Only fd_write (for abort/trace text) and proc_exit (abort)
   * do anything; any other import the module may name answers ENOSYS (52 in WASI) so a
   * new dependency shows up as a clear error, not a link failure.
   */
  private static imports(module: WebAssembly.Module, owner: { engine?: Engine }): WebAssembly.Imports {
    const wasi: Record<string, (...args: number[]) => number | void> = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.kind !== "function") continue;
      wasi[imp.name] = () => 52;
    }
    wasi.fd_write = (fd: number, iovs: number, iovsLen: number, nwritten: number): number => {
      const e = owner.engine;
      if (!e) return 8;
      const dv = e.dv;
      let total = 0;
      for (let i = 0; i < iovsLen; i++) {
        const ptr = dv.getUint32(iovs + i * 8, true);
        const len = dv.getUint32(iovs + i * 8 + 4, true);
        const text = new TextDecoder().decode(e.u8.subarray(ptr, ptr + len));
        if (fd === 1 || fd === 2) e.stderr = (e.stderr + text).slice(-2000);
        total += len;
      }
      dv.setUint32(nwritten, total, true);
      return 0;
    };
    wasi.proc_exit = (code: number): never => {
      const e = owner.engine;
      const text = e ? e.stderr.trim() : "";
      if (e) e.stderr = "";
      throw new EngineAbort(text || `proc_exit(${code})`);
    };
    wasi.random_get = (ptr: number, len: number): number => {
      const e = owner.engine;
      if (!e) return 8;
      crypto.getRandomValues(e.u8.subarray(ptr, ptr + len));
      return 0;
    };
    const modules: WebAssembly.Imports = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.kind !== "function") continue;
      modules[imp.module] ??= {};
      (modules[imp.module] as Record<string, unknown>)[imp.name] = wasi[imp.name] ?? (() => 52);
    }
    return modules;
  }
}
