//! The neighbour table (ARP and IPv6 neighbour discovery), a state machine driven by the
//! control plane with an explicit clock (`now`, ns), so tests use a fake one.
//!
//! ```text
//!             packet needs the MAC / configured next hop
//!   (none) ───────────────────────────────────────────► Incomplete ── request every
//!                                                           │          retry, ≤ retries
//!        reply, request or NS/NA from the neighbour         │
//!   (none / any) ──────────────────────────────► Reachable ◄┘ (held packets released)
//!                                                  │  ▲
//!                        reachable time passed     ▼  │ confirmed
//!                                                 Stale (MAC still used; unicast
//!                                                  │     requests every retry)
//!                                                  ▼ no answer after `retries`
//!                                          removed (or Incomplete again for a
//!                                          configured next hop)
//! Incomplete without an answer after `retries` requests: held packets fail (dropped,
//! counted, ICMP unreachable); a configured next hop tries again after `failed_backoff`.
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// A neighbour: egress port and address.
pub type Key = (u16, IpAddr);

/// State of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Being resolved; no MAC yet.
    Incomplete,
    /// MAC confirmed within the reachable time.
    Reachable,
    /// MAC not confirmed lately: still used, being re-checked.
    Stale,
}

/// Timers and limits.
#[derive(Clone, Copy, Debug)]
pub struct NeighConfig {
    /// Requests per attempt.
    pub retries: u32,
    /// Time between requests (ns).
    pub retry_ns: u64,
    /// How long a confirmed MAC is trusted (ns).
    pub reachable_ns: u64,
    /// Packets held per unresolved neighbour.
    pub hold: usize,
    /// Most entries.
    pub max_entries: usize,
    /// A configured next hop whose resolution failed is tried again after this (ns).
    pub failed_backoff_ns: u64,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            retries: 3,
            retry_ns: 1_000_000_000,
            reachable_ns: 60_000_000_000,
            hold: 16,
            max_entries: 4096,
            failed_backoff_ns: 5_000_000_000,
        }
    }
}

/// One neighbour.
#[derive(Debug)]
pub struct Entry<H> {
    /// Its MAC, once known.
    pub mac: Option<[u8; 6]>,
    /// State.
    pub state: State,
    /// When the MAC was last confirmed (ns).
    pub confirmed: u64,
    /// Requests sent in the current attempt.
    pub tries: u32,
    /// When the next request (or the verdict) is due (ns).
    pub next: u64,
    /// Packets waiting for the MAC.
    pub held: VecDeque<H>,
    /// A configured next hop: resolved proactively and never forgotten.
    pub wanted: bool,
}

/// What the control plane must do after a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<H> {
    /// Send a request (ARP request / neighbour solicitation) for the key: broadcast
    /// (multicast) when `to` is `None`, else unicast to that MAC.
    Request {
        /// The neighbour.
        key: Key,
        /// Unicast destination of a reachability check.
        to: Option<[u8; 6]>,
    },
    /// Resolution failed: these held packets cannot be delivered.
    Failed {
        /// The neighbour.
        key: Key,
        /// Its held packets.
        held: Vec<H>,
    },
}

/// Result of [`NeighTable::hold`].
#[derive(Debug, PartialEq, Eq)]
pub enum Hold<H> {
    /// The MAC is known: send the packet now.
    Send([u8; 6], H),
    /// Held until the neighbour answers.
    Held,
    /// Not held (queue full, or the table is full): the caller drops it.
    Full(H),
}

/// Neighbours by (port, address).
#[derive(Debug)]
pub struct NeighTable<H> {
    map: HashMap<Key, Entry<H>>,
    cfg: NeighConfig,
    changed: bool,
}

impl<H> NeighTable<H> {
    /// An empty table.
    pub fn new(cfg: NeighConfig) -> Self {
        NeighTable {
            map: HashMap::new(),
            cfg,
            changed: false,
        }
    }

    /// The entry for `key`.
    pub fn get(&self, key: &Key) -> Option<&Entry<H>> {
        self.map.get(key)
    }

    /// The usable MAC of `key` (reachable or stale).
    pub fn lookup(&self, key: &Key) -> Option<[u8; 6]> {
        self.map.get(key).and_then(|e| e.mac)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Packets held over all entries.
    pub fn held(&self) -> usize {
        self.map.values().map(|e| e.held.len()).sum()
    }

    /// Every neighbour with a usable MAC.
    pub fn resolved(&self) -> impl Iterator<Item = (Key, [u8; 6])> + '_ {
        self.map.iter().filter_map(|(k, e)| e.mac.map(|m| (*k, m)))
    }

    /// True (once) when the set of usable MACs changed since the last call: time to
    /// publish.
    pub fn take_changed(&mut self) -> bool {
        std::mem::replace(&mut self.changed, false)
    }

    fn incomplete(now: u64) -> Entry<H> {
        Entry {
            mac: None,
            state: State::Incomplete,
            confirmed: 0,
            tries: 0,
            next: now,
            held: VecDeque::new(),
            wanted: false,
        }
    }

    /// Sends the first request of an attempt now.
    fn start(&mut self, key: Key, now: u64, ev: &mut Vec<Event<H>>) {
        if let Some(e) = self.map.get_mut(&key) {
            e.tries = 1;
            e.next = now + self.cfg.retry_ns;
            ev.push(Event::Request { key, to: None });
        }
    }

    /// A configured next hop: resolve it now and keep it resolved.
    pub fn want(&mut self, key: Key, now: u64, ev: &mut Vec<Event<H>>) {
        if let Some(e) = self.map.get_mut(&key) {
            e.wanted = true;
            return;
        }
        let mut e = Self::incomplete(now);
        e.wanted = true;
        self.map.insert(key, e);
        self.start(key, now, ev);
    }

    /// The configured next hops are now exactly `keys` (the tables in force name them):
    /// each is resolved and kept resolved ([`NeighTable::want`]); any other entry, such as
    /// a next hop a reload removed, is no longer, and goes when it stops answering.
    pub fn want_only(&mut self, keys: &[Key], now: u64, ev: &mut Vec<Event<H>>) {
        for (k, e) in self.map.iter_mut() {
            e.wanted = keys.contains(k);
        }
        for &k in keys {
            self.want(k, now, ev);
        }
    }

    /// A packet needs `key`'s MAC.
    pub fn hold(&mut self, key: Key, pkt: H, now: u64, ev: &mut Vec<Event<H>>) -> Hold<H> {
        let hold = self.cfg.hold;
        match self.map.get_mut(&key) {
            Some(e) => {
                if let Some(m) = e.mac {
                    return Hold::Send(m, pkt);
                }
                if e.held.len() >= hold {
                    return Hold::Full(pkt);
                }
                e.held.push_back(pkt);
                // A configured next hop waiting out its back-off: try again now.
                if e.tries == 0 {
                    self.start(key, now, ev);
                }
                Hold::Held
            }
            None => {
                if self.map.len() >= self.cfg.max_entries || hold == 0 {
                    return Hold::Full(pkt);
                }
                let mut e = Self::incomplete(now);
                e.held.push_back(pkt);
                self.map.insert(key, e);
                self.start(key, now, ev);
                Hold::Held
            }
        }
    }

    /// `key` is at `mac` (a reply, or a request / solicitation from it). `create` adds
    /// an entry when there is none (a request for one of our addresses, RFC 826 / RFC
    /// 4861 §7.2.3); otherwise only known neighbours are updated. Returns the packets
    /// that were waiting.
    pub fn learn(&mut self, key: Key, mac: [u8; 6], create: bool, now: u64) -> Vec<H> {
        if !self.map.contains_key(&key) {
            if !create || self.map.len() >= self.cfg.max_entries {
                return Vec::new();
            }
            self.map.insert(key, Self::incomplete(now));
        }
        let Some(e) = self.map.get_mut(&key) else {
            return Vec::new();
        };
        if e.mac != Some(mac) {
            self.changed = true;
        }
        e.mac = Some(mac);
        e.state = State::Reachable;
        e.confirmed = now;
        e.tries = 0;
        e.next = now + self.cfg.reachable_ns;
        e.held.drain(..).collect()
    }

    /// Runs the timers: requests to send, resolutions that failed.
    pub fn tick(&mut self, now: u64, ev: &mut Vec<Event<H>>) {
        let cfg = self.cfg;
        let mut remove = Vec::new();
        for (k, e) in self.map.iter_mut() {
            if now < e.next {
                continue;
            }
            match e.state {
                State::Incomplete if e.tries == 0 => {
                    // A configured next hop after its back-off.
                    e.tries = 1;
                    e.next = now + cfg.retry_ns;
                    ev.push(Event::Request { key: *k, to: None });
                }
                State::Incomplete if e.tries < cfg.retries => {
                    e.tries += 1;
                    e.next = now + cfg.retry_ns;
                    ev.push(Event::Request { key: *k, to: None });
                }
                State::Incomplete => {
                    let held: Vec<H> = e.held.drain(..).collect();
                    if !held.is_empty() {
                        ev.push(Event::Failed { key: *k, held });
                    }
                    if e.wanted {
                        e.tries = 0;
                        e.next = now + cfg.failed_backoff_ns;
                    } else {
                        remove.push(*k);
                    }
                }
                State::Reachable => {
                    e.state = State::Stale;
                    e.tries = 1;
                    e.next = now + cfg.retry_ns;
                    ev.push(Event::Request { key: *k, to: e.mac });
                }
                State::Stale if e.tries < cfg.retries => {
                    e.tries += 1;
                    e.next = now + cfg.retry_ns;
                    ev.push(Event::Request { key: *k, to: e.mac });
                }
                State::Stale => {
                    // Gone: forget the MAC.
                    self.changed = true;
                    if e.wanted {
                        e.mac = None;
                        e.state = State::Incomplete;
                        e.tries = 1;
                        e.next = now + cfg.retry_ns;
                        ev.push(Event::Request { key: *k, to: None });
                    } else {
                        remove.push(*k);
                    }
                }
            }
        }
        for k in remove {
            self.map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];

    fn key() -> Key {
        (1, "10.2.0.2".parse().unwrap())
    }

    fn table() -> NeighTable<u32> {
        NeighTable::new(NeighConfig {
            hold: 2,
            ..NeighConfig::default()
        })
    }

    #[test]
    fn resolve_hold_and_release() {
        let mut t = table();
        let mut ev = Vec::new();
        assert_eq!(t.hold(key(), 1, 0, &mut ev), Hold::Held);
        assert_eq!(
            ev,
            vec![Event::Request {
                key: key(),
                to: None
            }]
        );
        ev.clear();
        assert_eq!(t.hold(key(), 2, 10, &mut ev), Hold::Held);
        assert!(
            ev.is_empty(),
            "one request per retry interval, not per packet"
        );
        assert_eq!(
            t.hold(key(), 3, 20, &mut ev),
            Hold::Full(3),
            "at most 2 held"
        );
        assert_eq!(t.get(&key()).unwrap().state, State::Incomplete);
        assert!(!t.take_changed());
        let released = t.learn(key(), MAC, false, S / 2);
        assert_eq!(released, vec![1, 2]);
        assert!(t.take_changed());
        assert!(!t.take_changed());
        assert_eq!(t.lookup(&key()), Some(MAC));
        assert_eq!(t.hold(key(), 4, S, &mut ev), Hold::Send(MAC, 4));
        assert_eq!(t.resolved().count(), 1);
    }

    #[test]
    fn retries_then_fails() {
        let mut t = table();
        let mut ev = Vec::new();
        t.hold(key(), 1, 0, &mut ev);
        ev.clear();
        t.tick(S / 2, &mut ev);
        assert!(ev.is_empty(), "not yet");
        t.tick(S, &mut ev);
        t.tick(2 * S, &mut ev);
        assert_eq!(ev.len(), 2, "requests 2 and 3, a second apart: {ev:?}");
        ev.clear();
        t.tick(3 * S, &mut ev);
        assert_eq!(
            ev,
            vec![Event::Failed {
                key: key(),
                held: vec![1]
            }]
        );
        assert!(t.get(&key()).is_none(), "forgotten");
        assert!(!t.take_changed(), "nothing was published");
    }

    #[test]
    fn reachable_goes_stale_then_is_rechecked_or_forgotten() {
        let mut t = table();
        let mut ev = Vec::new();
        // An ARP request for our address creates the entry.
        assert!(t.learn(key(), MAC, true, 0).is_empty());
        assert!(t.take_changed());
        t.tick(59 * S, &mut ev);
        assert!(ev.is_empty());
        t.tick(60 * S, &mut ev);
        assert_eq!(
            ev,
            vec![Event::Request {
                key: key(),
                to: Some(MAC)
            }],
            "unicast check"
        );
        assert_eq!(t.get(&key()).unwrap().state, State::Stale);
        assert_eq!(t.lookup(&key()), Some(MAC), "still used while stale");
        // Answered: reachable again, timer restarted.
        t.learn(key(), MAC, false, 60 * S + 1);
        assert_eq!(t.get(&key()).unwrap().state, State::Reachable);
        assert!(!t.take_changed(), "same MAC: nothing to publish");
        ev.clear();
        t.tick(120 * S + 1, &mut ev);
        t.tick(121 * S + 1, &mut ev);
        t.tick(122 * S + 1, &mut ev);
        assert_eq!(ev.len(), 3);
        t.tick(123 * S + 1, &mut ev);
        assert!(t.get(&key()).is_none(), "no answer to 3 checks: forgotten");
        assert!(t.take_changed());
    }

    #[test]
    fn learning_only_known_neighbours_unless_asked() {
        let mut t = table();
        t.learn(key(), MAC, false, 0);
        assert!(t.is_empty(), "an unsolicited reply creates nothing");
        t.learn(key(), MAC, true, 0);
        assert_eq!(t.len(), 1);
        let other = [2, 0, 0, 0, 2, 3];
        t.take_changed();
        t.learn(key(), other, false, 1);
        assert_eq!(t.lookup(&key()), Some(other), "a new MAC replaces the old");
        assert!(t.take_changed());
    }

    #[test]
    fn a_next_hop_no_longer_configured_is_given_up() {
        let mut t = table();
        let mut ev = Vec::new();
        let other: Key = (1, "10.2.0.3".parse().unwrap());
        t.want(key(), 0, &mut ev);
        t.want_only(&[other], 0, &mut ev);
        assert_eq!(ev.len(), 2, "both resolved at first: {ev:?}");
        for s in 1..=3 {
            t.tick(s * S, &mut ev);
        }
        assert!(
            t.get(&key()).is_none(),
            "unanswered and no longer wanted: gone"
        );
        assert!(t.get(&other).is_some(), "still wanted: kept");
    }

    #[test]
    fn configured_next_hop_keeps_trying() {
        let mut t = table();
        let mut ev = Vec::new();
        t.want(key(), 0, &mut ev);
        assert_eq!(ev.len(), 1);
        for s in 1..=3 {
            t.tick(s * S, &mut ev);
        }
        assert_eq!(
            ev.len(),
            3,
            "three requests, no failure event without packets"
        );
        assert!(t.get(&key()).is_some(), "kept");
        ev.clear();
        t.tick(4 * S, &mut ev);
        assert!(ev.is_empty(), "backing off");
        t.tick(8 * S, &mut ev);
        assert_eq!(
            ev,
            vec![Event::Request {
                key: key(),
                to: None
            }],
            "tries again"
        );
        // A packet during the back-off triggers a request at once.
        let mut t = table();
        let mut ev = Vec::new();
        t.want(key(), 0, &mut ev);
        for s in 1..=3 {
            t.tick(s * S, &mut ev);
        }
        ev.clear();
        assert_eq!(t.hold(key(), 9, 3 * S + 5, &mut ev), Hold::Held);
        assert_eq!(
            ev,
            vec![Event::Request {
                key: key(),
                to: None
            }]
        );
        // Stale and silent: back to resolving, MAC withdrawn.
        t.learn(key(), MAC, false, 4 * S);
        let mut ev = Vec::new();
        for s in [64, 65, 66, 67] {
            t.tick(s * S, &mut ev);
        }
        assert_eq!(t.get(&key()).unwrap().state, State::Incomplete);
        assert_eq!(t.lookup(&key()), None);
    }

    #[test]
    fn table_size_is_bounded() {
        let mut t: NeighTable<u32> = NeighTable::new(NeighConfig {
            max_entries: 2,
            ..NeighConfig::default()
        });
        let mut ev = Vec::new();
        let k = |i: u8| (0u16, IpAddr::from([10, 0, 0, i]));
        assert_eq!(t.hold(k(1), 1, 0, &mut ev), Hold::Held);
        assert_eq!(t.hold(k(2), 2, 0, &mut ev), Hold::Held);
        assert_eq!(t.hold(k(3), 3, 0, &mut ev), Hold::Full(3));
        t.learn(k(4), MAC, true, 0);
        assert_eq!(t.len(), 2);
    }
}
