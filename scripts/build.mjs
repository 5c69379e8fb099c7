#!/usr/bin/env node
// Bundles src/ into dist/wile.cjs (settings in scripts/lib/bundle.mjs).
import { bundle } from "./lib/bundle.mjs";

await bundle(new URL("../dist/wile.cjs", import.meta.url).pathname);
