//! Colours and emphasis for the console. With `NO_COLOR` set (https://no-color.org)
//! no colour is ever used: only bold, reverse and dim, and step states stay
//! distinguishable by their glyphs.

use ferry_core::vocab::StepState;
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub const COLOR: Theme = Theme { color: true };
    pub const MONO: Theme = Theme { color: false };

    /// Colour unless `NO_COLOR` is set to a non-empty value.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn text(&self) -> Style {
        Style::new()
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn active(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn awaiting(&self) -> Style {
        self.fg(Color::Magenta).add_modifier(Modifier::BOLD)
    }

    /// Secondary text: labels, rollback-only steps.
    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn bold(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn border(&self, focused: bool) -> Style {
        match (focused, self.color) {
            (true, true) => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            (true, false) => Style::new().add_modifier(Modifier::BOLD),
            (false, _) => self.dim(),
        }
    }

    pub fn state(&self, s: StepState) -> Style {
        match s {
            StepState::Succeeded => self.ok(),
            StepState::Failed => self.bad(),
            StepState::Interrupted | StepState::RetryWait => self.warn(),
            StepState::Running | StepState::RollingBack => self.active(),
            StepState::AwaitingConfirmation => self.awaiting(),
            StepState::Skipped | StepState::RolledBack => self.warn(),
            StepState::Pending | StepState::Ready => self.text(),
        }
    }

    /// A value against its warn/max thresholds.
    pub fn level(&self, v: f64, warn: Option<f64>, max: Option<f64>) -> Style {
        if max.is_some_and(|m| v >= m) {
            self.bad()
        } else if warn.is_some_and(|w| v >= w) {
            self.warn()
        } else {
            self.ok()
        }
    }
}
