//! RDS IAM authentication tokens: generated with the SDK's signer for the
//! instance's endpoint, valid for 15 minutes, never logged.

use super::{rds, AwsError, Clients};
use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config};

/// A token and the endpoint it is for.
pub struct Token {
    pub host: String,
    pub port: u16,
    pub token: String,
}

/// Look up the instance's endpoint and sign a token for `user`.
pub async fn token(clients: &Clients, instance: &str, user: &str) -> Result<Token, AwsError> {
    let state = rds::describe(&clients.rds, instance).await?;
    let host = state.endpoint.ok_or_else(|| {
        AwsError::Other(format!(
            "RDS instance `{instance}` has no endpoint yet (status `{}`)",
            state.status
        ))
    })?;
    let port = state.port.unwrap_or(5432);
    let region = clients
        .config
        .region()
        .cloned()
        .ok_or_else(|| AwsError::Credentials("no AWS region configured for IAM auth".into()))?;
    let config = Config::builder()
        .hostname(&host)
        .port(port as u64)
        .username(user)
        .region(region)
        .build()
        .map_err(|e| AwsError::Other(format!("cannot configure the IAM auth token: {e}")))?;
    let token = AuthTokenGenerator::new(config)
        .auth_token(&clients.config)
        .await
        .map_err(|e| AwsError::Credentials(format!("cannot sign an IAM auth token: {e}")))?;
    Ok(Token {
        host,
        port: u16::try_from(port).unwrap_or(5432),
        token: token.as_str().to_string(),
    })
}
