/**
 * The little of the `ext2fs` npm package (balena's libext2fs under emscripten) that
 * bench/peers/ext2fs-npm.ts uses. The package ships no types; these are written from its
 * lib/ext2fs.js and lib/fs.js (4.2.x): `mount(disk, offset)` resolves to a node:fs-like
 * object whose `promises` hold the async API. `promises.open` gives a handle whose `fd` the
 * fd-taking calls accept (its own close() does not return its promise, so `close(fd)` is used).
 */
declare module "ext2fs" {
  /** What libext2fs calls back into for block I/O (lib/disk.js forwards to it). */
  export interface Ext2fsDisk {
    read(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number): Promise<unknown>;
    write(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number): Promise<unknown>;
    discard(offset: number, length: number): Promise<unknown>;
    flush(): Promise<unknown>;
  }
  export interface Ext2fsStats {
    ino: number;
    mode: number;
    size: number;
    isDirectory(): boolean;
    isFile(): boolean;
  }
  export interface Ext2fsPromises {
    readdir(path: string): Promise<string[]>;
    stat(path: string): Promise<Ext2fsStats>;
    /** Resolves to a FileHandle-like object; its `fd` works with read and close below. */
    open(path: string, flags: string | number, mode?: number): Promise<{ fd: number }>;
    read(fd: number, buffer: Buffer, offset: number, length: number, position: number | null): Promise<{ bytesRead: number }>;
    close(fd: number): Promise<void>;
  }
  export interface Ext2fsFs {
    promises: Ext2fsPromises;
  }
  export function mount(disk: Ext2fsDisk, offset?: number): Promise<Ext2fsFs>;
  export function umount(fs: Ext2fsFs): Promise<void>;
}
