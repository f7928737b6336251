/**
 * Helpers for tests that damage a directory block on the device under a mounted volume
 * and need the engine to meet the damage (verify-once, shape-once).
 */
import { expect } from "vitest";
import { FsError } from "../../bindings/index.ts";

/**
 * Another name `name-NNNN` stored in block blk, not looked up before: a name already
 * resolved is answered by the path walk's name cache (bindings/fs/dcache.ts) without
 * reading its leaf again — as Linux's dcache does — so only a lookup of an unremembered
 * name is sure to read the leaf.
 */
export function sibling(bytes: Uint8Array, blk: number, not: string, blockSize: number): string {
  const hay = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < 400; i++) {
    const n = `name-${String(i).padStart(4, "0")}`;
    if (n === not) continue;
    if (Math.floor(hay.indexOf(Buffer.from(n)) / blockSize) === blk) return n;
  }
  throw new Error(`no other name in block ${blk}`);
}

/** The FsError code p rejects with, or undefined when it resolves (anything else fails the test). */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(FsError);
    return (e as FsError).code;
  }
}
