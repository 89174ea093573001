//! Who gets a connection: places for connections in their handshake (the oldest gives way),
//! and for served connections by class (the admin's are not counted; other nodes' and
//! anonymous clients' each have their own limit, so that neither can keep the other out).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Who a served connection is, for its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Presented the admin token: never refused, so the owner is never locked out.
    Admin,
    /// Said it is a node, with a node id. Declared, not proven: see docs/RELIABILITY.md.
    Peer,
    /// Everyone else.
    Anonymous,
}

/// Counts of served connections, by class.
#[derive(Default)]
pub(crate) struct Places {
    peers: AtomicUsize,
    anonymous: AtomicUsize,
}

/// A served connection's place, given back on drop.
pub(crate) struct Place {
    places: Arc<Places>,
    class: Class,
}

impl Places {
    /// A place for a connection of `class`, if fewer than `limit` of its class are served.
    pub fn take(self: &Arc<Self>, class: Class, limit: usize) -> Option<Place> {
        if let Some(count) = self.count(class) {
            let before = count.fetch_add(1, Ordering::AcqRel);
            if before >= limit {
                count.fetch_sub(1, Ordering::AcqRel);
                return None;
            }
        }
        Some(Place {
            places: self.clone(),
            class,
        })
    }

    fn count(&self, class: Class) -> Option<&AtomicUsize> {
        match class {
            Class::Admin => None,
            Class::Peer => Some(&self.peers),
            Class::Anonymous => Some(&self.anonymous),
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(count) = self.places.count(self.class) {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Connections in their handshake. When one more comes than the limit allows, the oldest is
/// told to close: connections that never speak cannot keep others from being accepted, and a
/// client that completes its handshake promptly gets through however many linger.
pub(crate) struct Handshakes {
    limit: usize,
    pending: Mutex<(u64, BTreeMap<u64, CancellationToken>)>,
}

/// A connection's place among the handshakes, given back on drop.
pub(crate) struct InHandshake<'a> {
    handshakes: &'a Handshakes,
    number: u64,
    /// Cancelled when younger connections pushed this one out.
    pub evicted: CancellationToken,
}

impl Handshakes {
    pub fn new(limit: usize) -> Handshakes {
        Handshakes {
            limit: limit.max(1),
            pending: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Registers a new connection, evicting the oldest ones over the limit.
    pub fn enter(&self) -> InHandshake<'_> {
        let evicted = CancellationToken::new();
        let mut pending = self.pending.lock();
        let (next, by_age) = &mut *pending;
        let number = *next;
        *next += 1;
        by_age.insert(number, evicted.clone());
        while by_age.len() > self.limit {
            if let Some((_, oldest)) = by_age.pop_first() {
                oldest.cancel();
            }
        }
        InHandshake {
            handshakes: self,
            number,
            evicted,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.lock().1.len()
    }
}

impl Drop for InHandshake<'_> {
    fn drop(&mut self) {
        self.handshakes.pending.lock().1.remove(&self.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_has_its_limit_and_the_admin_none() {
        let places = Arc::new(Places::default());
        let anonymous: Vec<Place> = (0..2)
            .map(|_| places.take(Class::Anonymous, 2).unwrap())
            .collect();
        assert!(places.take(Class::Anonymous, 2).is_none());
        let peer = places.take(Class::Peer, 1).unwrap();
        assert!(places.take(Class::Peer, 1).is_none());
        let admins: Vec<Place> = (0..10)
            .map(|_| places.take(Class::Admin, 0).unwrap())
            .collect();
        drop(admins);
        drop(anonymous);
        drop(peer);
        assert!(places.take(Class::Anonymous, 2).is_some());
        assert!(places.take(Class::Peer, 1).is_some());
    }

    #[test]
    fn the_oldest_handshake_gives_way() {
        let handshakes = Handshakes::new(2);
        let first = handshakes.enter();
        let second = handshakes.enter();
        assert!(!first.evicted.is_cancelled());
        let third = handshakes.enter();
        assert!(first.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled() && !third.evicted.is_cancelled());
        assert_eq!(handshakes.len(), 2);
        drop(second);
        drop(first);
        assert_eq!(handshakes.len(), 1);
        let fourth = handshakes.enter();
        assert!(!third.evicted.is_cancelled() && !fourth.evicted.is_cancelled());
    }
}
