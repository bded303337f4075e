//! Checking AWS Signature Version 4 on requests to the AWS-compatible API: the canonical
//! request, the string to sign and the derived key, as the AWS SDKs and CLI compute them.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How far a request's `X-Amz-Date` may be from the server's clock, as on AWS.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The headers every signature must cover, as AWS spells them in its error: without `Host` or
/// `X-Amz-Date` a captured request could be replayed elsewhere or later; without
/// `X-Amz-Target`, replayed as another action (the body and path alone do not name it). The
/// AWS CLI, boto3 and the JavaScript SDK sign all three, and `Content-Type` besides.
pub const REQUIRED_SIGNED_HEADERS: [&str; 3] = ["Host", "X-Amz-Date", "X-Amz-Target"];

/// A request as the signature covers it.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Header names and values as received.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `yyyymmdd/region/service/aws4_request`.
    pub scope: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    /// Parses the header; `None` when it is not a SigV4 authorization.
    pub fn parse(header: &str) -> Option<Authorization> {
        let rest = header.strip_prefix("AWS4-HMAC-SHA256")?.trim();
        let mut credential = None;
        let mut signed = None;
        let mut signature = None;
        for part in rest.split(',') {
            let (key, value) = part.trim().split_once('=')?;
            match key {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
        let (access_key_id, scope) = credential?.split_once('/')?;
        let parts: Vec<&str> = scope.split('/').collect();
        let [date, region, service, "aws4_request"] = parts.as_slice() else {
            return None;
        };
        Some(Authorization {
            access_key_id: access_key_id.to_string(),
            scope: scope.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers: signed?.split(';').map(str::to_string).collect(),
            signature: signature?.to_string(),
        })
    }
}

impl Authorization {
    /// The first of [`REQUIRED_SIGNED_HEADERS`] that `SignedHeaders` leaves out.
    pub fn unsigned_required_header(&self) -> Option<&'static str> {
        REQUIRED_SIGNED_HEADERS.into_iter().find(|required| {
            !self
                .signed_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(required))
        })
    }
}

/// What AWS answers (`InvalidSignatureException`) when a required header is not signed.
pub fn unsigned_header_message(header: &str) -> String {
    match header {
        "Host" => {
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_string()
        }
        other => format!("'{other}' must be a 'SignedHeader' in the AWS Authorization."),
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` left as is, as SigV4 does).
fn uri_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digit = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        if bytes[i] == b'%' {
            if let (Some(high), Some(low)) = (digit(i + 1), digit(i + 2)) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical URI: each path segment URI-encoded twice, as for every service but S3.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    path.split('/')
        .map(|segment| uri_encode(&uri_encode(&uri_decode(segment))))
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&uri_decode(k)), uri_encode(&uri_decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request for `auth`'s signed headers, or `None` if one is missing.
fn canonical_request(request: &Signed<'_>, auth: &Authorization) -> Option<String> {
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return None;
        }
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Some(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query),
        headers,
        auth.signed_headers.join(";"),
        sha256_hex(request.body),
    ))
}

/// The signature `secret` gives the request at `amz_date` (`yyyymmddThhmmssZ`).
pub fn signature(
    request: &Signed<'_>,
    auth: &Authorization,
    amz_date: &str,
    secret: &str,
) -> Option<String> {
    let canonical = canonical_request(request, auth)?;
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        auth.scope,
        sha256_hex(canonical.as_bytes())
    );
    let key = [
        auth.date.as_str(),
        auth.region.as_str(),
        auth.service.as_str(),
        "aws4_request",
    ]
    .iter()
    .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
        hmac(&key, part)
    });
    Some(hex::encode(hmac(&key, &to_sign)))
}

/// Compares two signatures in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example: the IAM ListUsers request signed with the documentation's
    /// example key.
    #[test]
    fn matches_the_documented_example() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let auth = Authorization::parse(header).expect("parses");
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(auth.service, "iam");
        let request = Signed {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                ),
                ("Host".into(), "iam.amazonaws.com".into()),
                ("X-Amz-Date".into(), "20150830T123600Z".into()),
            ],
            body: b"",
        };
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let computed = signature(&request, &auth, "20150830T123600Z", secret);
        assert_eq!(computed.as_deref(), Some(auth.signature.as_str()));
        let wrong = signature(&request, &auth, "20150830T123600Z", "another secret");
        assert_ne!(wrong.as_deref(), Some(auth.signature.as_str()));
    }

    #[test]
    fn signatures_must_cover_host_date_and_target() {
        let signing = |headers: &str| {
            Authorization::parse(&format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/states/aws4_request, SignedHeaders={headers}, Signature=00"
            ))
            .expect("parses")
            .unsigned_required_header()
        };
        assert_eq!(signing("content-type;host;x-amz-date;x-amz-target"), None);
        assert_eq!(signing("Host;X-Amz-Date;X-Amz-Target"), None);
        assert_eq!(signing("host;x-amz-date"), Some("X-Amz-Target"));
        assert_eq!(signing("x-amz-date;x-amz-target"), Some("Host"));
        assert_eq!(signing("host;x-amz-target"), Some("X-Amz-Date"));
        assert_eq!(
            unsigned_header_message("X-Amz-Target"),
            "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."
        );
    }

    #[test]
    fn malformed_headers_are_not_authorizations() {
        for header in [
            "Bearer abc",
            "AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
        ] {
            assert_eq!(Authorization::parse(header), None, "{header}");
        }
        assert!(same("abcd", "abcd"));
        assert!(!same("abcd", "abce"));
        assert!(!same("abc", "abcd"));
    }
}
