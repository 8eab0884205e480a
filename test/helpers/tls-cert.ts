import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCertificate {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  dispose(): void;
}

/** A self-signed certificate for 127.0.0.1, ::1 and localhost, made with openssl. */
export function makeTestCertificate(commonName = "sipsteer-test"): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "sipsteer-tls-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
    ],
    { stdio: "ignore" },
  );
  return { dir, certFile, keyFile, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
