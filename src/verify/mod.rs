//! The verification engine: schema, counts, checksums, samples (issue 6). Not built yet.
