/**
 * -v stack traces that are useful in a bug report although dist/wile.cjs is minified: the build
 * writes the source map dist/wile.cjs.map beside the bundle (and embeds it in the standalone
 * binaries as the SEA asset `wile.cjs.map`). With -v, and only when a map is there, each frame of
 * the bundle is shown as its TypeScript function and position: `at obtainCertificate
 * (src/flow/issue.ts:120:11)`. Without a map (wile.cjs copied alone) frames stay as V8 prints them.
 */
import { existsSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";

const SEA_ASSET = "wile.cjs.map";

/**
 * Where the bundle's source map is, without reading it: the SEA asset, `<bundle>.map`, or
 * undefined (running from src/ under tsx, or no map shipped). `file`: the bundle's path ("" in SEA).
 */
function findMap(): { read: () => string; file: string } | undefined {
  try {
    const sea = require("node:sea") as typeof import("node:sea");
    if (sea.isSea()) return { read: () => sea.getAsset(SEA_ASSET, "utf8"), file: "" };
  } catch {
    // Node before 20.12 has no node:sea.
  }
  const file = typeof __filename === "string" ? __filename : "";
  if (!file.endsWith(".cjs") || !existsSync(`${file}.map`)) return undefined;
  return { read: () => readFileSync(`${file}.map`, "utf8"), file };
}

/**
 * From now on, error stacks name TypeScript functions and positions (called for -v). The map is
 * parsed when the first stack is formatted, so -v without an error costs nothing.
 */
export function useSourceMapStacks(): void {
  const found = findMap();
  if (!found) return;
  const { file } = found;
  let parsed: SourceMap | null | undefined;
  const sourceMap = () => {
    if (parsed === undefined) {
      try {
        parsed = new SourceMap(JSON.parse(found.read()));
      } catch {
        parsed = null; // a binary without the asset, a damaged map: frames as V8 prints them
      }
    }
    return parsed;
  };
  const fromBundle = (f: NodeJS.CallSite) => {
    const name = f.getFileName() ?? "";
    // A standalone binary names its script by the path of the bundle it was built from.
    return file === "" ? name.endsWith(".cjs") : name === file;
  };
  /** The mapping at or before (1-based line, 0-based column) of the bundle. */
  const exactOrBefore = (line: number, col: number) =>
    (sourceMap() as SourceMap).findEntry(line - 1, col) as {
      generatedLine?: number;
      generatedColumn?: number;
      name?: string;
    };
  /** The mapping that starts exactly at (1-based line, 0-based column) of the bundle, if any. */
  const exact = (line: number, col: number) => {
    const e = exactOrBefore(line, col);
    return e.generatedLine === line - 1 && e.generatedColumn === col ? e : undefined;
  };
  // esbuild writes `function Xy(` / `async function Xy(`: V8 gives the position of `function` or
  // `async` (a mapping without a name), the map names the identifier after it.
  const functionName = (f: NodeJS.CallSite) => {
    const line = f.getEnclosingLineNumber?.();
    const col = f.getEnclosingColumnNumber?.();
    const start = line && col ? exact(line, col - 1) : undefined;
    if (!line || !col || !start || start.name) return undefined;
    // Only a keyword between: no other mapping starts before the name (a method's `async run({a:b`
    // has one at `run`, and `b` is not the function's name).
    const after = (k: number) =>
      exactOrBefore(line, col - 1 + k - 1).generatedColumn === col - 1
        ? exact(line, col - 1 + k)?.name
        : undefined;
    return after(9) ?? after(15);
  };
  Error.prepareStackTrace = (err: Error, frames: NodeJS.CallSite[]) => {
    let name = err.name;
    const lines = frames.map((f, i) => {
      const line = f.getLineNumber();
      const col = f.getColumnNumber();
      const map = sourceMap();
      if (!map || !fromBundle(f) || !line || !col) return `    at ${f}`;
      const e = map.findEntry(line - 1, col - 1) as {
        originalSource?: string;
        originalLine?: number;
        originalColumn?: number;
      };
      if (!e.originalSource) return `    at ${f}`;
      // The error's class, minified too: the first frame is its `new Xy(`.
      if (i === 0) name = exact(line, col - 1 + 4)?.name ?? name;
      const fn = functionName(f) ?? f.getFunctionName() ?? "<anonymous>";
      const where = `${e.originalSource.replace(/^(\.\.\/)+/, "")}:${(e.originalLine ?? 0) + 1}:${(e.originalColumn ?? 0) + 1}`;
      return `    at ${f.isAsync() ? "async " : ""}${fn} (${where})`;
    });
    return [err.message ? `${name}: ${err.message}` : name, ...lines].join("\n");
  };
}
