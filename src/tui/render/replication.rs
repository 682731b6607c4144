//! The replication pane, shown while a subscription of the run exists: per
//! subscription the slot's lag in bytes and seconds, its WAL headroom and the
//! apply/sync error counts on one line, then each table's state with the rows
//! its initial copy has reached (tables not ready first). Any error turns the
//! frame and the counts red and says so in words (for `NO_COLOR`), with the
//! error as the watch described it. It takes the bottom of the detail pane.

use super::{fmt, pane_block, plain, put_lines, two_sided, Areas};
use crate::tui::app::App;
use ferry_core::monitor::subscription::{ReplicationWatch, TableState};
use ferry_core::units;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

/// Table rows shown per subscription before "… N more".
const MAX_TABLES: usize = 6;
/// Rows the error of a subscription may wrap over.
const ERROR_ROWS: usize = 3;

pub struct ReplicationPane<'a> {
    app: &'a App,
}

impl<'a> ReplicationPane<'a> {
    pub fn new(app: &'a App) -> Self {
        ReplicationPane { app }
    }
}

/// The subscriptions to show: those that exist on the target.
fn shown(app: &App) -> impl Iterator<Item = &ReplicationWatch> {
    app.snap.monitors.replication.iter().filter(|w| w.exists)
}

/// Rows one subscription wants inside the frame.
fn rows_of(w: &ReplicationWatch, several: bool) -> u16 {
    let tables = w.tables.len().min(MAX_TABLES + 1);
    let error = if w.error.is_some() { ERROR_ROWS } else { 0 };
    (2 + usize::from(several) + error + tables.max(1)) as u16
}

/// How tall the pane wants to be (frame included); 0 when no subscription exists.
pub fn wanted(app: &App) -> u16 {
    let several = shown(app).count() > 1;
    let inner: u16 = shown(app).map(|w| rows_of(w, several)).sum();
    if inner == 0 {
        0
    } else {
        (inner + 2).min(14)
    }
}

/// Take the bottom of the detail pane for `rows` rows, leaving the detail at
/// least 6 (and the pane at least 4, else it is not shown).
pub fn place(a: &mut Areas, rows: u16) {
    let Some(d) = a.detail else {
        return;
    };
    if rows == 0 || a.runbook.is_none() {
        return; // log view and the zoomed detail keep the whole screen
    }
    let h = rows.min(d.height.saturating_sub(6));
    if h < 4 {
        return;
    }
    a.detail = Some(Rect {
        height: d.height - h,
        ..d
    });
    a.replication = Some(Rect {
        y: d.y + d.height - h,
        height: h,
        ..d
    });
}

fn state_style(app: &App, s: TableState) -> Style {
    let t = app.theme;
    match s {
        TableState::Ready => t.ok(),
        TableState::Unknown => t.warn(),
        TableState::Init => t.dim(),
        _ => t.active(),
    }
}

/// Two lines: `lag 1.2 MiB · 0.4s   WAL headroom 3.0 GiB`, then
/// `errors apply 0 · sync 0` with `streaming` or `DISABLED` on the right.
fn summary(app: &App, w: &ReplicationWatch, width: usize) -> [Line<'static>; 2] {
    let t = app.theme;
    let lag = match (w.lag_bytes, w.lag_secs) {
        (Some(b), Some(s)) => format!("lag {} · {}", units::bytes(b), fmt::lag(s)),
        (Some(b), None) => format!("lag {}", units::bytes(b)),
        _ => "lag …".into(),
    };
    let room = match &w.headroom {
        Some(h) => {
            let size = match h.safe_bytes {
                Some(b) => units::bytes(b.max(0) as u64),
                None => "unlimited".into(),
            };
            match h.wal_status.as_deref() {
                Some("reserved") | None => format!("WAL headroom {size}"),
                Some(other) => format!("WAL headroom {size} ({other})"),
            }
        }
        None => "no slot".into(),
    };
    let room_style = match w.headroom.as_ref().and_then(|h| h.wal_status.as_deref()) {
        Some("lost") => t.bad(),
        Some("unreserved") => t.warn(),
        None if w.headroom.is_none() => t.warn(),
        _ => t.text(),
    };
    let count = |n: Option<i64>| n.map_or("?".to_string(), |n| n.to_string());
    let errors = format!(
        "errors apply {} · sync {}",
        count(w.apply_errors),
        count(w.sync_errors)
    );
    let err_style = if w.in_error() { t.bad() } else { t.dim() };
    let state = if w.enabled {
        ("streaming".to_string(), t.ok())
    } else {
        ("DISABLED".to_string(), t.bad())
    };
    [
        two_sided(
            vec![(lag, t.text())],
            vec![(room, room_style)],
            width,
            width / 2,
        ),
        two_sided(vec![(errors, err_style)], vec![state], width, width),
    ]
}

fn table_line(
    app: &App,
    tw: &ferry_core::monitor::subscription::TableWatch,
    name_w: usize,
) -> Line<'static> {
    let rows = tw
        .rows
        .map(|n| format!("{} rows", fmt::thousands(n)))
        .unwrap_or_default();
    let state_w = 12;
    Line::from(vec![
        Span::raw(fmt::pad(&fmt::truncate(&tw.table, name_w), name_w)),
        Span::raw(" "),
        Span::styled(
            fmt::pad(tw.state.word(), state_w),
            state_style(app, tw.state),
        ),
        Span::raw(" "),
        Span::styled(rows, app.theme.dim()),
    ])
}

/// The lines of one subscription.
fn lines(app: &App, w: &ReplicationWatch, several: bool, width: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let mut out = Vec::new();
    if several {
        out.push(plain(&w.name, width, t.bold()));
    }
    out.extend(summary(app, w, width));
    if let Some(e) = &w.error {
        let st = if w.in_error() { t.bad() } else { t.warn() };
        let mut wrapped = fmt::wrap(e, width);
        if wrapped.len() > ERROR_ROWS {
            wrapped.truncate(ERROR_ROWS);
            if let Some(last) = wrapped.last_mut() {
                *last = fmt::truncate(&format!("{last} …"), width);
            }
        }
        out.extend(wrapped.iter().map(|l| plain(l, width, st)));
    }
    if w.tables.is_empty() {
        out.push(plain("no table in the subscription yet", width, t.dim()));
    }
    // the tables still syncing are the ones to watch
    let mut tables: Vec<_> = w.tables.iter().collect();
    tables.sort_by_key(|x| (x.state == TableState::Ready, x.table.clone()));
    let more = tables.len().saturating_sub(MAX_TABLES);
    let keep = if more > 1 { MAX_TABLES } else { tables.len() };
    // names as wide as the longest, leaving room for the state and the rows
    let name_w = tables
        .iter()
        .map(|x| fmt::width(&x.table))
        .max()
        .unwrap_or(0)
        .min(width.saturating_sub(28))
        .max(4);
    out.extend(tables.iter().take(keep).map(|x| table_line(app, x, name_w)));
    if tables.len() > keep {
        let ready = tables[keep..]
            .iter()
            .filter(|x| x.state == TableState::Ready)
            .count();
        out.push(plain(
            &format!("… {} more ({ready} ready)", tables.len() - keep),
            width,
            t.dim(),
        ));
    }
    out
}

impl Widget for &ReplicationPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let t = app.theme;
        let watches: Vec<&ReplicationWatch> = shown(app).collect();
        let red = watches.iter().any(|w| w.in_error());
        let title = match watches.as_slice() {
            [w] => {
                let ready = w.count(TableState::Ready);
                format!(
                    " Replication{} · {} · {ready}/{} ready · {} → {} ",
                    if red { " ERROR" } else { "" },
                    w.name,
                    w.tables.len(),
                    w.source,
                    w.target,
                )
            }
            many => format!(
                " Replication{} · {} subscriptions ",
                if red { " ERROR" } else { "" },
                many.len(),
            ),
        };
        let block = pane_block(
            Line::from(Span::styled(title, if red { t.bad() } else { t.text() })),
            false,
            t,
        );
        let block = if red {
            block.border_style(t.bad())
        } else {
            block
        };
        let inner = block.inner(area);
        block.render(area, buf);
        let width = inner.width as usize;
        if width == 0 || inner.height == 0 {
            return;
        }
        let several = watches.len() > 1;
        let mut all: Vec<Line<'static>> = Vec::new();
        for w in &watches {
            all.extend(lines(app, w, several, width));
        }
        // a stale watch says so on its last row
        let stale = watches
            .iter()
            .find_map(|w| w.stale.as_ref().map(|s| (w, s)));
        if let Some((w, s)) = stale {
            let age = s
                .last_good
                .map(|g| format!("stale {}", fmt::dur((app.now - g).num_seconds())))
                .unwrap_or_else(|| "stale".into());
            let line = plain(&format!("{} {age}: {}", w.name, s.error), width, t.warn());
            let h = inner.height as usize;
            all.truncate(h.saturating_sub(1));
            all.push(line);
        }
        put_lines(&all, inner, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pane_takes_the_bottom_of_the_detail_only_when_the_detail_keeps_room() {
        let mut a = Areas {
            runbook: Some(Rect::new(0, 0, 30, 22)),
            detail: Some(Rect::new(30, 0, 50, 15)),
            ..Areas::default()
        };
        place(&mut a, 6);
        assert_eq!(a.detail, Some(Rect::new(30, 0, 50, 9)));
        assert_eq!(a.replication, Some(Rect::new(30, 9, 50, 6)));
        let mut small = Areas {
            runbook: Some(Rect::new(0, 0, 30, 8)),
            detail: Some(Rect::new(30, 0, 50, 8)),
            ..Areas::default()
        };
        place(&mut small, 6);
        assert_eq!(small.replication, None, "the detail keeps its 6 rows first");
        let mut zoomed = Areas {
            detail: Some(Rect::new(0, 0, 80, 22)),
            ..Areas::default()
        };
        place(&mut zoomed, 6);
        assert_eq!(zoomed.replication, None);
    }
}
