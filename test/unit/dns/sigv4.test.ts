/**
 * src/dns/sigv4.ts against AWS's published Signature Version 4 test suite (aws-sig-v4-test-suite:
 * the example credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1,
 * service "service", 2015-08-30T12:36:00Z). For each case the suite gives the canonical request,
 * the string to sign and the signature; they are facts to be reproduced, checked here step by
 * step and through signRequest, the function the Route 53 provider calls.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  amzDate,
  canonicalRequest,
  credentialScope,
  sha256Hex,
  signature,
  signRequest,
  stringToSign,
} from "../../../src/dns/sigv4";

const CREDS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const NOW = new Date(Date.UTC(2015, 7, 30, 12, 36, 0));
const SCOPE = "20150830/us-east-1/service/aws4_request";
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const HOST = "example.amazonaws.com";

interface Vector {
  name: string;
  method: string;
  url: string;
  /** Header lines besides Host and X-Amz-Date, in order. */
  headers: [string, string][];
  body: string;
  canonical: string[];
  /** The last line of the string to sign: hex SHA-256 of the canonical request. */
  canonicalHash?: string;
  signature: string;
}

const VECTORS: Vector[] = [
  {
    name: "get-vanilla",
    method: "GET",
    url: `https://${HOST}/`,
    headers: [],
    body: "",
    canonical: ["GET", "/", "", `host:${HOST}`, "x-amz-date:20150830T123600Z", "", "host;x-amz-date", EMPTY],
    canonicalHash: "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
    signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  },
  {
    name: "get-vanilla-query-order-key-case",
    method: "GET",
    url: `https://${HOST}/?Param2=value2&Param1=value1`,
    headers: [],
    body: "",
    canonical: [
      "GET",
      "/",
      "Param1=value1&Param2=value2",
      `host:${HOST}`,
      "x-amz-date:20150830T123600Z",
      "",
      "host;x-amz-date",
      EMPTY,
    ],
    signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
  },
  {
    name: "post-vanilla-query",
    method: "POST",
    url: `https://${HOST}/?Param1=value1`,
    headers: [],
    body: "",
    canonical: [
      "POST",
      "/",
      "Param1=value1",
      `host:${HOST}`,
      "x-amz-date:20150830T123600Z",
      "",
      "host;x-amz-date",
      EMPTY,
    ],
    canonicalHash: "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
    signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
  },
  {
    name: "get-header-value-trim",
    method: "GET",
    url: `https://${HOST}/`,
    headers: [
      ["My-Header1", " value1"],
      ["My-Header2", ' "a   b   c"'],
    ],
    body: "",
    canonical: [
      "GET",
      "/",
      "",
      `host:${HOST}`,
      "my-header1:value1",
      'my-header2:"a b c"',
      "x-amz-date:20150830T123600Z",
      "",
      "host;my-header1;my-header2;x-amz-date",
      EMPTY,
    ],
    canonicalHash: "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
    signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
  },
  {
    name: "get-space (normalize-path)",
    method: "GET",
    url: `https://${HOST}/example space/`,
    headers: [],
    body: "",
    canonical: [
      "GET",
      "/example%20space/",
      "",
      `host:${HOST}`,
      "x-amz-date:20150830T123600Z",
      "",
      "host;x-amz-date",
      EMPTY,
    ],
    signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
  },
  {
    name: "post-x-www-form-urlencoded (a body, with its hash signed as a header)",
    method: "POST",
    url: `https://${HOST}/`,
    headers: [
      ["Content-Type", "application/x-www-form-urlencoded"],
      ["Content-Length", "13"],
      ["X-Amz-Content-Sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"],
    ],
    body: "Param1=value1",
    canonical: [
      "POST",
      "/",
      "",
      "content-length:13",
      "content-type:application/x-www-form-urlencoded",
      `host:${HOST}`,
      "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
      "x-amz-date:20150830T123600Z",
      "",
      "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
      "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
    ],
    canonicalHash: "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
    signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
  },
];

describe("sigv4: AWS's Signature Version 4 test suite", () => {
  test("the date and the credential scope", () => {
    assert.equal(amzDate(NOW), "20150830T123600Z");
    assert.equal(credentialScope("20150830T123600Z", "us-east-1", "service"), SCOPE);
  });

  for (const v of VECTORS) {
    test(`${v.name}: canonical request, string to sign, signature`, () => {
      const lines: [string, string][] = [["Host", HOST], ...v.headers, ["X-Amz-Date", "20150830T123600Z"]];
      const signed = [...new Set(lines.map(([n]) => n.toLowerCase()))];
      const canonical = canonicalRequest(v.method, v.url, lines, signed, sha256Hex(v.body));
      assert.equal(canonical, v.canonical.join("\n"));
      const toSign = stringToSign("20150830T123600Z", SCOPE, canonical);
      if (v.canonicalHash)
        assert.equal(toSign, ["AWS4-HMAC-SHA256", "20150830T123600Z", SCOPE, v.canonicalHash].join("\n"));
      assert.equal(signature(CREDS.secretAccessKey, SCOPE, toSign), v.signature);
    });

    test(`${v.name}: signRequest gives the suite's Authorization header`, () => {
      const headers = Object.fromEntries(v.headers);
      const out = signRequest(
        {
          method: v.method,
          url: v.url,
          headers,
          body: v.body,
          region: "us-east-1",
          service: "service",
          now: NOW,
        },
        CREDS,
      );
      const signedNames = [
        ...new Set(["host", "x-amz-date", ...v.headers.map(([n]) => n.toLowerCase())]),
      ].sort();
      assert.equal(
        out.Authorization,
        `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/${SCOPE}, SignedHeaders=${signedNames.join(";")}, Signature=${v.signature}`,
      );
      assert.equal(out["X-Amz-Date"], "20150830T123600Z");
      assert.equal(out.Host, undefined, "Host is signed, and left to fetch to send");
    });
  }

  test("a session token is sent and signed as X-Amz-Security-Token; a changed byte changes the signature", () => {
    const input = {
      method: "POST",
      url: "https://route53.amazonaws.com/2013-04-01/hostedzone/Z1/rrset/",
      headers: { "Content-Type": "application/xml" },
      body: "<x/>",
      region: "us-east-1",
      service: "route53",
      now: NOW,
    };
    const plain = signRequest(input, CREDS);
    const withToken = signRequest(input, { ...CREDS, sessionToken: "TOKEN" });
    assert.equal(withToken["X-Amz-Security-Token"], "TOKEN");
    assert.match(
      withToken.Authorization ?? "",
      /SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,/,
    );
    assert.match(plain.Authorization ?? "", /SignedHeaders=content-type;host;x-amz-date, /);
    const sig = (h: Record<string, string>) => /Signature=([0-9a-f]{64})$/.exec(h.Authorization ?? "")?.[1];
    const other = signRequest({ ...input, body: "<y/>" }, CREDS);
    assert.notEqual(sig(plain), sig(other));
    assert.notEqual(sig(plain), sig(withToken));
  });
});
