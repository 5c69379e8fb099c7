// A node:test reporter (--test-reporter=./scripts/lib/results-reporter.mjs): one JSON line per
// finished test: {file, name, ok, skip, todo, suite, ms}, `name` joining the enclosing suites with " > ".
// scripts/test-repeat.mjs compares these across runs.
export default async function* resultsReporter(source) {
  const stack = [];
  for await (const event of source) {
    const d = event.data ?? {};
    if (event.type === "test:start") {
      stack[d.nesting] = d.name;
      stack.length = d.nesting + 1;
    } else if (event.type === "test:pass" || event.type === "test:fail") {
      const path = [...stack.slice(0, d.nesting), d.name];
      yield `${JSON.stringify({
        file: d.file ?? null,
        name: path.join(" > "),
        ok: event.type === "test:pass",
        skip: Boolean(d.skip),
        todo: Boolean(d.todo),
        suite: d.details?.type === "suite",
        ms: Math.round(d.details?.duration_ms ?? 0),
      })}\n`;
    }
  }
}
