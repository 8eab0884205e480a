// A node:test reporter that writes one JSON line: how many tests each file ran, passed,
// failed and skipped. scripts/run-tests.mjs reads it to prove every test file really ran.
export default async function* countReporter(source) {
  const files = {};
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const data = event.data;
    // Each file runs in its own process and is reported as a test at nesting 0 that holds
    // the file's tests; suites (describe) are containers too. Neither is a test.
    if (data.details?.type === "suite" || data.nesting === 0) continue;
    const file = data.file ?? "(unknown)";
    const counts = (files[file] ??= { tests: 0, passed: 0, failed: 0, skipped: 0, todo: 0 });
    counts.tests++;
    if (data.skip !== undefined && data.skip !== false) counts.skipped++;
    else if (data.todo !== undefined && data.todo !== false) counts.todo++;
    else if (event.type === "test:pass") counts.passed++;
    else counts.failed++;
  }
  yield JSON.stringify({ files }) + "\n";
}
