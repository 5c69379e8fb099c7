/**
 * The layering of src/ (docs in /work/shared/design.md, issue 9): the command line sits on top
 * and nothing below it imports it; the protocol (src/acme) stands on crypto and util only; util
 * stands on nothing. Every .ts file under src is read, and every import that breaks a rule is
 * listed, not just the first.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, test } from "node:test";
import ts from "typescript";

const ROOT = join(import.meta.dirname, "..", "..");
const SRC = join(ROOT, "src");

interface Rule {
  /** The src folder whose files are checked. */
  from: string;
  /** True when `from` may import the src area `to` (a folder, or a file at src's top without .ts). */
  allows: (to: string) => boolean;
  what: string;
}

const BELOW_CLI = ["deploy", "renew", "flow", "store", "acme", "crypto", "challenges", "dns"];

const RULES: Rule[] = [
  ...BELOW_CLI.map((from) => ({
    from,
    allows: (to: string) => to !== "cli",
    what: "imports nothing from src/cli",
  })),
  {
    from: "acme",
    allows: (to) => ["acme", "crypto", "util"].includes(to),
    what: "imports nothing from src but src/acme, src/crypto and src/util",
  },
  {
    from: "dns",
    allows: (to) => ["dns", "util", "version"].includes(to),
    what: "imports nothing from src but src/dns, src/util and src/version.ts",
  },
  {
    from: "util",
    allows: (to) => to === "util" || to === "version",
    what: "imports nothing from src but src/util and src/version.ts",
  },
];

interface Import {
  file: string;
  specifier: string;
  /** The src area it reaches: a folder under src, or a top-level file's name without .ts. */
  to: string;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.isFile() && e.name.endsWith(".ts") ? [p] : [];
  });
}

/** The first folder under src of a path inside src, or the file's name for src's own files. */
function areaOf(pathInSrc: string): string {
  const parts = pathInSrc.split(sep);
  return parts.length > 1 ? (parts[0] as string) : (parts[0] as string).replace(/\.ts$/, "");
}

/** Every import, export-from, import() and require() of `text` (comments and strings ignored). */
function specifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** The relative imports of every file under src that reach into src. */
function srcImports(): Import[] {
  const out: Import[] = [];
  for (const file of tsFiles(SRC)) {
    for (const specifier of specifiers(readFileSync(file, "utf8"))) {
      if (!specifier.startsWith(".")) continue;
      const target = relative(SRC, resolve(dirname(file), specifier));
      if (target.startsWith("..")) continue;
      out.push({ file: relative(ROOT, file), specifier, to: areaOf(target) });
    }
  }
  return out;
}

const fromArea = (imp: Import) => areaOf(relative("src", imp.file));

describe("architecture: which src folders may import which", () => {
  const imports = srcImports();

  test("the import reader sees every form of import, and not comments or strings", () => {
    const text = [
      `// import x from "./commented";`,
      `import type { A } from "../a";`,
      `export { b } from "./b";`,
      `export * from "../c";`,
      `const s = "import z from '../string'";`,
      `async function f() { await import("../d"); }`,
      `import "../e";`,
    ].join("\n");
    assert.deepEqual(specifiers(text), ["../a", "./b", "../c", "../d", "../e"]);
    assert.ok(
      imports.some((i) => i.file === join("src", "acme", "obtain.ts") && i.to === "acme"),
      "src/acme/obtain.ts's own imports are found",
    );
  });

  for (const rule of RULES) {
    test(`src/${rule.from} ${rule.what}`, () => {
      const bad = imports.filter((i) => fromArea(i) === rule.from && !rule.allows(i.to));
      assert.deepEqual(
        bad.map((i) => `${i.file} imports "${i.specifier}" (src/${i.to})`),
        [],
        `src/${rule.from} must import nothing from ${[...new Set(bad.map((i) => `src/${i.to}`))].join(", ")}`,
      );
    });
  }
});
