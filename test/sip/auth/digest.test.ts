// SIP digest authentication: RFC 2617 / RFC 7616 vectors, RFC 3261 §22, RFC 8760 SHA-256.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Credentials,
  DigestServer,
  SipRequest,
  answerChallenge,
  parseAuthHeader,
  readChallenge,
  type DigestAlgorithm,
} from "../../../src/sip/index.js";
import { FakeClock } from "../../helpers/fake-clock.js";

const REALM = "sipsteer.test";
const credentials = Credentials.parse(
  [Credentials.line("alice", REALM, "wonderland"), Credentials.line("bob", "other.test", "x")].join(
    "\n",
  ),
);
const lookup = credentials.ha1.bind(credentials);

function register(authorization?: string): SipRequest {
  return new SipRequest({
    method: "REGISTER",
    uri: "sip:sipsteer.test",
    headers: authorization === undefined ? [] : [["Authorization", authorization]],
  });
}

function authorize(
  server: DigestServer,
  algorithm: DigestAlgorithm,
  password = "wonderland",
  nc = 1,
) {
  const challenges = server.challenge(REALM).map((c) => readChallenge(parseAuthHeader(c, 64))!);
  const challenge = challenges.find((c) => c.algorithm === algorithm)!;
  const value = answerChallenge(
    challenge,
    { method: "REGISTER", uri: "sip:sipsteer.test" },
    { user: "alice", password },
    nc,
  );
  return { value, challenge };
}

describe("digest answers match the RFCs' worked examples", () => {
  test("RFC 2617 §3.5 (MD5, qop=auth)", () => {
    const value = answerChallenge(
      {
        realm: "testrealm@host.com",
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        algorithm: "MD5",
        qop: "auth",
      },
      { method: "GET", uri: "/dir/index.html" },
      { user: "Mufasa", password: "Circle Of Life" },
      1,
      "0a4f113b",
    );
    assert.match(value, /response="6629fae49393a05397450978507c4ef1"/);
  });

  test("RFC 7616 §3.9.1 (SHA-256, qop=auth)", () => {
    const value = answerChallenge(
      {
        realm: "http-auth@example.org",
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        algorithm: "SHA-256",
        qop: "auth",
      },
      { method: "GET", uri: "/dir/index.html" },
      { user: "Mufasa", password: "Circle of Life" },
      1,
      "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    );
    assert.match(
      value,
      /response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"/,
    );
  });
});

describe("DigestServer", () => {
  for (const algorithm of ["SHA-256", "MD5"] as const) {
    test(`accepts good ${algorithm} credentials once per nonce count`, () => {
      const server = new DigestServer();
      const { value } = authorize(server, algorithm);
      const request = register(value);
      const verdict = server.verify(request, request.authorizations[0]!, REALM, lookup);
      assert.deepEqual(verdict, { ok: true, user: "alice", algorithm });
      const again = server.verify(request, request.authorizations[0]!, REALM, lookup);
      assert.deepEqual(again, { ok: false, reason: "replay", user: "alice" });
    });
  }

  test("offers SHA-256 first, then MD5 (RFC 8760 §2.3)", () => {
    const values = new DigestServer().challenge(REALM);
    assert.deepEqual(
      values.map((v) => /algorithm=([A-Z0-9-]+)/.exec(v)![1]),
      ["SHA-256", "MD5"],
    );
    assert.match(values[0]!, /qop="auth"/);
  });

  test("a wrong password, an unknown user, a foreign nonce, a wrong realm or URI are refused", () => {
    const server = new DigestServer();
    const verdict = (value: string, request = register(value), realm = REALM) =>
      server.verify(request, request.authorizations[0]!, realm, lookup);
    assert.equal(
      (verdict(authorize(server, "MD5", "guess").value) as { reason: string }).reason,
      "bad-response",
    );
    const other = new DigestServer();
    assert.equal(
      (verdict(authorize(other, "MD5").value) as { reason: string }).reason,
      "bad-nonce",
    );
    assert.equal(
      (verdict(authorize(server, "MD5").value, undefined, "elsewhere.test") as { reason: string })
        .reason,
      "wrong-realm",
    );
    const { challenge } = authorize(server, "MD5");
    const carol = answerChallenge(
      challenge,
      { method: "REGISTER", uri: "sip:sipsteer.test" },
      { user: "carol", password: "x" },
    );
    assert.equal((verdict(carol) as { reason: string }).reason, "unknown-user");
    const wrongUri = answerChallenge(
      challenge,
      { method: "REGISTER", uri: "sip:elsewhere.test" },
      { user: "alice", password: "wonderland" },
    );
    assert.equal((verdict(wrongUri) as { reason: string }).reason, "uri-mismatch");
    assert.equal(
      (verdict("Basic YWxpY2U6d29uZGVybGFuZA==") as { reason: string }).reason,
      "malformed",
    );
  });

  test("good credentials on an expired nonce are stale (the client retries, stale=true)", () => {
    const clock = new FakeClock();
    const server = new DigestServer({ clock, nonceTtlMs: 60_000 });
    const { value } = authorize(server, "SHA-256");
    clock.tick(61_000);
    const request = register(value);
    assert.deepEqual(server.verify(request, request.authorizations[0]!, REALM, lookup), {
      ok: false,
      reason: "stale",
      user: "alice",
    });
    assert.match(server.challenge(REALM, true)[0]!, /stale=true/);
  });

  test("the credentials file refuses bad lines naming them", () => {
    assert.throws(
      () => Credentials.parse("alice:sipsteer.test:nothex:abc", "users.txt"),
      /users\.txt:1:/,
    );
    assert.equal(Credentials.parse("# comment\n\n" + Credentials.line("a", "r", "p")).size, 1);
  });
});
