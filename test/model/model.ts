/**
 * An in-memory reference model of the part of a POSIX filesystem the Volume API exposes,
 * for the model-based test (fsmodel.test.ts): the engine and this model run the same
 * random operation sequence and must agree after every step.
 *
 * Why a model is a fair oracle here: it is written from the documented semantics of
 * Linux system calls as Node reports them (rename(2), link(2), unlink(2), open(2) …),
 * independently of the engine, in the most obvious way — a tree of JS objects, file
 * contents as plain byte arrays, nothing clever. When the two disagree, the error code
 * or state the model expects is quoted next to what the engine did.
 *
 * Semantics modelled, in Linux's order of checks (the order decides which error wins):
 *  - path walk: per component, the current node must be a directory (ENOTDIR), a name
 *    longer than 255 bytes is ENAMETOOLONG, a missing name ENOENT; symlinks are followed
 *    in the middle of a path always and at the end when the call follows (stat, open,
 *    chmod, chown, utimes, truncate, writeFile), relative to the link's directory or the
 *    root, at most 40 of them (ELOOP); '..' of the root is the root.
 *  - creation (open with O_CREAT, mkdir, symlink, link) looks up the parent, then the
 *    name: EEXIST if present (a dangling symlink counts, except that O_CREAT without
 *    O_EXCL follows it and creates its target).
 *  - rename: both parents, then the source (ENOENT), then "source is an ancestor of the
 *    target's parent" → EINVAL, then "target is an ancestor of the source's parent" →
 *    ENOTEMPTY, then two names of one inode → success doing nothing, then type
 *    mismatches (dir over non-dir ENOTDIR, non-dir over dir EISDIR), then ENOTEMPTY.
 *  - link: the existing path is not followed; ENOENT, then the new name (EEXIST), then a
 *    directory source → EPERM. unlink of a directory → EISDIR. rmdir of a non-directory
 *    → ENOTDIR, non-empty → ENOTEMPTY. rm (Node): a missing path is fine with force, a
 *    directory needs recursive (EISDIR).
 *  - modes are stored exactly as given (no umask inside an image); mkdir keeps only the
 *    permission and sticky bits, as Linux does. Symlinks have mode 0777.
 *  - times: an mtime is *known* only from utimes until something changes it (a write or
 *    truncate of a file, an entry added or removed in a directory); the engine's clock is
 *    not modelled, so unknown mtimes are not compared.
 *
 * Not modelled (the test's generator avoids them): setgid directory inheritance, chown
 * clearing setuid/setgid, hard-link counts near 65000, names '.', '..' and trailing
 * slashes as the last component, permissions (the engine acts as root).
 */

export type Kind = "file" | "dir" | "symlink";

export class ModelError extends Error {
  constructor(readonly code: string, message?: string) {
    super(message ? `${code}: ${message}` : code);
  }
}

export interface MNode {
  /** Model identity (hard links share it). */
  readonly id: number;
  readonly kind: Kind;
  /** Permission bits (0o7777). */
  perm: number;
  uid: number;
  gid: number;
  /** Links (files and symlinks; directories compute theirs). */
  links: number;
  data: Uint8Array;
  size: number;
  target: string;
  entries: Map<string, MNode>;
  /** Directories: the one parent and name (the root is its own parent). */
  parent: MNode | null;
  name: string;
  /** Nanoseconds, when set by utimes and untouched since. */
  mtimeNs: bigint | undefined;
  /** Upper bound of data blocks this file may hold (for the test's space budget). */
  blocksEstimate: number;
}

const S_IFMT = { file: 0o100000, dir: 0o040000, symlink: 0o120000 } as const;
const MAX_SYMLINKS = 40;
const NAME_MAX = 255;
const enc = new TextEncoder();

export function byteLength(s: string): number {
  return enc.encode(s).length;
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s !== "" && s !== ".");
}

/** Join a directory path and a name. */
export function joinPath(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

export interface OpenFile {
  node: MNode;
  readable: boolean;
  writable: boolean;
  append: boolean;
  closed: boolean;
}

export class FsModel {
  readonly root: MNode;
  private nextId = 1;
  readonly blockSize: number;
  /** Owner new inodes get (the engine's default, learned once by the test). */
  defaultUid = 0;
  defaultGid = 0;

  constructor(blockSize: number) {
    this.blockSize = blockSize;
    this.root = this.newNode("dir", 0o755);
    this.root.parent = this.root;
    this.root.name = "";
    // mkfs makes lost+found (0700, root-owned), like mke2fs.
    this.attach(this.root, "lost+found", this.newNode("dir", 0o700));
  }

  private newNode(kind: Kind, perm: number): MNode {
    return {
      id: this.nextId++,
      kind,
      perm,
      uid: this.defaultUid,
      gid: this.defaultGid,
      links: kind === "dir" ? 0 : 1,
      data: new Uint8Array(0),
      size: 0,
      target: "",
      entries: new Map(),
      parent: null,
      name: "",
      mtimeNs: undefined,
      blocksEstimate: 0,
    };
  }

  private attach(dir: MNode, name: string, node: MNode): void {
    dir.entries.set(name, node);
    dir.mtimeNs = undefined;
    if (node.kind === "dir") {
      node.parent = dir;
      node.name = name;
    }
  }

  private detach(dir: MNode, name: string): MNode {
    const node = dir.entries.get(name)!;
    dir.entries.delete(name);
    dir.mtimeNs = undefined;
    if (node.kind !== "dir") node.links--;
    return node;
  }

  // ------------------------------------------------------------------ queries

  /** Full st_mode. */
  mode(n: MNode): number {
    return S_IFMT[n.kind] | (n.kind === "symlink" ? 0o777 : n.perm);
  }

  nlink(n: MNode): number {
    if (n.kind !== "dir") return n.links;
    let subdirs = 0;
    for (const c of n.entries.values()) if (c.kind === "dir") subdirs++;
    return 2 + subdirs;
  }

  /** Path of a directory. */
  dirPath(d: MNode): string {
    const parts: string[] = [];
    for (let n = d; n !== this.root; n = n.parent!) parts.unshift(n.name);
    return "/" + parts.join("/");
  }

  /** Resolve a path; throws ModelError (ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG). */
  walk(path: string, followLast: boolean): MNode {
    let parts = split(path);
    let cur = this.root;
    let hops = 0;
    while (parts.length) {
      const name = parts.shift()!;
      if (cur.kind !== "dir") throw new ModelError("ENOTDIR");
      if (name === "..") {
        cur = cur.parent!;
        continue;
      }
      if (byteLength(name) > NAME_MAX) throw new ModelError("ENAMETOOLONG");
      const next = cur.entries.get(name);
      if (!next) throw new ModelError("ENOENT");
      if (next.kind === "symlink" && (parts.length > 0 || followLast)) {
        if (++hops > MAX_SYMLINKS) throw new ModelError("ELOOP");
        if (next.target.startsWith("/")) cur = this.root;
        parts = [...split(next.target), ...parts];
        continue;
      }
      cur = next;
    }
    return cur;
  }

  /** Lookup without throwing: the node or the error code. */
  lookup(path: string, followLast: boolean): MNode | string {
    try {
      return this.walk(path, followLast);
    } catch (e) {
      if (e instanceof ModelError) return e.code;
      throw e;
    }
  }

  /** The parent directory and last name of a path (parent followed). */
  parentOf(path: string): { dir: MNode; name: string } {
    const parts = split(path);
    const name = parts.pop();
    if (name === undefined || name === "..") throw new ModelError("EINVAL", `bad last component in ${path}`);
    const dir = this.walk("/" + parts.join("/"), true);
    if (dir.kind !== "dir") throw new ModelError("ENOTDIR");
    if (byteLength(name) > NAME_MAX) throw new ModelError("ENAMETOOLONG");
    return { dir, name };
  }

  /** Every path in the tree, depth-first, with its node (no-follow; root first). */
  *paths(): Generator<[string, MNode]> {
    const visit = function* (path: string, n: MNode): Generator<[string, MNode]> {
      yield [path, n];
      if (n.kind === "dir") for (const [name, c] of n.entries) yield* visit(joinPath(path, name), c);
    };
    yield* visit("/", this.root);
  }

  /** Some path naming node n (the first found). */
  pathOf(n: MNode): string | undefined {
    if (n.kind === "dir") return this.dirPath(n);
    for (const [p, m] of this.paths()) if (m === n) return p;
    return undefined;
  }

  // ------------------------------------------------------------------ data helpers

  private setSize(n: MNode, size: number): void {
    if (size > n.data.length) {
      let cap = Math.max(n.data.length * 2, 4096);
      while (cap < size) cap *= 2;
      const grown = new Uint8Array(cap);
      grown.set(n.data.subarray(0, n.size));
      n.data = grown;
    } else if (size < n.size) {
      n.data.fill(0, size, n.size);
    }
    n.size = size;
    n.blocksEstimate = Math.min(n.blocksEstimate, Math.ceil(size / this.blockSize));
    n.mtimeNs = undefined;
  }

  private writeAt(n: MNode, pos: number, data: Uint8Array): void {
    // write(2) of zero bytes to a regular file changes nothing (not even the size).
    if (data.length === 0) return;
    if (pos + data.length > n.size) this.setSize(n, pos + data.length);
    n.data.set(data, pos);
    n.blocksEstimate += Math.ceil(data.length / this.blockSize) + 1;
    n.mtimeNs = undefined;
  }

  /** File contents (a view). */
  contents(n: MNode): Uint8Array {
    return n.data.subarray(0, n.size);
  }

  /** Replace a file's contents wholesale (adopting the engine's state after ENOSPC). */
  adoptContents(n: MNode, data: Uint8Array): void {
    this.setSize(n, 0);
    this.writeAt(n, 0, data);
  }

  /** Sum of blocksEstimate over distinct files. */
  blocksEstimate(): number {
    const seen = new Set<MNode>();
    let t = 0;
    for (const [, n] of this.paths()) {
      if (n.kind === "file" && !seen.has(n)) {
        seen.add(n);
        t += n.blocksEstimate;
      }
    }
    return t;
  }

  // ------------------------------------------------------------------ operations

  mkdir(path: string, opts: { recursive?: boolean; mode?: number } = {}): void {
    const perm = (opts.mode ?? 0o777) & 0o1777;
    if (!opts.recursive) {
      const { dir, name } = this.parentOf(path);
      if (dir.entries.has(name)) throw new ModelError("EEXIST");
      this.attach(dir, name, this.newNode("dir", perm));
      return;
    }
    const parts = split(path);
    let prefix = "";
    for (let i = 0; i < parts.length; i++) {
      prefix += "/" + parts[i];
      const last = i === parts.length - 1;
      const n = this.lookup(prefix, true);
      if (typeof n !== "string") {
        if (n.kind === "dir") {
          if (last) return;
          continue;
        }
        throw new ModelError(last ? "EEXIST" : "ENOTDIR");
      }
      if (n !== "ENOENT") throw new ModelError(n);
      const { dir, name } = this.parentOf(prefix);
      // A dangling symlink: Node's mkdir -p gets EEXIST, then stat says ENOENT.
      if (dir.entries.has(name)) throw new ModelError("ENOENT");
      this.attach(dir, name, this.newNode("dir", perm));
    }
  }

  /**
   * open(2) with O_CREAT (excl: O_EXCL): the file to write, created if missing, following
   * a symlink at the end (even a dangling one, creating its target) unless excl.
   */
  private openCreate(path: string, perm: number, excl: boolean): MNode {
    let p = path;
    for (let hops = 0; ; hops++) {
      // A followed symlink may end in '.', '..' or be '/': that names a directory.
      const raw = p.split("/").filter((s) => s !== "");
      const last = raw[raw.length - 1];
      if (last === undefined || last === "." || last === "..") {
        if (excl) throw new ModelError("EEXIST");
        this.walk(p, true);
        throw new ModelError("EISDIR");
      }
      const { dir, name } = this.parentOf(p);
      const n = dir.entries.get(name);
      if (!n) {
        const f = this.newNode("file", perm & 0o7777);
        this.attach(dir, name, f);
        return f;
      }
      if (excl) throw new ModelError("EEXIST");
      if (n.kind === "dir") throw new ModelError("EISDIR");
      if (n.kind === "file") return n;
      if (hops >= MAX_SYMLINKS) throw new ModelError("ELOOP");
      p = n.target.startsWith("/") ? n.target : joinPath(this.dirPath(dir), n.target);
    }
  }

  writeFile(path: string, data: Uint8Array, opts: { mode?: number } = {}): MNode {
    const n = this.openCreate(path, opts.mode ?? 0o666, false);
    this.setSize(n, 0);
    n.blocksEstimate = 0;
    this.writeAt(n, 0, data);
    n.mtimeNs = undefined;
    return n;
  }

  appendFile(path: string, data: Uint8Array, opts: { mode?: number } = {}): MNode {
    const n = this.openCreate(path, opts.mode ?? 0o666, false);
    this.writeAt(n, n.size, data);
    n.mtimeNs = undefined;
    return n;
  }

  /** vol.open(path, flags, mode). */
  open(path: string, flags: string, mode = 0o666): OpenFile {
    const readable = flags.startsWith("r") || flags.includes("+");
    const writable = flags !== "r";
    let node: MNode;
    if (flags === "r" || flags === "r+") {
      node = this.walk(path, true);
      if (flags === "r+" && node.kind === "dir") throw new ModelError("EISDIR");
    } else {
      node = this.openCreate(path, mode, flags.includes("x"));
      if (flags.startsWith("w")) {
        this.setSize(node, 0);
        node.blocksEstimate = 0;
      }
    }
    return { node, readable, writable, append: flags.startsWith("a"), closed: false };
  }

  /** FileHandle.write(buffer, 0, len, position). */
  fhWrite(f: OpenFile, data: Uint8Array, position: number): number {
    if (f.closed || !f.writable) throw new ModelError("EBADF");
    if (f.node.kind === "dir") throw new ModelError("EISDIR");
    this.writeAt(f.node, f.append ? f.node.size : position, data);
    return data.length;
  }

  fhTruncate(f: OpenFile, len: number): void {
    if (f.closed || !f.writable) throw new ModelError(f.closed ? "EBADF" : "EINVAL");
    this.setSize(f.node, len);
  }

  truncate(path: string, len: number): void {
    const n = this.walk(path, true);
    if (n.kind === "dir") throw new ModelError("EISDIR");
    if (len < 0) throw new ModelError("EINVAL");
    this.setSize(n, len);
  }

  unlink(path: string): void {
    const { dir, name } = this.parentOf(path);
    const n = dir.entries.get(name);
    if (!n) throw new ModelError("ENOENT");
    if (n.kind === "dir") throw new ModelError("EISDIR");
    this.detach(dir, name);
  }

  rmdir(path: string): void {
    const { dir, name } = this.parentOf(path);
    const n = dir.entries.get(name);
    if (!n) throw new ModelError("ENOENT");
    if (n.kind !== "dir") throw new ModelError("ENOTDIR");
    if (n.entries.size) throw new ModelError("ENOTEMPTY");
    this.detach(dir, name);
  }

  rm(path: string, opts: { recursive?: boolean; force?: boolean } = {}): void {
    let parent: { dir: MNode; name: string };
    try {
      parent = this.parentOf(path);
    } catch (e) {
      if (opts.force && e instanceof ModelError && e.code === "ENOENT") return;
      throw e;
    }
    const n = parent.dir.entries.get(parent.name);
    if (!n) {
      if (opts.force) return;
      throw new ModelError("ENOENT");
    }
    if (n.kind === "dir") {
      if (!opts.recursive) throw new ModelError("EISDIR");
      this.removeTree(n);
    }
    this.detach(parent.dir, parent.name);
  }

  private removeTree(d: MNode): void {
    for (const name of [...d.entries.keys()]) {
      const c = d.entries.get(name)!;
      if (c.kind === "dir") this.removeTree(c);
      this.detach(d, name);
    }
  }

  private isAncestor(a: MNode, d: MNode): boolean {
    // a is d or an ancestor of d (directories only)
    for (let n = d; ; n = n.parent!) {
      if (n === a) return true;
      if (n === this.root) return false;
    }
  }

  rename(oldPath: string, newPath: string): void {
    const o = this.parentOf(oldPath);
    const nw = this.parentOf(newPath);
    const src = o.dir.entries.get(o.name);
    if (!src) throw new ModelError("ENOENT");
    if (o.dir !== nw.dir) {
      if (src.kind === "dir" && this.isAncestor(src, nw.dir)) throw new ModelError("EINVAL");
    }
    const dst = nw.dir.entries.get(nw.name);
    if (o.dir !== nw.dir && dst && dst.kind === "dir" && this.isAncestor(dst, o.dir)) throw new ModelError("ENOTEMPTY");
    if (dst === src) return;
    if (dst) {
      if (src.kind === "dir" && dst.kind !== "dir") throw new ModelError("ENOTDIR");
      if (src.kind !== "dir" && dst.kind === "dir") throw new ModelError("EISDIR");
      if (dst.kind === "dir" && dst.entries.size) throw new ModelError("ENOTEMPTY");
      this.detach(nw.dir, nw.name);
    }
    const moved = this.detach(o.dir, o.name);
    if (moved.kind !== "dir") moved.links++;
    this.attach(nw.dir, nw.name, moved);
  }

  link(existing: string, newPath: string): void {
    const src = this.walk(existing, false);
    const { dir, name } = this.parentOf(newPath);
    if (dir.entries.has(name)) throw new ModelError("EEXIST");
    if (src.kind === "dir") throw new ModelError("EPERM");
    src.links++;
    this.attach(dir, name, src);
  }

  symlink(target: string, path: string): void {
    const { dir, name } = this.parentOf(path);
    if (dir.entries.has(name)) throw new ModelError("EEXIST");
    const n = this.newNode("symlink", 0o777);
    n.target = target;
    n.size = byteLength(target);
    this.attach(dir, name, n);
  }

  chmod(path: string, mode: number): void {
    this.walk(path, true).perm = mode & 0o7777;
  }

  chown(path: string, uid: number, gid: number): void {
    const n = this.walk(path, true);
    n.uid = uid;
    n.gid = gid;
  }

  utimes(path: string, mtimeNs: bigint): void {
    this.walk(path, true).mtimeNs = mtimeNs;
  }
}

/** A deep copy (hard links stay shared within the copy), for dry runs. */
export function cloneModel(m: FsModel): FsModel {
  const copy = Object.create(FsModel.prototype) as FsModel;
  Object.assign(copy, m);
  const map = new Map<MNode, MNode>();
  const dup = (n: MNode, parent: MNode | null): MNode => {
    const seen = map.get(n);
    if (seen) return seen;
    const c: MNode = { ...n, data: n.data.slice(0, n.size), entries: new Map(), parent };
    map.set(n, c);
    if (n.kind === "dir") for (const [name, ch] of n.entries) c.entries.set(name, dup(ch, ch.kind === "dir" ? c : null));
    return c;
  };
  const root = dup(m.root, null);
  root.parent = root;
  (copy as { root: MNode }).root = root;
  return copy;
}
