/**
 * A one-line progress bar on stderr for long CLI operations (mkfs --from, cp into an
 * image). It draws only when stderr is a terminal — logs and pipes get nothing but the
 * final summary the command prints itself — and redraws at most ten times a second, so
 * reporting after every file costs nothing measurable.
 */
import { formatBytes } from "./args.ts";

export interface ProgressState {
  files: number;
  bytes: number;
  /** Optional totals (from a pre-scan); with them the bar shows a percentage. */
  totalEntries?: number;
  totalBytes?: number;
  /** Entries done (files + dirs + links …), compared with totalEntries. */
  entries?: number;
  /** The volume's background inode-table zeroing (vol.stats().lazyInit), shown while it runs. */
  lazyInit?: { groupsZeroed: number; groupsTotal: number; running: boolean };
}

/** The lazy-init counters of a mounted volume (any view of it that has stats()), if it has them. */
export function lazyInitOf(vol: unknown): ProgressState["lazyInit"] {
  const stats = (vol as { stats?: () => Record<string, unknown> }).stats;
  return typeof stats === "function" ? (stats.call(vol).lazyInit as ProgressState["lazyInit"]) : undefined;
}

export class Progress {
  /** True when stderr is a terminal (the bar draws at all). */
  readonly enabled: boolean;
  private readonly start = performance.now();
  private last = 0;
  private drawn = false;
  private readonly label: string;
  private readonly stream: NodeJS.WriteStream;

  constructor(label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.label = label;
    this.stream = stream;
    this.enabled = stream.isTTY === true && process.env.TERM !== "dumb";
  }

  /** Seconds since the bar was created. */
  get elapsed(): number {
    return (performance.now() - this.start) / 1000;
  }

  /** Redraw (throttled); `force` draws now. */
  update(s: ProgressState, force = false): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const secs = Math.max(this.elapsed, 1e-3);
    const rate = `${formatBytes(Math.round(s.bytes / secs))}/s`;
    const width = Math.max(20, (this.stream.columns ?? 80) - 1);
    let frac: number | undefined;
    if (s.totalBytes && s.totalBytes > 0) frac = s.bytes / s.totalBytes;
    else if (s.totalEntries && s.entries !== undefined) frac = s.entries / s.totalEntries;
    const li = s.lazyInit?.running ? `, inode tables zeroed ${s.lazyInit.groupsZeroed}/${s.lazyInit.groupsTotal}` : "";
    const text = `${this.label} ${s.files} files, ${formatBytes(s.bytes)}${s.totalBytes ? ` of ${formatBytes(s.totalBytes)}` : ""}, ${rate}${li}`;
    let line = text;
    if (frac !== undefined) {
      const pct = `${Math.min(100, Math.floor(frac * 100))}%`.padStart(4);
      const barWidth = Math.max(10, Math.min(30, width - text.length - 8));
      const filled = Math.round(Math.min(1, frac) * barWidth);
      line = `[${"#".repeat(filled)}${".".repeat(barWidth - filled)}] ${pct} ${text}`;
    }
    this.stream.write(`\r${line.slice(0, width)}\x1b[K`);
    this.drawn = true;
  }

  /** Erase the bar (before the summary is printed). */
  done(): void {
    if (this.enabled && this.drawn) this.stream.write("\r\x1b[K");
    this.drawn = false;
  }
}
