//! AWS: one shared SDK configuration built from the runbook's `[aws]` table
//! (region, profile, endpoint_url) and the standard environment/credential
//! chain, the RDS actions of `rds` steps ([`rds`]), CloudWatch series for the
//! monitors ([`cloudwatch`]) and RDS IAM auth tokens ([`iam`]). Errors are
//! classified so throttling, expired credentials and an unreachable endpoint
//! each get a clear message (and the right exit code upstream).

pub mod cloudwatch;
pub mod iam;
pub mod rds;

use crate::runbook::AwsSettings;
use aws_config::{BehaviorVersion, Region, SdkConfig};

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
    #[error("AWS error: {0}")]
    Other(String),
}

impl AwsError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AwsError::Throttled(_) | AwsError::Unreachable(_))
    }
}

/// Classify any SDK error by its code and kind.
pub fn classify<E, R>(e: &aws_sdk_rds::error::SdkError<E, R>) -> AwsError
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    use aws_sdk_rds::error::SdkError;
    match e {
        SdkError::DispatchFailure(d) => {
            let text = format!("{:?}", d.as_connector_error().map(|c| c.to_string()));
            if d.is_io() || d.is_timeout() {
                AwsError::Unreachable(text)
            } else if d.is_user() {
                AwsError::Credentials(text)
            } else {
                AwsError::Unreachable(text)
            }
        }
        SdkError::TimeoutError(_) => AwsError::Unreachable("timed out".into()),
        SdkError::ConstructionFailure(c) => {
            let text = format!("{c:?}");
            if text.contains("credentials") || text.contains("Credentials") {
                AwsError::Credentials("no credentials could be loaded".into())
            } else {
                AwsError::Other(text)
            }
        }
        SdkError::ServiceError(s) => {
            let err = s.err();
            let code = err.code().unwrap_or("Unknown").to_string();
            let msg = err.message().unwrap_or("").to_string();
            let text = if msg.is_empty() {
                code.clone()
            } else {
                format!("{code}: {msg}")
            };
            classify_code(&code, text)
        }
        other => AwsError::Other(format!("{other:?}")),
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
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
            AwsError::Denied(text)
        }
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

/// Clients shared by every AWS user of one run.
#[derive(Clone, Debug)]
pub struct Clients {
    pub config: SdkConfig,
    pub rds: aws_sdk_rds::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    pub fn new(config: SdkConfig) -> Self {
        Clients {
            rds: aws_sdk_rds::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            config,
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
            AwsError::Other(_) => "other",
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
}
