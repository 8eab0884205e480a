/**
 * SIPp's `-inf` injection file of the users: the first line says the order lines are taken in
 * (`SEQUENTIAL`: one line per call, in turn); then `user;password;domain;auth`, read in a
 * scenario as `[field0]` … `[field3]`, where `auth` is SIPp's own
 * `[authentication username=… password=…]` keyword: SIPp does not expand a field inside a
 * keyword, but does expand a keyword that a field holds. SIPp skips lines starting with `#`.
 */
export function usersCsv(
  users: readonly { readonly user: string; readonly password: string }[],
  domain: string,
): string {
  return [
    "SEQUENTIAL",
    "# user;password;domain;auth (fields 0 to 3)",
    ...users.map(
      (u) =>
        `${u.user};${u.password};${domain};[authentication username=${u.user} password=${u.password}]`,
    ),
    "",
  ].join("\n");
}

/**
 * A SIPp UAC scenario for the users file: REGISTER of `[field0]@[field2]`, the 401's digest
 * challenge answered by `[field3]` (user `[field0]`, password `[field1]`; RFC 3261 §22), then 200.
 */
export const SIPP_REGISTER_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!--
  Written by sipsteer up. Registers the users of users.csv (one per call) with digest auth:
    sipp PROXY:PORT -sf sipp-register.xml -inf users.csv -i 127.0.0.1 -m 3
-->
<scenario name="REGISTER with digest authentication, users from -inf">
  <send retrans="500">
    <![CDATA[

      REGISTER sip:[field2] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[field2]>;tag=[pid]-[call_number]
      To: <sip:[field0]@[field2]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[

      REGISTER sip:[field2] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[field2]>;tag=[pid]-[call_number]
      To: <sip:[field0]@[field2]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
      [field3]
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
`;
