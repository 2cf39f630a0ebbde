//! A map with a hard size bound that forgets the least recently used entry.
//!
//! Written here rather than taken from a crate: it is forty lines over `std`, and a
//! privileged daemon is better off with fewer dependencies.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub(crate) struct LruMap<K, V> {
    capacity: usize,
    entries: HashMap<K, Slot<V>>,
    /// Recency order: the smallest tick is the least recently used key.
    by_last_use: BTreeMap<u64, K>,
    next_tick: u64,
}

struct Slot<V> {
    value: V,
    last_use: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> LruMap<K, V> {
    /// A map that never holds more than `capacity` entries; with 0 it holds none.
    /// Nothing is allocated up front, so a large capacity costs only what is used.
    pub(crate) fn new(capacity: usize) -> Self {
        LruMap {
            capacity,
            entries: HashMap::new(),
            by_last_use: BTreeMap::new(),
            next_tick: 0,
        }
    }

    /// The value under `key`, which becomes the most recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        let tick = self.tick();
        let slot = self.entries.get_mut(key)?;
        self.by_last_use.remove(&slot.last_use);
        slot.last_use = tick;
        self.by_last_use.insert(tick, key.clone());
        Some(slot.value.clone())
    }

    /// Stores `value` under `key` as the most recently used entry, forgetting the
    /// least recently used one if the map is full.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        let tick = self.tick();
        if let Some(old) = self.entries.insert(
            key.clone(),
            Slot {
                value,
                last_use: tick,
            },
        ) {
            self.by_last_use.remove(&old.last_use);
        }
        self.by_last_use.insert(tick, key);
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_last_use.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn tick(&mut self) -> u64 {
        // u64 ticks: at a billion lookups a second this wraps after 584 years.
        self.next_tick = self.next_tick.wrapping_add(1);
        self.next_tick
    }
}

#[cfg(test)]
#[path = "lru_test.rs"]
mod tests;
