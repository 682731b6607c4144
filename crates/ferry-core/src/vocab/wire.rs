//! The flat form events take in journals and on the attach socket, unchanged since
//! format 1 began, so every journal ever written still replays and its hash chain
//! (computed over the line's text) still verifies. [`super::Event`] converts to and
//! from it; nothing else uses it.

use super::{Actor, Decision, Event, EvidenceItem, Outcome};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum EventWire {
    Confirm {
        step: String,
        by: Actor,
        automatic: bool,
        typed: Option<String>,
        evidence: Vec<EvidenceItem>,
    },
    Skip {
        step: String,
        by: Actor,
        reason: String,
    },
    Retry {
        step: String,
        by: Actor,
    },
    Rollback {
        step: String,
        by: Actor,
        override_point_of_no_return: bool,
    },
    Abort {
        by: Actor,
        reason: String,
    },
    Approve {
        step: String,
        by: Actor,
        evidence_sha256: String,
    },
    Withdraw {
        step: String,
        by: Actor,
    },
    Started {
        step: String,
        attempt: u32,
    },
    Finished {
        step: String,
        attempt: u32,
        outcome: Outcome,
    },
    RetryDue {
        step: String,
    },
    RollbackFinished {
        step: String,
        outcome: Outcome,
    },
    Interrupted {
        steps: Vec<String>,
    },
}

impl From<EventWire> for Event {
    fn from(w: EventWire) -> Event {
        match w {
            EventWire::Confirm {
                step,
                by,
                automatic,
                typed,
                evidence,
            } => Event::decided(
                by,
                Decision::Confirm {
                    step,
                    automatic,
                    typed,
                    evidence,
                },
            ),
            EventWire::Skip { step, by, reason } => {
                Event::decided(by, Decision::Skip { step, reason })
            }
            EventWire::Retry { step, by } => Event::decided(by, Decision::Retry { step }),
            EventWire::Rollback {
                step,
                by,
                override_point_of_no_return,
            } => Event::decided(
                by,
                Decision::Rollback {
                    step,
                    override_point_of_no_return,
                },
            ),
            EventWire::Abort { by, reason } => Event::decided(by, Decision::Abort { reason }),
            EventWire::Approve {
                step,
                by,
                evidence_sha256,
            } => Event::decided(
                by,
                Decision::Approve {
                    step,
                    evidence_sha256,
                },
            ),
            EventWire::Withdraw { step, by } => Event::decided(by, Decision::Withdraw { step }),
            EventWire::Started { step, attempt } => Event::Started { step, attempt },
            EventWire::Finished {
                step,
                attempt,
                outcome,
            } => Event::Finished {
                step,
                attempt,
                outcome,
            },
            EventWire::RetryDue { step } => Event::RetryDue { step },
            EventWire::RollbackFinished { step, outcome } => {
                Event::RollbackFinished { step, outcome }
            }
            EventWire::Interrupted { steps } => Event::Interrupted { steps },
        }
    }
}

impl From<Event> for EventWire {
    fn from(e: Event) -> EventWire {
        match e {
            Event::Decided { by, decision } => match decision {
                Decision::Confirm {
                    step,
                    automatic,
                    typed,
                    evidence,
                } => EventWire::Confirm {
                    step,
                    by,
                    automatic,
                    typed,
                    evidence,
                },
                Decision::Skip { step, reason } => EventWire::Skip { step, by, reason },
                Decision::Retry { step } => EventWire::Retry { step, by },
                Decision::Rollback {
                    step,
                    override_point_of_no_return,
                } => EventWire::Rollback {
                    step,
                    by,
                    override_point_of_no_return,
                },
                Decision::Abort { reason } => EventWire::Abort { by, reason },
                Decision::Approve {
                    step,
                    evidence_sha256,
                } => EventWire::Approve {
                    step,
                    by,
                    evidence_sha256,
                },
                Decision::Withdraw { step } => EventWire::Withdraw { step, by },
            },
            Event::Started { step, attempt } => EventWire::Started { step, attempt },
            Event::Finished {
                step,
                attempt,
                outcome,
            } => EventWire::Finished {
                step,
                attempt,
                outcome,
            },
            Event::RetryDue { step } => EventWire::RetryDue { step },
            Event::RollbackFinished { step, outcome } => {
                EventWire::RollbackFinished { step, outcome }
            }
            Event::Interrupted { steps } => EventWire::Interrupted { steps },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines exactly as journals of format 1 hold them: each reads back and writes
    /// out byte for byte, so hash chains of old journals verify.
    #[test]
    fn every_event_keeps_its_journal_text() {
        let lines = [
            r#"{"type":"confirm","step":"copy","by":{"operator":"alice","host":"bastion"},"automatic":false,"typed":"copy","evidence":[{"label":"lag","value":"0s"}]}"#,
            r#"{"type":"skip","step":"a","by":{"operator":"bob","host":"h"},"reason":"done by hand"}"#,
            r#"{"type":"retry","step":"a","by":{"operator":"bob","host":"h"}}"#,
            r#"{"type":"rollback","step":"a","by":{"operator":"bob","host":"h"},"override_point_of_no_return":true}"#,
            r#"{"type":"abort","by":{"operator":"bob","host":"h"},"reason":"no"}"#,
            r#"{"type":"confirm","step":"go","by":{"operator":"Alice","host":"h","uid":1001,"login":"alice"},"automatic":false,"typed":"go","evidence":[]}"#,
            r#"{"type":"approve","step":"go","by":{"operator":"bob","host":"h","uid":1002,"login":"bob"},"evidence_sha256":"4f53"}"#,
            r#"{"type":"withdraw","step":"go","by":{"operator":"alice","host":"h","uid":1001,"login":"alice"}}"#,
            r#"{"type":"started","step":"a","attempt":2}"#,
            r#"{"type":"finished","step":"a","attempt":2,"outcome":{"outcome":"timed_out","after_secs":0,"after_ms":500}}"#,
            r#"{"type":"retry_due","step":"a"}"#,
            r#"{"type":"rollback_finished","step":"a","outcome":{"outcome":"cancelled"}}"#,
            r#"{"type":"interrupted","steps":["a","b"]}"#,
        ];
        for line in lines {
            let ev: Event = serde_json::from_str(line).expect(line);
            assert_eq!(serde_json::to_string(&ev).expect("serializes"), line);
        }
    }

    #[test]
    fn a_confirmation_reads_as_a_decision() {
        let ev: Event = serde_json::from_str(
            r#"{"type":"confirm","step":"copy","by":{"operator":"alice","host":"b"},"automatic":true,"typed":null,"evidence":[]}"#,
        )
        .expect("parses");
        assert!(matches!(
            ev.decision(),
            Some(Decision::Confirm { step, automatic: true, .. }) if step == "copy"
        ));
        assert_eq!(ev.by().map(|a| a.operator.as_str()), Some("alice"));
    }
}
