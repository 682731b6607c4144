//! Post-run reports from a journal: Markdown, HTML, JSON (issue 9). Not built yet.
