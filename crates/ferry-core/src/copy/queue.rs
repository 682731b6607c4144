//! The queue of chunks the workers share, across and within tables. Without
//! `session_replication_role = replica`, tables go parents first (by the target's
//! foreign keys) and a table's chunks wait until its parents are complete, and a
//! table whose foreign key references itself loads one chunk at a time in key order
//! (so rows whose parents have smaller keys, the usual case, find them committed);
//! with it, the biggest tables go first so that the workers finish together.

use super::prepare::TableSpec;
use std::collections::{HashMap, VecDeque};

struct TableQ {
    pending: VecDeque<usize>,
    in_flight: usize,
    parents: Vec<usize>,
    /// One chunk at a time, in key order (a table referencing itself, loaded
    /// with its foreign keys enforced: a parent row must be committed first).
    serial: bool,
}

/// Chunks waiting to be copied.
pub(crate) struct Queue {
    tables: Vec<TableQ>,
    order: Vec<usize>,
    gate: bool,
}

pub(crate) enum Take {
    Job(usize, usize),
    Wait,
    Done,
}

impl Queue {
    /// Queue the chunks of `specs` not done yet. With `gate`, tables go parents first
    /// (by the target's foreign keys; a cycle is broken where it closes) and wait for
    /// their parents; without, the biggest tables go first.
    pub fn new(specs: &[TableSpec], gate: bool) -> Queue {
        let index: HashMap<String, usize> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.tgt.qualified_name(), i))
            .collect();
        let parents: Vec<Vec<usize>> = specs
            .iter()
            .map(|s| {
                s.tgt
                    .parents
                    .iter()
                    .filter_map(|p| index.get(p).copied())
                    .collect()
            })
            .collect();
        let order = if gate {
            topo_order(&parents)
        } else {
            let mut o: Vec<usize> = (0..specs.len()).collect();
            o.sort_by_key(|&i| {
                std::cmp::Reverse(specs[i].plan.chunks.iter().map(|c| c.est_rows).sum::<u64>())
            });
            o
        };
        let pos: HashMap<usize, usize> = order.iter().enumerate().map(|(p, &t)| (t, p)).collect();
        let tables = specs
            .iter()
            .enumerate()
            .map(|(i, s)| TableQ {
                pending: (0..s.plan.chunks.len())
                    .filter(|&c| s.done.get(c).is_none_or(|d| d.is_none()))
                    .collect(),
                in_flight: 0,
                serial: gate && s.tgt.self_ref,
                // Only parents earlier in the order gate: a cycle cannot deadlock.
                parents: parents[i]
                    .iter()
                    .copied()
                    .filter(|p| pos[p] < pos[&i])
                    .collect(),
            })
            .collect();
        Queue {
            tables,
            order,
            gate,
        }
    }

    fn complete(&self, t: usize) -> bool {
        self.tables[t].pending.is_empty() && self.tables[t].in_flight == 0
    }

    pub fn take(&mut self) -> Take {
        let mut left = false;
        for &t in &self.order {
            let q = &self.tables[t];
            if q.pending.is_empty() {
                left |= q.in_flight > 0;
                continue;
            }
            left = true;
            if self.gate && !q.parents.iter().all(|&p| self.complete(p)) {
                continue;
            }
            if q.serial && q.in_flight > 0 {
                continue;
            }
            let q = &mut self.tables[t];
            if let Some(c) = q.pending.pop_front() {
                q.in_flight += 1;
                return Take::Job(t, c);
            }
        }
        if left {
            Take::Wait
        } else {
            Take::Done
        }
    }

    pub fn finish(&mut self, t: usize) {
        self.tables[t].in_flight = self.tables[t].in_flight.saturating_sub(1);
    }

    pub fn pending(&self) -> usize {
        self.tables.iter().map(|t| t.pending.len()).sum()
    }
}

/// Tables ordered parents first; where a cycle leaves no table free, the one with the
/// fewest unplaced parents goes next.
fn topo_order(parents: &[Vec<usize>]) -> Vec<usize> {
    let n = parents.len();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let next = (0..n).filter(|&i| !placed[i]).min_by_key(|&i| {
            (
                parents[i].iter().filter(|&&p| !placed[p] && p != i).count(),
                i,
            )
        });
        let Some(i) = next else { break };
        placed[i] = true;
        order.push(i);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_first_and_cycles_broken() {
        // 0 -> 1 (0 references 1), 1 -> 2, 3 <-> 4
        let parents = vec![vec![1], vec![2], vec![], vec![4], vec![3]];
        let o = topo_order(&parents);
        let pos = |x: usize| o.iter().position(|&i| i == x).unwrap_or(usize::MAX);
        assert!(pos(2) < pos(1) && pos(1) < pos(0));
        assert_eq!(o.len(), 5);
    }
}
