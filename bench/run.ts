/**
 * `npm run bench`: wile against certbot, lego, dehydrated and uacme on one local Pebble (bench/full.ts,
 * issue 6; writes .tmp/bench-full.json). `npm run bench -- --quick`: wile alone, a few runs, the smoke
 * run of the harness in scripts/test.sh (bench/quick.ts; writes .tmp/bench.json).
 */
if (process.argv.includes("--quick")) await import("./quick");
else await import("./full");

export {};
