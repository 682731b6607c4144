//! The copy engine: chunked, parallel, COPY-streamed, resumable (issue 5).
//! Not built yet.
