//! Live monitors: replication lag, row counts, metrics (issue 7). Not built yet.
