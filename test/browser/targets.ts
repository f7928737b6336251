/**
 * The browser's conformance targets and the runner that hands results back to Node.
 *
 * Runs inside Chromium (page or worker), bundled by scripts/test-browser.mjs with the
 * `bindings/browser.ts` import rewritten to the served /dist/browser.js — so the cases
 * exercise the real bundle. Every image a case returns is gzipped and base64-encoded for
 * the trip through Playwright; Node writes it out and runs `e2fsck -fn` on it. Nothing
 * here judges an image: the browser only reports what the cases asserted.
 */
import type { BlockDevice } from "../../bindings/devices/types.ts";
import type * as BrowserApi from "../../bindings/browser.ts";
import type { Case, Target } from "../conformance/suite.ts";

type Api = typeof BrowserApi;

/** One case's outcome as it crosses to Node. */
export interface CaseResult {
  target: string;
  name: string;
  ok: boolean;
  error?: string;
  /** The returned image, gzip + base64 (absent when the case returned nothing). */
  image?: string;
  /** Text files the image must hold (path → contents), checked by Node with `debugfs cat`. */
  files?: Record<string, string>;
  ms: number;
}

/** gzip (CompressionStream) then base64: images are mostly zeros, so this is small. */
export async function encodeImage(bytes: Uint8Array): Promise<string> {
  const gz = new Uint8Array(await new Response(new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
  let s = "";
  for (let i = 0; i < gz.length; i += 0x8000) s += String.fromCharCode(...gz.subarray(i, i + 0x8000));
  return btoa(s);
}

/** MemoryDevice target: reopen shares the storage, image copies it out. */
export function memoryTarget(api: Api, name = "chromium/memory"): Target {
  return {
    name,
    api,
    async device(size) {
      return new api.MemoryDevice(size);
    },
    async reopen(dev) {
      await dev.close();
      return (dev as BrowserApi.MemoryDevice).reopen();
    },
    async image(dev) {
      return (dev as BrowserApi.MemoryDevice).bytes().slice();
    },
  };
}

let serial = 0;

/** OpfsDevice target (dedicated worker only): a fresh OPFS file per device; cleanup() removes them. */
export function opfsTarget(api: Api, name = "chromium/opfs"): Target & { cleanup(): Promise<void> } {
  const prefix = `conformance-${Date.now().toString(36)}`;
  return {
    async cleanup() {
      await (await navigator.storage.getDirectory()).removeEntry(prefix, { recursive: true }).catch(() => {});
    },
    name,
    api,
    async device(size) {
      return api.OpfsDevice.open(`${prefix}/dev-${serial++}.img`, { create: true, size });
    },
    async reopen(dev) {
      const d = dev as BrowserApi.OpfsDevice;
      await d.close();
      return api.OpfsDevice.open(d.path);
    },
    async image(dev) {
      let d = dev as BrowserApi.OpfsDevice;
      const reopened = d.closed;
      if (reopened) d = await api.OpfsDevice.open(d.path, { readOnly: true });
      const bytes = new Uint8Array(await (await d.toBlob()).arrayBuffer());
      if (reopened) await d.close();
      return bytes;
    },
  };
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: string }).code;
    return `${e.name}: ${e.message}${code ? ` [${code}]` : ""}\n${(e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l)).join("\n")}`;
  }
  return String(e);
}

/** Run `cases` against `target`, never throwing: each outcome becomes a CaseResult. */
export async function runCases(target: Target, cases: Case[]): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const c of cases) {
    const t0 = performance.now();
    try {
      const img = await c.run(target);
      out.push({ target: target.name, name: c.name, ok: true, image: img ? await encodeImage(img) : undefined, ms: performance.now() - t0 });
    } catch (e) {
      out.push({ target: target.name, name: c.name, ok: false, error: describe(e), ms: performance.now() - t0 });
    }
  }
  return out;
}

/** Run one named check (the page's openVolume tests) into a CaseResult. */
export async function check(
  target: string, name: string, fn: () => Promise<Uint8Array | void>, files?: Record<string, string>,
): Promise<CaseResult> {
  const t0 = performance.now();
  try {
    const img = await fn();
    return { target, name, ok: true, image: img ? await encodeImage(img) : undefined, files, ms: performance.now() - t0 };
  } catch (e) {
    return { target, name, ok: false, error: describe(e), ms: performance.now() - t0 };
  }
}

export type { BlockDevice };
