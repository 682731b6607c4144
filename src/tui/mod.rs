//! The full-screen console (issue 4). Not built yet.
