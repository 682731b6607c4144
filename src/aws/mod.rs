//! AWS: the shared SDK configuration and the `rds` step actions (issue 7).
//! Nothing here yet: `ferry check` lists the AWS calls a runbook would make
//! from the runbook model alone.
