/** Shared argument helpers for the CLI subcommands. */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Bad command-line usage (exit code 2), as opposed to a failed operation. */
export class UsageError extends Error {}

/** node:util parseArgs, with its errors turned into UsageError. */
export function parse<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

const UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** "64G", "512m", "4096", "1.5T" → bytes (binary units); UsageError when malformed. */
export function parseSize(text: string, what = "size"): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`bad ${what} '${text}': expected a number with an optional K, M, G or T suffix`);
  const v = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(v) || v <= 0) throw new UsageError(`bad ${what} '${text}'`);
  return v;
}

/** An integer option value; UsageError when malformed. */
export function parseIntOpt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`bad ${what} '${text}': expected a whole number`);
  return Number(text);
}

/** Human-readable byte count: 1.5 GiB. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}
