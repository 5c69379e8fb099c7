/**
 * src/dns/providers/route53.ts and src/dns/xml.ts: the XML reader's strictness, Route 53's error
 * documents, the record-set change (pure), the ChangeBatch document, the partition endpoints, and
 * the requests against a scripted HTTP server: zone lookup with paging, GetHostedZone for a given
 * id, GetChange polling (bounded), errors. The signer is in sigv4.test.ts; the whole flow against
 * a double that checks signatures is in test/e2e/dns-pdns-route53.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type DnsRecord, readProviderSettings } from "../../../src/dns/provider";
import {
  changeBatchXml,
  type Route53Client,
  route53Change,
  route53Endpoint,
  route53ErrorDetail,
  route53Hint,
  route53Provider,
  waitInsync,
} from "../../../src/dns/providers/route53";
import { dnsProvider } from "../../../src/dns/registry";
import { parseXml, XmlError, xmlChild, xmlChildren, xmlText } from "../../../src/dns/xml";
import { WileError } from "../../../src/util/errors";
import { silentLogger } from "../../../src/util/log";
import { type HttpFake, reply, startHttpFake } from "../../helpers/http-fake";

const NS = 'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"';

describe("xml: a small strict reader", () => {
  test("elements, text, entities, character references, CDATA, comments, prefixes, attributes dropped", () => {
    const root = parseXml(
      `\ufeff<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><a:Root xmlns:a="u" x='1'><B>x &lt;&amp;&gt; &quot;&apos; &#65;&#x42;</B><!-- c --><C/><B><![CDATA[<raw>&]]></B></a:Root>\n`,
    );
    assert.equal(root.name, "Root");
    assert.deepEqual(
      xmlChildren(root, "B").map((b) => b.text),
      [`x <&> "' AB`, "<raw>&"],
    );
    assert.equal(xmlChild(root, "C")?.text, "");
    assert.equal(xmlText(root, "Nope", "B"), undefined);
  });

  for (const [why, doc] of [
    ["a tag left open", "<a><b></a>"],
    ["no root end", "<a>text"],
    ["text after the root", "<a/>tail"],
    ["a second root", "<a/><b/>"],
    ["a DOCTYPE (no entity expansion)", '<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'],
    ["an unknown entity", "<a>&nbsp;</a>"],
    ["a bare ampersand", "<a>a & b</a>"],
    ["an unquoted attribute", "<a x=1/>"],
    ["a character reference to NUL", "<a>&#0;</a>"],
    ["nothing", ""],
  ] as const) {
    test(`refuses ${why}`, () => {
      assert.throws(() => parseXml(doc), XmlError);
    });
  }

  test("refuses nesting deeper than 64", () => {
    assert.throws(() => parseXml(`${"<a>".repeat(70)}${"</a>".repeat(70)}`), /too deep/);
  });
});

describe("route53: error documents", () => {
  test("<ErrorResponse>: Code: Message", () => {
    assert.equal(
      route53ErrorDetail(
        `<?xml version="1.0"?>\n<ErrorResponse ${NS}><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error><RequestId>r</RequestId></ErrorResponse>`,
      ),
      "SignatureDoesNotMatch: The request signature we calculated does not match",
    );
  });
  test("<InvalidChangeBatch>: its messages", () => {
    assert.equal(
      route53ErrorDetail(
        `<InvalidChangeBatch ${NS}><Messages><Message>Tried to delete resource record set but it was not found</Message><Message>two</Message></Messages></InvalidChangeBatch>`,
      ),
      "InvalidChangeBatch: Tried to delete resource record set but it was not found; two",
    );
  });
  test("hints by code: secret, key id, IAM policy; none for an unknown code", () => {
    assert.match(route53Hint("SignatureDoesNotMatch: x") ?? "", /AWS_SECRET_ACCESS_KEY/);
    assert.match(route53Hint("ExpiredToken: x") ?? "", /AWS_SESSION_TOKEN/);
    assert.match(route53Hint("AccessDenied: x") ?? "", /route53:ChangeResourceRecordSets/);
    assert.equal(route53Hint("SomethingElse: x"), undefined);
    assert.equal(route53Hint(undefined), undefined);
  });
  test("anything else: undefined (the caller quotes the raw text, short and printable)", () => {
    assert.equal(route53ErrorDetail("<html>Bad gateway</html>"), undefined);
    assert.equal(route53ErrorDetail("not xml <"), undefined);
  });
});

describe("route53: the record-set change", () => {
  const name = "_acme-challenge.example.com.";
  test("no set: UPSERT of a new set with our quoted value", () => {
    assert.deepEqual(route53Change(name, undefined, "v1", true), {
      action: "UPSERT",
      set: { name, ttl: 60, values: ['"v1"'] },
    });
  });
  test("a set: UPSERT of the whole set with ours added, its TTL kept; nothing when ours is there", () => {
    const cur = { name, ttl: 300, values: ['"other"'] };
    assert.deepEqual(route53Change(name, cur, "v1", true), {
      action: "UPSERT",
      set: { name, ttl: 300, values: ['"other"', '"v1"'] },
    });
    assert.equal(route53Change(name, { ...cur, values: ['"v1"'] }, "v1", true), undefined);
  });
  test("removing: UPSERT of the rest, or DELETE of the set exactly as it is; nothing when gone", () => {
    const two = { name, ttl: 30, values: ['"v1"', '"v2"'] };
    assert.deepEqual(route53Change(name, two, "v1", false), {
      action: "UPSERT",
      set: { name, ttl: 30, values: ['"v2"'] },
    });
    const last = { name: "_ACME-challenge.example.com.", ttl: 30, values: ['"v1"'] };
    assert.deepEqual(route53Change(name, last, "v1", false), { action: "DELETE", set: last });
    assert.equal(route53Change(name, two, "v3", false), undefined);
    assert.equal(route53Change(name, undefined, "v3", false), undefined);
  });
  test("the ChangeResourceRecordSetsRequest document, values escaped", () => {
    const doc = changeBatchXml(
      { action: "UPSERT", set: { name, ttl: 60, values: ['"a<b&c"', '"v2"'] } },
      "wile & co",
    );
    assert.ok(
      doc.startsWith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">',
      ),
    );
    const root = parseXml(doc);
    const batch = xmlChild(root, "ChangeBatch");
    assert.equal(xmlText(batch, "Comment"), "wile & co");
    const change = xmlChild(xmlChild(batch, "Changes"), "Change");
    assert.equal(xmlText(change, "Action"), "UPSERT");
    const set = xmlChild(change, "ResourceRecordSet");
    assert.deepEqual([xmlText(set, "Name"), xmlText(set, "Type"), xmlText(set, "TTL")], [name, "TXT", "60"]);
    assert.deepEqual(
      xmlChildren(xmlChild(set, "ResourceRecords"), "ResourceRecord").map((r) => xmlText(r, "Value")),
      ['"a<b&c"', '"v2"'],
    );
  });
  test("partitions: the global endpoint signed for us-east-1; China and GovCloud their own", () => {
    assert.deepEqual(route53Endpoint("eu-west-1"), {
      endpoint: "https://route53.amazonaws.com",
      signingRegion: "us-east-1",
    });
    assert.equal(route53Endpoint("cn-north-1").signingRegion, "cn-northwest-1");
    assert.equal(route53Endpoint("us-gov-east-1").endpoint, "https://route53.us-gov.amazonaws.com");
  });
});

describe("route53: settings", () => {
  test("registered; lego's variables; no credential stored (the key id goes with its secret); a bad region refused", () => {
    assert.equal(dnsProvider("route53"), route53Provider);
    const r = readProviderSettings(
      route53Provider,
      {},
      {
        env: {
          AWS_ACCESS_KEY_ID: "AKIDEXAMPLE12345",
          AWS_SECRET_ACCESS_KEY: "s3cr3t",
          AWS_SESSION_TOKEN: "tok",
          AWS_REGION: "eu-central-1",
          AWS_HOSTED_ZONE_ID: "Z1D633PJN98FT9",
        },
      },
      (k) => k,
    );
    assert.equal(r.values.secretAccessKey, "s3cr3t");
    assert.deepEqual(r.stored, {
      provider: "route53",
      region: "eu-central-1",
      hostedZoneId: "Z1D633PJN98FT9",
    });
    assert.throws(() =>
      readProviderSettings(
        route53Provider,
        { accessKeyId: "AKIDEXAMPLE12345", secretAccessKey: "x", region: "Europe" },
        {},
        (k) => k,
      ),
    );
  });
});

describe("route53: requests against a scripted API", () => {
  let fake: HttpFake;
  before(async () => {
    fake = await startHttpFake();
  });
  after(() => fake.close());

  const rec = (value: string): DnsRecord => ({
    fqdn: "_acme-challenge.www.example.com",
    value,
    identifier: "www.example.com",
    token: "t",
  });
  const creds = { accessKeyId: "AKIDEXAMPLE12345", secretAccessKey: "secret-key-value", region: "us-east-1" };
  const provider = (extra: Record<string, string> = {}) =>
    route53Provider.create(
      { ...creds, ...extra },
      { logger: silentLogger, env: { AWS_ENDPOINT_URL_ROUTE_53: fake.base } },
    );
  const zone = (id: string, name: string, priv = false) =>
    `<HostedZone><Id>/hostedzone/${id}</Id><Name>${name}</Name><CallerReference>c</CallerReference><Config><PrivateZone>${priv}</PrivateZone></Config></HostedZone>`;
  const ok = (id = "C1") =>
    `<ChangeResourceRecordSetsResponse ${NS}><ChangeInfo><Id>/change/${id}</Id><Status>PENDING</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>`;
  const insync = `<GetChangeResponse ${NS}><ChangeInfo><Id>/change/C1</Id><Status>INSYNC</Status></ChangeInfo></GetChangeResponse>`;

  test("zone lookup: walks up the labels, follows pages past a private zone, then reads the set and UPSERTs, signed", async () => {
    fake.requests.length = 0;
    fake.route = (req, res) => {
      const u = new URL(req.url, fake.base);
      if (u.pathname === "/2013-04-01/hostedzonesbyname") {
        const dns = u.searchParams.get("dnsname");
        const from = u.searchParams.get("hostedzoneid");
        // Route 53 answers from the name on: for www.example.com. the next zone is example.com.'s
        // neighbour in reversed-label order, which is not a match.
        if (dns !== "example.com.")
          return reply(
            res,
            200,
            `<ListHostedZonesByNameResponse ${NS}><HostedZones>${zone("ZX", "zzz.example.com.")}</HostedZones><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListHostedZonesByNameResponse>`,
          );
        if (!from)
          return reply(
            res,
            200,
            `<ListHostedZonesByNameResponse ${NS}><HostedZones>${zone("ZPRIV", "example.com.", true)}</HostedZones><DNSName>example.com.</DNSName><IsTruncated>true</IsTruncated><NextDNSName>example.com.</NextDNSName><NextHostedZoneId>ZPUB</NextHostedZoneId><MaxItems>1</MaxItems></ListHostedZonesByNameResponse>`,
          );
        return reply(
          res,
          200,
          `<ListHostedZonesByNameResponse ${NS}><HostedZones>${zone("ZPUB", "example.com.")}</HostedZones><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListHostedZonesByNameResponse>`,
        );
      }
      if (u.pathname === "/2013-04-01/hostedzone/ZPUB/rrset" && req.method === "GET")
        return reply(
          res,
          200,
          `<ListResourceRecordSetsResponse ${NS}><ResourceRecordSets><ResourceRecordSet><Name>zzz.example.com.</Name><Type>TXT</Type><TTL>300</TTL><ResourceRecords><ResourceRecord><Value>"unrelated"</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>`,
        );
      if (u.pathname === "/2013-04-01/hostedzone/ZPUB/rrset/" && req.method === "POST")
        return reply(res, 200, ok());
      if (u.pathname === "/2013-04-01/change/C1") return reply(res, 200, insync);
      reply(
        res,
        404,
        "<ErrorResponse><Error><Code>Unknown</Code><Message>no</Message></Error></ErrorResponse>",
      );
    };
    await provider({ sessionToken: "session-token-value" }).present(rec("v1"));
    assert.deepEqual(
      fake.requests.map((r) => `${r.method} ${r.url}`),
      [
        "GET /2013-04-01/hostedzonesbyname?dnsname=_acme-challenge.www.example.com.&maxitems=100",
        "GET /2013-04-01/hostedzonesbyname?dnsname=www.example.com.&maxitems=100",
        "GET /2013-04-01/hostedzonesbyname?dnsname=example.com.&maxitems=100",
        "GET /2013-04-01/hostedzonesbyname?dnsname=example.com.&hostedzoneid=ZPUB&maxitems=100",
        "GET /2013-04-01/hostedzone/ZPUB/rrset?name=_acme-challenge.www.example.com.&type=TXT&maxitems=1",
        "POST /2013-04-01/hostedzone/ZPUB/rrset/",
        "GET /2013-04-01/change/C1",
      ],
    );
    for (const r of fake.requests) {
      assert.match(
        String(r.headers.authorization),
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE12345\/\d{8}\/us-east-1\/route53\/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$|SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,/,
      );
      assert.equal(r.headers["x-amz-security-token"], "session-token-value");
    }
    const post = fake.requests[5];
    assert.equal(post?.headers["content-type"], "application/xml");
    const set = xmlChild(
      xmlChild(xmlChild(xmlChild(parseXml(post?.body ?? ""), "ChangeBatch"), "Changes"), "Change"),
      "ResourceRecordSet",
    );
    assert.deepEqual(
      xmlChildren(xmlChild(set, "ResourceRecords"), "ResourceRecord").map((r) => xmlText(r, "Value")),
      ['"v1"'],
      "the unrelated set that ListResourceRecordSets gave is not taken for ours",
    );
  });

  test("a given hosted zone id: GetHostedZone, and a zone that does not hold the name is refused", async () => {
    fake.requests.length = 0;
    fake.route = (req, res) => {
      if (req.url === "/2013-04-01/hostedzone/ZOTHER")
        return reply(
          res,
          200,
          `<GetHostedZoneResponse ${NS}>${zone("ZOTHER", "example.org.")}</GetHostedZoneResponse>`,
        );
      reply(res, 404);
    };
    await assert.rejects(
      provider({ hostedZoneId: "/hostedzone/ZOTHER" }).present(rec("v1")),
      /^WileError: hosted zone ZOTHER is example\.org\., which does not hold _acme-challenge\.www\.example\.com\.$/,
    );
    assert.deepEqual(
      fake.requests.map((r) => r.url),
      ["/2013-04-01/hostedzone/ZOTHER"],
    );
  });

  test("two public zones of one name: refused, naming both and AWS_HOSTED_ZONE_ID", async () => {
    fake.route = (req, res) => {
      const u = new URL(req.url, fake.base);
      const dns = u.searchParams.get("dnsname");
      if (dns === "example.com.")
        return reply(
          res,
          200,
          `<ListHostedZonesByNameResponse ${NS}><HostedZones>${zone("ZA", "example.com.")}${zone("ZB", "example.com.")}</HostedZones><IsTruncated>false</IsTruncated></ListHostedZonesByNameResponse>`,
        );
      return reply(
        res,
        200,
        `<ListHostedZonesByNameResponse ${NS}><HostedZones/><IsTruncated>false</IsTruncated></ListHostedZonesByNameResponse>`,
      );
    };
    await assert.rejects(provider().present(rec("v1")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(e.message, /2 public hosted zones named example\.com\. \(ZA, ZB\)/);
      assert.match(e.hint ?? "", /AWS_HOSTED_ZONE_ID/);
      return true;
    });
  });

  test("an error answer: Route 53's code and message, the credentials hint, no secret", async () => {
    fake.route = (_req, res) =>
      reply(
        res,
        403,
        `<ErrorResponse ${NS}><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>x</RequestId></ErrorResponse>`,
      );
    await assert.rejects(provider().present(rec("v1")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.equal(
        e.message,
        "Route 53 refused to list hosted zones (HTTP 403): InvalidClientTokenId: The security token included in the request is invalid.",
      );
      assert.match(e.hint ?? "", /^Check the access key id \(AWS_ACCESS_KEY_ID\)/);
      assert.ok(!`${e.message}${e.hint}`.includes("secret-key-value"));
      return true;
    });
  });

  test("Throttling and PriorRequestNotComplete: asked again, signed again, 3 times in all", async () => {
    const throttled = (code: string) =>
      `<ErrorResponse ${NS}><Error><Type>Sender</Type><Code>${code}</Code><Message>Rate exceeded</Message></Error></ErrorResponse>`;
    let calls = 0;
    fake.requests.length = 0;
    fake.route = (req, res) => {
      calls++;
      if (calls === 1) return reply(res, 400, throttled("Throttling"));
      if (calls === 2) return reply(res, 400, throttled("PriorRequestNotComplete"));
      if (req.url.includes("hostedzonesbyname"))
        return reply(
          res,
          200,
          `<ListHostedZonesByNameResponse ${NS}><HostedZones/><IsTruncated>false</IsTruncated></ListHostedZonesByNameResponse>`,
        );
      reply(res, 404);
    };
    // The first name's lookup needed three tries; then every name is tried once; no zone at all.
    await assert.rejects(provider().present(rec("v1")), /no public hosted zone holding/);
    assert.equal(fake.requests[0]?.url, fake.requests[2]?.url);
    assert.equal(fake.requests.length, 3 + 3);
    for (const r of fake.requests.slice(0, 3))
      assert.match(String(r.headers.authorization), /^AWS4-HMAC-SHA256 /);
    fake.route = (_req, res) => reply(res, 400, throttled("Throttling"));
    fake.requests.length = 0;
    await assert.rejects(provider().present(rec("v1")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(e.message, /\(HTTP 400\): Throttling: Rate exceeded$/);
      assert.match(e.hint ?? "", /run again in a minute/);
      return true;
    });
    assert.equal(fake.requests.length, 3, "gave up after 3 tries");
  });

  test("GetChange: polled while PENDING; bounded; an unknown status is an error", async () => {
    let polls = 0;
    let status = "PENDING";
    const client: Route53Client = {
      call: async (_m, path) => {
        assert.equal(path, "/2013-04-01/change/C9");
        polls++;
        return parseXml(
          `<GetChangeResponse><ChangeInfo><Id>/change/C9</Id><Status>${polls >= 3 ? status : "PENDING"}</Status></ChangeInfo></GetChangeResponse>`,
        );
      },
    };
    status = "INSYNC";
    await waitInsync(client, "/change/C9", "add TXT", 10_000);
    assert.equal(polls, 3);
    polls = 0;
    status = "PENDING";
    const started = Date.now();
    await assert.rejects(
      waitInsync(client, "/change/C9", "add TXT v", 600),
      /did not apply the change to add TXT v within 1 s \(change C9 is still PENDING\)/,
    );
    assert.ok(Date.now() - started < 1500, "gave up at the bound");
    polls = 0;
    status = "WEIRD";
    await assert.rejects(waitInsync(client, "C9", "x", 10_000), /unknown status "WEIRD"/);
  });
});
