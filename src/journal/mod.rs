//! The append-only, hash-chained JSON-lines journal (issue 3). Not built yet.
