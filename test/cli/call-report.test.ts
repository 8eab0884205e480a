import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatCallReport, type CallReport } from "../../src/cli/call-report.js";

const report: CallReport = {
  proxy: "p2",
  answered: true,
  setup_ms: 41.7,
  audio: { sent: 250, received: 249, lost: 1, jitter_ms: 0.84 },
  video: null,
  mos: 4.38,
};

describe("the end-of-call report", () => {
  test("the table names the proxy, setup time, MOS and a line a stream", () => {
    assert.equal(
      formatCallReport(report),
      [
        "proxy     p2",
        "answered  yes",
        "setup     42 ms",
        "MOS       4.38",
        "",
        "stream  sent  received  lost  jitter ms",
        "audio    250       249     1        0.8",
      ].join("\n"),
    );
  });

  test("an unanswered call has dashes, not zeros, where nothing was measured", () => {
    const text = formatCallReport({
      proxy: null,
      answered: false,
      setup_ms: null,
      audio: null,
      video: null,
      mos: null,
    });
    assert.equal(text, ["proxy     -", "answered  no", "setup     -", "MOS       -"].join("\n"));
  });

  test("JSON keeps the keys scripts read", () => {
    const keys = Object.keys(JSON.parse(JSON.stringify(report)) as object).sort();
    assert.deepEqual(keys, ["answered", "audio", "mos", "proxy", "setup_ms", "video"]);
  });
});
