//! The work queue of a phase: items, and how many are being worked on. A piece of
//! work can add more (a differing table's chunks), so a worker that finds the queue
//! empty waits while others are still busy, and the phase ends when the queue is
//! empty and nobody is working.

use super::phases::Item;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Items to do, and the number being worked on.
pub struct Queue {
    items: Mutex<(VecDeque<Item>, usize)>,
    wake: tokio::sync::Notify,
}

impl Queue {
    pub fn push(&self, more: impl IntoIterator<Item = Item>) {
        if let Ok(mut q) = self.items.lock() {
            q.0.extend(more);
        }
        self.wake.notify_waiters();
    }

    /// The next item, `Ok(None)` when all work is done.
    pub async fn next(&self) -> Option<Item> {
        loop {
            let busy = match self.items.lock() {
                Ok(mut q) => match q.0.pop_front() {
                    Some(item) => {
                        q.1 += 1;
                        return Some(item);
                    }
                    None => q.1,
                },
                Err(_) => 0,
            };
            if busy == 0 {
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), self.wake.notified()).await;
        }
    }

    pub fn done(&self) {
        if let Ok(mut q) = self.items.lock() {
            q.1 = q.1.saturating_sub(1);
        }
        self.wake.notify_waiters();
    }
}

impl Queue {
    pub fn new(items: Vec<Item>) -> Queue {
        Queue {
            items: Mutex::new((VecDeque::from(items), 0)),
            wake: tokio::sync::Notify::new(),
        }
    }
}
