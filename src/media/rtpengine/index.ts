// The media relay's control: rtpengine's ng protocol and a launcher for the daemon (issue 8).
export { BencodeError, bdecode, bencode, type BencodeValue } from "./bencode.js";
export {
  DEFAULT_NG_ATTEMPTS,
  DEFAULT_NG_TIMEOUT_MS,
  NgClient,
  NgError,
  type NgClientOptions,
  type NgErrorCode,
} from "./ng-client.js";
export {
  readQuery,
  readStatistics,
  toNgMediaParams,
  type NgDictionary,
  type NgMediaOptions,
  type NgPacketTotals,
  type NgQueryResult,
  type NgSdpResult,
  type NgStatistics,
} from "./ng-types.js";
export {
  RTPENGINE_PACKAGE,
  RtpengineProcess,
  type RtpengineProcessOptions,
} from "./rtpengine-process.js";
