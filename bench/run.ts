/**
 * `npm run bench`: wile against certbot, lego, dehydrated and uacme on one local Pebble (bench/full.ts,
 * issue 6; writes .tmp/bench-full.json). `npm run bench -- --quick`: wile alone, a few runs, the smoke
 * run of the harness in scripts/test.sh (bench/quick.ts; writes .tmp/bench.json). `npm run bench -- --batch-only`:
 * the batch issuance case (issue 13) alone (bench/batch-only.ts; writes .tmp/bench-batch.json).
 */
if (process.argv.includes("--quick")) await import("./quick");
else if (process.argv.includes("--batch-only")) await import("./batch-only");
else await import("./full");

export {};
