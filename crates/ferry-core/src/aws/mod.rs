//! AWS: one shared SDK configuration built from the runbook's `[aws]` table
//! (region, profile, endpoint_url) and the standard environment/credential
//! chain, the RDS actions of `rds` steps ([`rds`]), the DMS task actions of
//! `dms` steps ([`dms`]), CloudWatch series for the
//! monitors ([`cloudwatch`]) and RDS IAM auth tokens ([`iam`]). Errors are
//! classified so throttling, expired credentials and an unreachable endpoint
//! each get a clear message (and the right exit code upstream).

pub mod cloudwatch;
pub mod dms;
pub mod iam;
pub mod rds;

use crate::runbook::AwsSettings;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::config::http::HttpResponse;

/// What went wrong talking to AWS, classified for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error("AWS throttled the request ({0}); backing off")]
    Throttled(String),
    #[error("AWS credentials are missing, invalid or expired ({0}); refresh them (aws sso login, or the profile) and retry")]
    Credentials(String),
    #[error("AWS permission denied ({0})")]
    Denied(String),
    #[error("cannot reach the AWS endpoint ({0})")]
    Unreachable(String),
    #[error("{0}")]
    NotFound(String),
    /// ferry refused to make the call (it would do harm or cannot succeed).
    #[error("{0}")]
    Refused(String),
    #[error("AWS error: {0}")]
    Other(String),
}

impl AwsError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AwsError::Throttled(_) | AwsError::Unreachable(_))
    }
}

/// The messages of an error and its sources, joined with ": ", skipping the
/// SDK's generic wrappers ("dispatch failure", "io error", "other") and any
/// message that embeds a whole request (the endpoint resolver does that).
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        let generic = matches!(
            text.as_str(),
            "dispatch failure"
                | "io error"
                | "other"
                | "timeout"
                | "user error"
                | "service error"
                | "unhandled error"
                | "response error"
                | "failed to construct request"
        );
        let noisy = text.contains("Request {");
        if !generic && !noisy && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    let text = if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    };
    if text.contains("no credentials found in chain") {
        // the SDK lists every provider it tried, one per line
        return "no credentials found (tried the environment, the profile, web identity, ECS and instance metadata)".into();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Classify any SDK error by its code and kind, with a message an operator
/// can act on (never the SDK's debug dump).
pub fn classify<E>(e: &aws_sdk_rds::error::SdkError<E, HttpResponse>) -> AwsError
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_rds::error::SdkError;
    let text = chain_text(e);
    let lower = text.to_lowercase();
    match e {
        SdkError::DispatchFailure(d) => {
            if d.is_io() || d.is_timeout() {
                AwsError::Unreachable(text)
            } else if lower.contains("credential") {
                AwsError::Credentials(text)
            } else if lower.contains("endpoint") {
                AwsError::Other(format!("the AWS endpoint URL is not usable: {text}"))
            } else {
                AwsError::Unreachable(text)
            }
        }
        SdkError::TimeoutError(_) => {
            AwsError::Unreachable("no answer from the AWS endpoint in time".into())
        }
        SdkError::ConstructionFailure(_) => {
            if lower.contains("region") {
                AwsError::Other(format!(
                    "no usable AWS region ({text}): set `region` in [aws] or AWS_REGION"
                ))
            } else if lower.contains("credential") {
                AwsError::Credentials(text)
            } else {
                AwsError::Other(text)
            }
        }
        SdkError::ServiceError(s) => {
            let err = s.err();
            let status = s.raw().status().as_u16();
            let Some(code) = err.code() else {
                // no AWS error code: whatever answered is not the AWS API
                return AwsError::Unreachable(format!(
                    "the endpoint answered HTTP {status} without an AWS error ({text}); is endpoint_url right?"
                ));
            };
            let msg = err.message().unwrap_or("");
            let text = if msg.is_empty() {
                code.to_string()
            } else {
                format!("{code}: {msg}")
            };
            classify_code(code, text)
        }
        _ => AwsError::Other(text),
    }
}

/// Classify a service error by its AWS error code.
pub fn classify_code(code: &str, text: String) -> AwsError {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException" => AwsError::Throttled(text),
        "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidSignatureException" => AwsError::Credentials(text),
        "AccessDenied"
        | "AccessDeniedException"
        | "AccessDeniedFault"
        | "UnauthorizedOperation" => AwsError::Denied(text),
        c if c.ends_with("NotFound") || c.ends_with("NotFoundFault") => AwsError::NotFound(text),
        _ => AwsError::Other(text),
    }
}

/// The shared SDK configuration. `AWS_ENDPOINT_URL` works as usual when the
/// runbook sets no `endpoint_url`.
pub async fn sdk_config(settings: Option<&AwsSettings>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(s) = settings {
        if let Some(r) = &s.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &s.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &s.endpoint_url {
            loader = loader.endpoint_url(e);
        }
    }
    loader.load().await
}

/// `[aws]` as the run will use it: `${env:X}` expanded (a variable that is
/// not set is an error naming the key, never a literal `${env:X}` endpoint) and
/// the endpoint URL checked, whether it comes from `endpoint_url` or from
/// `AWS_ENDPOINT_URL`.
pub fn resolve_settings(
    settings: Option<&AwsSettings>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AwsSettings, String> {
    let mut problems = Vec::new();
    let mut expand = |key: &str, v: &Option<String>| -> Option<String> {
        let t = v.as_ref()?;
        match crate::runbook::expand::expand_env(t, env) {
            Ok(x) => Some(x),
            Err(missing) => {
                problems.push(format!(
                    "[aws] {key} needs the environment variable(s) {}, which are not set",
                    missing.join(", ")
                ));
                None
            }
        }
    };
    let out = match settings {
        Some(a) => AwsSettings {
            region: expand("region", &a.region),
            profile: expand("profile", &a.profile),
            endpoint_url: expand("endpoint_url", &a.endpoint_url),
        },
        None => AwsSettings {
            region: None,
            profile: None,
            endpoint_url: None,
        },
    };
    let endpoint = match &out.endpoint_url {
        Some(e) => Some(("[aws] endpoint_url", e.clone())),
        None => env("AWS_ENDPOINT_URL")
            .filter(|e| !e.is_empty())
            .map(|e| ("AWS_ENDPOINT_URL", e)),
    };
    if let Some((key, e)) = endpoint {
        let host = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .map(|rest| rest.split(['/', '?']).next().unwrap_or(""));
        if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
            problems.push(format!(
                "{key} `{e}` is not a URL: expected http://HOST[:PORT] or https://HOST[:PORT]"
            ));
        }
    }
    if out.region.as_deref() == Some("") {
        problems.push("[aws] region is empty".to_string());
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

/// The clients of a run or of `ferry check --aws`: settings resolved
/// ([`resolve_settings`]) and a region known, or an error saying what to fix.
pub async fn connect(
    settings: Option<&AwsSettings>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Clients, String> {
    let resolved = resolve_settings(settings, env)?;
    let config = sdk_config(Some(&resolved)).await;
    if config.region().is_none_or(|r| r.as_ref().is_empty()) {
        return Err(
            "no AWS region: set `region` in [aws], AWS_REGION, or the profile's region".into(),
        );
    }
    Ok(Clients::new(config))
}

/// Before a run starts: can the endpoint be reached at all? One cheap call to a
/// service the runbook uses; only "unreachable" is an error here (permissions
/// and missing instances are the steps' business, with their own messages).
pub async fn preflight(clients: &Clients, rds: bool) -> Result<(), AwsError> {
    let result = if rds {
        clients
            .rds
            .describe_db_instances()
            .max_records(20)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    } else {
        clients
            .cloudwatch
            .list_metrics()
            .namespace("AWS/RDS")
            .metric_name("ReplicaLag")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    };
    match result {
        Err(e @ AwsError::Unreachable(_)) => Err(e),
        _ => Ok(()),
    }
}

/// Clients shared by every AWS user of one run.
#[derive(Clone, Debug)]
pub struct Clients {
    pub config: SdkConfig,
    pub rds: aws_sdk_rds::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dms: aws_sdk_databasemigration::Client,
}

impl Clients {
    pub fn new(config: SdkConfig) -> Self {
        Clients {
            rds: aws_sdk_rds::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            dms: aws_sdk_databasemigration::Client::new(&config),
            config,
        }
    }

    /// Where the calls go, for messages: the endpoint URL, or the region.
    pub fn endpoint(&self) -> String {
        match (self.config.endpoint_url(), self.config.region()) {
            (Some(e), _) => e.to_string(),
            (None, Some(r)) => format!("AWS region {r}"),
            (None, None) => "AWS".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case("Throttling", "throttled")]
    #[case("RequestLimitExceeded", "throttled")]
    #[case("ExpiredToken", "credentials")]
    #[case("InvalidClientTokenId", "credentials")]
    #[case("AccessDenied", "denied")]
    #[case("DBInstanceNotFound", "not found")]
    #[case("DBSnapshotNotFoundFault", "not found")]
    #[case("InvalidDBInstanceState", "other")]
    fn service_errors_are_classified(#[case] code: &str, #[case] kind: &str) {
        let got = match classify_code(code, code.to_string()) {
            AwsError::Throttled(_) => "throttled",
            AwsError::Credentials(_) => "credentials",
            AwsError::Denied(_) => "denied",
            AwsError::NotFound(_) => "not found",
            AwsError::Unreachable(_) => "unreachable",
            AwsError::Refused(_) | AwsError::Other(_) => "other",
        };
        assert_eq!(got, kind);
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = classify_code(
            "ExpiredToken",
            "ExpiredToken: the security token expired".into(),
        );
        assert!(e.to_string().contains("refresh them"), "{e}");
        assert!(classify_code("Throttling", "x".into()).is_retryable());
        assert!(!classify_code("AccessDenied", "x".into()).is_retryable());
    }

    fn settings(endpoint: &str) -> AwsSettings {
        AwsSettings {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint_url: Some(endpoint.into()),
        }
    }

    #[test]
    fn an_unset_variable_in_aws_is_an_error_not_a_literal_endpoint() {
        let env = |k: &str| (k == "MOTO").then(|| "http://127.0.0.1:5000".to_string());
        let ok = resolve_settings(Some(&settings("${env:MOTO}")), &env).expect("resolves");
        assert_eq!(ok.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        let e = resolve_settings(Some(&settings("${env:NOPE}")), &env).unwrap_err();
        assert!(
            e.contains("[aws] endpoint_url") && e.contains("NOPE") && e.contains("not set"),
            "{e}"
        );
    }

    #[rstest::rstest]
    #[case("localhost:5000")]
    #[case("http://")]
    #[case("ftp://host")]
    #[case("http://a b")]
    fn an_endpoint_that_is_not_a_url_is_refused(#[case] url: &str) {
        let none = |_: &str| None;
        let e = resolve_settings(Some(&settings(url)), &none).unwrap_err();
        assert!(e.contains("is not a URL") && e.contains(url), "{e}");
    }

    #[test]
    fn aws_endpoint_url_from_the_environment_is_checked_too() {
        let env = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "moto:5000".to_string());
        let e = resolve_settings(None, &env).unwrap_err();
        assert!(e.contains("AWS_ENDPOINT_URL `moto:5000`"), "{e}");
        let good = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "https://rds.local".to_string());
        assert!(resolve_settings(None, &good).is_ok());
    }
}
