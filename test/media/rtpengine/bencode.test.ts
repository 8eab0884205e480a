import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BencodeError, bdecode, bencode } from "../../../src/media/rtpengine/bencode.js";

describe("bencode", () => {
  it("writes dictionaries with keys in byte order, lists, integers and strings", () => {
    const bytes = bencode({ sdp: "v=0\r\n", command: "offer", flags: ["trust-address"], n: -3 });
    assert.equal(
      bytes.toString("latin1"),
      "d7:command5:offer5:flagsl13:trust-addresse1:ni-3e3:sdp5:v=0\r\ne",
    );
  });

  it("leaves out undefined values and round-trips what it wrote", () => {
    const value = { a: "x", b: [1, "two", { c: [] }], d: { e: "" } };
    assert.deepEqual(
      JSON.parse(JSON.stringify(bdecode(bencode({ ...value, skipped: undefined } as never)))),
      value,
    );
  });

  it("keeps every byte of a string (Latin-1 both ways)", () => {
    const text = "\u00ff\u0000\u00e9";
    assert.equal(bdecode(bencode(text)), text);
  });

  it("refuses what is not bencoding, naming where", () => {
    for (const bad of ["", "i12", "i01e", "5:abc", "d3:keyi1e", "x", "li1e", "d1:ai1ee1"]) {
      assert.throws(() => bdecode(Buffer.from(bad, "latin1")), BencodeError, bad);
    }
    assert.throws(() => bdecode(Buffer.from("di1ei2ee")), /key not a string/);
  });

  it("refuses nesting deep enough to exhaust the stack", () => {
    const deep = Buffer.from("l".repeat(100) + "e".repeat(100));
    assert.throws(() => bdecode(deep), /nested too deep/);
  });
});
