export {
  LOAD_REPORT_VERSION,
  loadReportSchema,
  parseLoadReport,
  readLoadReport,
  type LoadReport,
  type LoadReportIssue,
  type LoadReportResult,
} from "./load-report.js";
export {
  SIGNATURE_HEADER,
  parseSignatureHeader,
  parseSignedDatagram,
  signatureHeader,
  signatureOf,
  signedDatagram,
  signingSecret,
  verifySignature,
  type SigningKey,
} from "./report-signature.js";
export { upInfoSchema, type UpInfo } from "./up-info.js";
export {
  MEDIA_KIND,
  relayAlternateSchema,
  relaySelectAnswerSchema,
  type RelayAlternate,
  type RelaySelectAnswer,
} from "./relay-answer.js";
