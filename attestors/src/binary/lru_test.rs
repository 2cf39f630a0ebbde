//! Unit tests for `lru.rs`: the bound holds and the least recently used goes first.

use super::LruMap;

#[test]
fn never_holds_more_than_capacity() {
    let mut map = LruMap::new(3);
    for i in 0..100u32 {
        map.insert(i, i * 2);
        assert!(map.len() <= 3);
    }
    assert_eq!(map.len(), 3);
    assert_eq!(map.get(&99), Some(198));
    assert_eq!(map.get(&96), None);
}

#[test]
fn evicts_least_recently_used_not_oldest_inserted() {
    let mut map = LruMap::new(2);
    map.insert("a", 1);
    map.insert("b", 2);
    assert_eq!(map.get(&"a"), Some(1)); // "b" is now the least recently used
    map.insert("c", 3);
    assert_eq!(map.get(&"b"), None);
    assert_eq!(map.get(&"a"), Some(1));
    assert_eq!(map.get(&"c"), Some(3));
}

#[test]
fn reinserting_a_key_replaces_it_without_growing() {
    let mut map = LruMap::new(2);
    map.insert("a", 1);
    map.insert("b", 2);
    map.insert("a", 10);
    assert_eq!(map.len(), 2);
    map.insert("c", 3); // "b" is the least recently used now
    assert_eq!(map.get(&"a"), Some(10));
    assert_eq!(map.get(&"b"), None);
}

#[test]
fn zero_capacity_holds_nothing() {
    let mut map = LruMap::new(0);
    map.insert(1, 1);
    assert_eq!(map.len(), 0);
    assert_eq!(map.get(&1), None);
}
