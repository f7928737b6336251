// Playwright test of the web page (web/), run by scripts/test-browser.mjs.
//
// What a person does, judged by e2fsprogs: pick a folder (set on the webkitdirectory
// input) → download the image → `e2fsck -fn` must pass and `debugfs dump` of every file
// must equal the source folder byte for byte, with nothing extra at the root. Then open
// that image, browse into a subdirectory, view a file, add a file, delete one, download
// again → e2fsck, and debugfs shows the addition and the deletion. Screenshots of each
// stage are saved as test artifacts.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { debugfs, e2fsck } from "./oracle.mjs";

/** Deterministic bytes (xorshift), so a mismatch is reproducible. */
function bytes(n, seed) {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** The source folder: small, empty, > 1 block, and > the 4 MiB import piece. */
function makeSource(dir) {
  const files = {
    "hello.txt": new TextEncoder().encode("hello from the web page test\n"),
    "empty.txt": new Uint8Array(0),
    "sub/data.bin": bytes(200_000, 7),
    "sub/deep/notes.md": new TextEncoder().encode("# notes\n\nviewed in the browser\n"),
    "big.bin": bytes((5 << 20) + 123, 11),
  };
  for (const [rel, data] of Object.entries(files)) {
    mkdirSync(join(dir, rel, ".."), { recursive: true });
    writeFileSync(join(dir, rel), data);
  }
  return files;
}

const status = (page) => page.locator("#status").textContent();

async function waitStatus(page, re, timeout = 120_000) {
  await page.waitForFunction(
    ([src]) => new RegExp(src).test(document.querySelector("#status")?.textContent ?? "") || /^error/.test(document.querySelector("#status")?.textContent ?? ""),
    [re.source],
    { timeout },
  );
  const s = await status(page);
  if (!re.test(s)) throw new Error(`page reported: ${s}`);
  return s;
}

async function rowNames(page) {
  return page.locator("#tree tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.name));
}

async function download(page, file) {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  await dl.saveAs(file);
  return dl.suggestedFilename();
}

/** Compare files in the image (debugfs dump) with `files`; returns problems. */
function compareImage(img, files, tmp) {
  const problems = [];
  for (const [rel, want] of Object.entries(files)) {
    const out = join(tmp, `dump-${rel.replace(/\W+/g, "_")}`);
    const r = debugfs(img, `dump /${rel} ${out}`);
    let got;
    try {
      got = readFileSync(out);
    } catch {
      problems.push(`debugfs dump /${rel} produced nothing: ${r.stderr.trim()}`);
      continue;
    }
    if (Buffer.compare(got, Buffer.from(want)) !== 0) problems.push(`/${rel}: ${got.length} bytes differ from the source's ${want.length}`);
  }
  return problems;
}

/** Names directly under `dir` in the image, from `debugfs ls -p`. */
function lsNames(img, dir) {
  return debugfs(img, `ls -p ${dir}`).stdout.split("\n")
    .map((l) => l.split("/")[5])
    .filter((n) => n && n !== "." && n !== "..");
}

export async function runWebPageTests({ browser, url, report, artifacts, tmp }) {
  const work = join(tmp, "web");
  const src = join(work, "folder");
  mkdirSync(src, { recursive: true });
  const files = makeSource(src);
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  const log = [];
  page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
  const step = async (name, fn) => {
    try {
      const detail = await fn();
      report(name, !detail, detail || "");
    } catch (e) {
      report(name, false, `${e.message}\n${log.slice(-20).join("\n")}`);
    }
  };
  const built = join(work, "built.img");
  const edited = join(work, "edited.img");

  await step("web: folder → image → download; e2fsck -fn + debugfs dump match the folder", async () => {
    await page.goto(url);
    await page.setInputFiles("#folder-input", src);
    console.log(`      page: ${await waitStatus(page, /^image ready/)}`);
    const shown = (await rowNames(page)).sort();
    await page.screenshot({ path: join(artifacts, "web-1-built.png"), fullPage: true });
    const name = await download(page, built);
    const problems = [];
    if (name !== "folder.img") problems.push(`download named ${name}, wanted folder.img`);
    const want = ["big.bin", "empty.txt", "hello.txt", "lost+found", "sub"];
    if (JSON.stringify(shown) !== JSON.stringify(want)) problems.push(`page lists ${shown}, wanted ${want}`);
    const fsck = e2fsck(built);
    if (fsck.code !== 0) problems.push(`e2fsck -fn exit ${fsck.code}:\n${fsck.stdout}`);
    const root = lsNames(built, "/").sort();
    if (JSON.stringify(root) !== JSON.stringify(want)) problems.push(`debugfs ls / shows ${root}, wanted ${want}`);
    problems.push(...compareImage(built, files, work));
    return problems.join("\n");
  });

  await step("web: open image → browse, view a file, add one, delete one → download; e2fsck + debugfs", async () => {
    await page.goto(url);
    await page.setInputFiles("#image-input", built);
    await waitStatus(page, /^opened/);
    await page.click('#tree tr[data-name="sub"] a');
    await page.waitForSelector('#tree tr[data-name="deep"]');
    await page.click('#tree tr[data-name="deep"] a');
    await page.waitForSelector('#tree tr[data-name="notes.md"]');
    await page.click('#tree tr[data-name="notes.md"] a');
    await page.waitForSelector("#viewer:not([hidden])");
    const viewed = await page.locator("#viewer-body").textContent();
    await page.screenshot({ path: join(artifacts, "web-2-browse.png"), fullPage: true });
    const added = "added through the web page\n";
    await page.setInputFiles("#add-input", { name: "added.txt", mimeType: "text/plain", buffer: Buffer.from(added) });
    await waitStatus(page, /^added 1 file to \/sub\/deep/);
    await page.waitForSelector('#tree tr[data-name="added.txt"]');
    await page.click('#crumbs a[data-path="/"]');
    await page.waitForSelector('#tree tr[data-name="hello.txt"]');
    await page.click('#tree tr[data-name="hello.txt"] button.delete');
    await waitStatus(page, /^deleted \/hello\.txt/);
    const after = await rowNames(page);
    // The deleted inode goes through inodegc: the panel must show it inactivated (the
    // poll's statfs drains the lanes, so a count of 0 for long means it never ran).
    const gcShown = await page.waitForFunction(() => {
      const m = /inodegc\)([^]*?) inactivated/.exec(document.querySelector("#stats")?.textContent ?? "");
      return m && /(\d+)$/.test(m[1]) && Number(/(\d+)$/.exec(m[1])[1]) >= 1;
    }, null, { timeout: 10_000 }).then(() => true, () => false);
    const statsText = await page.locator("#stats").textContent();
    await page.screenshot({ path: join(artifacts, "web-3-edited.png"), fullPage: true });
    await download(page, edited);

    const problems = [];
    if (viewed !== new TextDecoder().decode(files["sub/deep/notes.md"])) problems.push(`viewer showed ${JSON.stringify(viewed)}`);
    if (after.includes("hello.txt")) problems.push("hello.txt still listed after delete");
    if (!gcShown) problems.push(`stats panel never showed the deleted inode inactivated by inodegc: ${statsText}`);
    const fsck = e2fsck(edited);
    if (fsck.code !== 0) problems.push(`e2fsck -fn exit ${fsck.code}:\n${fsck.stdout}`);
    const cat = debugfs(edited, "cat /sub/deep/added.txt").stdout;
    if (cat !== added) problems.push(`debugfs cat /sub/deep/added.txt: ${JSON.stringify(cat)}`);
    if (lsNames(edited, "/").includes("hello.txt")) problems.push("debugfs still finds /hello.txt");
    const { "hello.txt": _gone, ...kept } = files;
    problems.push(...compareImage(edited, kept, work));
    return problems.join("\n");
  });

  await step("web: files dropped on the page → image; e2fsck + debugfs", async () => {
    await page.goto(url);
    // A real OS drag cannot be scripted; a DataTransfer built in the page carries files
    // (not folders) through the same drop handler.
    const dt = await page.evaluateHandle(() => {
      const d = new DataTransfer();
      d.items.add(new File(["first dropped\n"], "one.txt", { type: "text/plain" }));
      d.items.add(new File([new Uint8Array(70_000).fill(0x5a)], "two.bin"));
      return d;
    });
    await page.dispatchEvent("#drop", "drop", { dataTransfer: dt });
    await waitStatus(page, /^image ready/);
    const img = join(work, "dropped.img");
    const name = await download(page, img);
    const problems = [];
    if (name !== "dropped.img") problems.push(`download named ${name}`);
    const fsck = e2fsck(img);
    if (fsck.code !== 0) problems.push(`e2fsck -fn exit ${fsck.code}:\n${fsck.stdout}`);
    problems.push(...compareImage(img, { "one.txt": new TextEncoder().encode("first dropped\n"), "two.bin": new Uint8Array(70_000).fill(0x5a) }, work));
    return problems.join("\n");
  });

  await step("web: live stats panel shows the open volume", async () => {
    await page.waitForFunction(() => /lazy inode-table init/.test(document.querySelector("#stats")?.textContent ?? ""), null, { timeout: 10_000 });
    const text = await page.locator("#stats").textContent();
    await page.locator("#stats").screenshot({ path: join(artifacts, "web-4-stats.png") });
    const want = [/groups zeroed/, /\d+ reads/, /queued per lane/, /\d+ ioEnds in flight/, /frozen\s*no/];
    const missing = want.filter((re) => !re.test(text));
    return missing.length === 0 ? "" : `stats panel lacks ${missing.join(", ")}: ${text}`;
  });

  await context.close();
}
