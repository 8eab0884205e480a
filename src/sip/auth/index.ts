export {
  Credentials,
  DIGEST_ALGORITHMS,
  digestHash,
  ha1,
  type Credential,
  type DigestAlgorithm,
} from "./credentials.js";
export {
  DEFAULT_NONCE_TTL_MS,
  DigestServer,
  answerChallenge,
  readChallenge,
  type DigestChallenge,
  type DigestFailure,
  type DigestServerOptions,
  type DigestVerdict,
  type Ha1Lookup,
} from "./digest.js";
