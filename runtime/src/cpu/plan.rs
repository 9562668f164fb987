//! The memory plan: every tensor a step writes gets a buffer slot; a slot is reused by a later
//! step once every reader of its previous tensor has run (liveness over the step order). A step's
//! output never shares a slot with its own inputs. Graph outputs live to the end.

/// Slot assignment: `slot_of[value]` for each planned value, and each slot's size in elements.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub slot_of: Vec<Option<usize>>,
    pub slot_len: Vec<usize>,
}

impl Plan {
    pub fn peak_bytes(&self) -> usize {
        self.slot_len.iter().sum::<usize>() * 4
    }
}

/// What the planner needs to know about one step: the root values it reads and the root value
/// it writes (with its element count).
#[derive(Clone, Debug)]
pub struct StepUse {
    pub reads: Vec<usize>,
    pub writes: (usize, usize),
}

/// Plans `steps` over `n_values` values; `pinned` values (graph inputs, outputs) are never
/// freed. `inputs` are written before the first step, with their sizes.
pub fn plan(
    n_values: usize,
    inputs: &[(usize, usize)],
    steps: &[StepUse],
    pinned: &[usize],
) -> Plan {
    let mut last_use = vec![None::<usize>; n_values];
    for (i, s) in steps.iter().enumerate() {
        for &r in &s.reads {
            last_use[r] = Some(i);
        }
    }
    for &p in pinned {
        last_use[p] = Some(usize::MAX);
    }
    let mut p = Plan {
        slot_of: vec![None; n_values],
        slot_len: Vec::new(),
    };
    let mut free: Vec<usize> = Vec::new();
    let take = |p: &mut Plan, free: &mut Vec<usize>, value: usize, len: usize| {
        // Best fit: the smallest free slot that holds `len`, else the largest one (grown).
        let pick = free
            .iter()
            .enumerate()
            .filter(|(_, s)| p.slot_len[**s] >= len)
            .min_by_key(|(_, s)| p.slot_len[**s])
            .or_else(|| free.iter().enumerate().max_by_key(|(_, s)| p.slot_len[**s]))
            .map(|(i, _)| i);
        let slot = match pick {
            Some(i) => free.swap_remove(i),
            None => {
                p.slot_len.push(0);
                p.slot_len.len() - 1
            }
        };
        p.slot_len[slot] = p.slot_len[slot].max(len);
        p.slot_of[value] = Some(slot);
    };
    for &(v, len) in inputs {
        take(&mut p, &mut free, v, len);
    }
    for (i, s) in steps.iter().enumerate() {
        let (v, len) = s.writes;
        take(&mut p, &mut free, v, len);
        if last_use[v].is_none() {
            // Written but never read: free at once.
            last_use[v] = Some(i);
        }
        let mut done: Vec<usize> = s
            .reads
            .iter()
            .copied()
            .chain(std::iter::once(v))
            .filter(|&r| last_use[r] == Some(i))
            .collect();
        done.sort_unstable();
        done.dedup();
        for r in done {
            if let Some(slot) = p.slot_of[r] {
                free.push(slot);
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_reuses_two_slots() {
        // in(0) -> 1 -> 2 -> 3 -> 4 (output): a chain needs the input slot plus two.
        let steps: Vec<StepUse> = (0..4)
            .map(|i| StepUse {
                reads: vec![i],
                writes: (i + 1, 10),
            })
            .collect();
        let p = plan(5, &[(0, 10)], &steps, &[0, 4]);
        assert_eq!(p.slot_len.len(), 3, "{p:?}");
        assert_ne!(p.slot_of[3], p.slot_of[4]);
        assert_ne!(p.slot_of[0], p.slot_of[1]);
        assert_eq!(p.peak_bytes(), 3 * 10 * 4);
    }
}
