//! Signed requests to `/sfn` for any action, as the AWS SDKs send them.

use super::TestApp;
use orderflow::sfn::sigv4::{signature, Authorization, Signed};
use serde_json::Value;

/// An access key of `username`: `(id, secret)`.
pub async fn access_key(app: &TestApp, username: &str) -> (String, String) {
    orderflow::auth::create_access_key(app.state.db(), username)
        .await
        .expect("access key created")
}

/// Calls `AWSStepFunctions.<action>` with `body`, signed with `key`; returns the status and
/// the JSON answer.
pub async fn call(
    app: &TestApp,
    key: &(String, String),
    action: &str,
    body: Value,
) -> (u16, Value) {
    let now = time::OffsetDateTime::now_utc();
    let amz_date = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("date formats");
    let target = format!("AWSStepFunctions.{action}");
    let body = body.to_string();
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/states/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0",
        key.0,
        &amz_date[..8]
    );
    let auth = Authorization::parse(&header).expect("header parses");
    let request = Signed {
        method: "POST",
        path: "/sfn",
        query: "",
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.0".into()),
            ("host".into(), app.addr.to_string()),
            ("x-amz-date".into(), amz_date.clone()),
            ("x-amz-target".into(), target.clone()),
        ],
        body: body.as_bytes(),
    };
    let sig = signature(&request, &auth, &amz_date, &key.1).expect("signs");
    let res = app
        .client
        .post(app.url("/sfn"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target)
        .header("x-amz-date", amz_date)
        .header(
            "authorization",
            header.replace("Signature=0", &format!("Signature={sig}")),
        )
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}
