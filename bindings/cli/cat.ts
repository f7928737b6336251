/** `ext4-wasm cat IMAGE:PATH…`: write files from an image to standard output. */
import { parse, UsageError } from "./args.ts";
import { openImage, requireImagePath } from "./image.ts";

const CHUNK = 1 << 20;

function writeOut(buf: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(buf, (err) => (err ? reject(err) : resolve()));
  });
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({ args: argv, allowPositionals: true, options: { help: { type: "boolean", short: "h" } } });
  if (v.help || positionals.length === 0) {
    if (!v.help) throw new UsageError("usage: ext4-wasm cat IMAGE:PATH [IMAGE:PATH…]");
    return void console.log("usage: ext4-wasm cat IMAGE:PATH [IMAGE:PATH…]");
  }
  for (const arg of positionals) {
    const { image, path } = requireImagePath(arg);
    const { vol, close } = await openImage(image);
    try {
      const fh = await vol.open(path, "r");
      try {
        const buf = new Uint8Array(CHUNK);
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
          if (bytesRead === 0) break;
          try {
            await writeOut(buf.slice(0, bytesRead));
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "EPIPE") return;
            throw e;
          }
        }
      } finally {
        await fh.close();
      }
    } finally {
      await close();
    }
  }
}
