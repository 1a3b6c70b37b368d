//! The steering table and the authentication of steering headers.
//!
//! Hot: [`SteeringKeys::verify`] and [`SteeringTable::get`] run per steered packet.
//! Cold: building tables and keys.
//!
//! A steering header (NSH MD type 2, see [`crate::wire::nsh`]) is accepted only when
//! (design.md, "Steering header"):
//! 1. the ingress port is trusted for steering,
//! 2. the destination is present in the current steering table,
//! 3. the epoch is fresh: `table.epoch - header.epoch <= max_epoch_age` (wrapping),
//! 4. the tag verifies under the current or the previous key.
//!
//! The checks run cheapest first; any failure is a counted [`Fallback`] and the packet is
//! routed by LPM instead. The tag is SipHash-2-4 (a keyed PRF; ~20 ns for the 24–48 bytes
//! it covers) over the header's fields and the inner packet's source and destination
//! addresses, so a header cannot be moved to another flow.

use std::hash::Hasher;

use siphasher::sip::SipHasher24;

use crate::wire::nsh::SteeringRepr;

/// Why a packet carrying a steering header was routed by LPM instead of steered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Fallback {
    /// The port it arrived on is not trusted for steering headers.
    Untrusted = 0,
    /// NSH present but no steerd steering TLV in it.
    NoSteeringTlv,
    /// The destination id is not in the current steering table.
    UnknownDest,
    /// The prediction epoch is older than `max_epoch_age` (or from the future).
    StaleEpoch,
    /// The tag verifies under neither the current nor the previous key.
    BadTag,
}

impl Fallback {
    /// Number of variants.
    pub const COUNT: usize = 5;
    /// All variants, in index order.
    pub const ALL: [Fallback; Self::COUNT] = [
        Fallback::Untrusted,
        Fallback::NoSteeringTlv,
        Fallback::UnknownDest,
        Fallback::StaleEpoch,
        Fallback::BadTag,
    ];
    /// Stable snake_case name (used in JSON and metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Untrusted => "untrusted_port",
            Fallback::NoSteeringTlv => "no_steering_tlv",
            Fallback::UnknownDest => "unknown_dest",
            Fallback::StaleEpoch => "stale_epoch",
            Fallback::BadTag => "bad_tag",
        }
    }
}

/// A 128-bit SipHash key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// Builds a key from 16 bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        let mut a = [0u8; 8];
        let mut c = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        c.copy_from_slice(&b[8..]);
        Key {
            k0: u64::from_le_bytes(a),
            k1: u64::from_le_bytes(c),
        }
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.len() != 32 {
            return Err(format!(
                "a steering key is 32 hex digits (128 bits), got {} characters",
                s.len()
            ));
        }
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| format!("not a hex digit pair at position {}", 2 * i))?;
        }
        Ok(Key::from_bytes(b))
    }
}

/// The fields of a steering header that the tag covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagFields {
    /// Predicted destination id.
    pub dest_id: u32,
    /// Application class.
    pub app_class: u8,
    /// Priority (0 = lowest).
    pub priority: u8,
    /// Flags.
    pub flags: u16,
    /// Prediction epoch.
    pub epoch: u32,
    /// NSH service path id.
    pub spi: u32,
    /// NSH service index.
    pub si: u8,
}

/// Length of the largest canonical tag input (see [`crate::wire::nsh`]).
pub const MAX_TAG_INPUT: usize = crate::wire::nsh::TAG_INPUT_MAX;

/// Writes the canonical bytes the tag covers into `out` and returns their length; the
/// one layout is [`SteeringRepr::tag_input`]'s. Returns 0 (which never verifies) when
/// the addresses are not both 4 or both 16 bytes.
#[inline]
pub fn tag_input(f: &TagFields, src: &[u8], dst: &[u8], out: &mut [u8; MAX_TAG_INPUT]) -> usize {
    let r = SteeringRepr {
        spi: f.spi,
        si: f.si,
        ttl: 0,
        next_protocol: 0,
        dest_id: f.dest_id,
        app_class: f.app_class,
        priority: f.priority,
        flags: f.flags,
        epoch: f.epoch,
        tag: 0,
    };
    r.tag_input(src, dst, out).unwrap_or(0)
}

/// SipHash-2-4 of canonical tag input bytes.
#[inline]
pub fn tag_of(key: &Key, input: &[u8]) -> u64 {
    let mut h = SipHasher24::new_with_keys(key.k0, key.k1);
    h.write(input);
    h.finish()
}

/// Computes the tag of a header for the inner packet with addresses `src` and `dst`
/// (4 bytes each for IPv4, 16 for IPv6).
#[inline]
pub fn compute_tag(key: &Key, f: &TagFields, src: &[u8], dst: &[u8]) -> u64 {
    let mut buf = [0u8; MAX_TAG_INPUT];
    let n = tag_input(f, src, dst, &mut buf);
    tag_of(key, &buf[..n])
}

/// Current and previous steering keys (rotation keeps both valid for a while).
#[derive(Clone, Copy, Debug)]
pub struct SteeringKeys {
    /// The key new headers are marked with.
    pub current: Key,
    /// The key before the last rotation, still accepted.
    pub previous: Option<Key>,
}

impl SteeringKeys {
    /// True when `tag` verifies under the current or previous key.
    #[inline]
    pub fn verify(&self, f: &TagFields, src: &[u8], dst: &[u8], tag: u64) -> bool {
        let mut buf = [0u8; MAX_TAG_INPUT];
        let n = tag_input(f, src, dst, &mut buf);
        n != 0 && self.verify_input(&buf[..n], tag)
    }

    /// True when `tag` is the tag of the canonical `input` under either key.
    #[inline]
    pub fn verify_input(&self, input: &[u8], tag: u64) -> bool {
        if tag_of(&self.current, input) == tag {
            return true;
        }
        match &self.previous {
            Some(p) => tag_of(p, input) == tag,
            None => false,
        }
    }

    /// Rotates: the current key becomes the previous one.
    pub fn rotate(&mut self, new: Key) {
        self.previous = Some(self.current);
        self.current = new;
    }
}

/// Most next hops one steering entry spreads a destination's flows over (ECMP).
pub const MAX_STEER_WAYS: usize = 4;

/// Where a steered destination goes: one next hop, or up to [`MAX_STEER_WAYS`] equal-cost
/// next hops that its flows are spread over by flow hash (a flow always takes the same
/// one while the entry stands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteerEntry {
    /// Indices into the route table's next hops; the first `ways` are used, the first
    /// is the primary.
    next_hops: [u16; MAX_STEER_WAYS],
    ways: u8,
    /// Transmit priority class (0 = lowest); the header's priority is capped by it.
    pub max_priority: u8,
}

impl SteerEntry {
    /// One next hop.
    pub fn new(next_hop: u16, max_priority: u8) -> Self {
        SteerEntry {
            next_hops: [next_hop; MAX_STEER_WAYS],
            ways: 1,
            max_priority,
        }
    }

    /// Flows spread over `hops` (1..=[`MAX_STEER_WAYS`], the first is the primary).
    pub fn ecmp(hops: &[u16], max_priority: u8) -> Result<Self, String> {
        if hops.is_empty() || hops.len() > MAX_STEER_WAYS {
            return Err(format!(
                "{} next hops: a steering entry takes 1..={MAX_STEER_WAYS}",
                hops.len()
            ));
        }
        let mut e = SteerEntry::new(hops[0], max_priority);
        e.next_hops[..hops.len()].copy_from_slice(hops);
        e.ways = hops.len() as u8;
        Ok(e)
    }

    /// The next hops in use (the first is the primary).
    pub fn hops(&self) -> &[u16] {
        &self.next_hops[..usize::from(self.ways)]
    }

    /// The primary next hop.
    pub fn primary(&self) -> u16 {
        self.next_hops[0]
    }

    /// The next hop of the flow with `flow_hash`: multiply-shift over the ways, as
    /// route ECMP groups do (no division; the same hash, the same next hop).
    #[inline]
    pub fn pick(&self, flow_hash: u32) -> u16 {
        let i = (u64::from(flow_hash) * u64::from(self.ways)) >> 32;
        // ways ≥ 1 and i < ways: always in range.
        self.next_hops[i as usize & (MAX_STEER_WAYS - 1)]
    }
}

/// Destination id → entry, a flat array indexed by id (ids are small, dense integers
/// assigned by config/RAM), so a lookup is one bounds-checked load.
#[derive(Clone, Debug)]
pub struct SteeringTable {
    entries: Vec<Option<SteerEntry>>,
    /// Entries with more than one next hop (the pipeline then computes flow hashes).
    ecmp_entries: u32,
    /// Epoch of this table (bumped by every publication from RAM).
    pub epoch: u32,
    /// Oldest accepted header epoch is `epoch - max_epoch_age`.
    pub max_epoch_age: u32,
    /// Keys for tag verification.
    pub keys: SteeringKeys,
}

/// Largest destination id a steering table accepts.
pub const MAX_DEST_ID: u32 = 65_535;

impl SteeringTable {
    /// An empty table.
    pub fn new(keys: SteeringKeys, epoch: u32, max_epoch_age: u32) -> Self {
        SteeringTable {
            entries: Vec::new(),
            ecmp_entries: 0,
            epoch,
            max_epoch_age,
            keys,
        }
    }

    /// Installs or replaces the entry for `dest` (cold).
    pub fn insert(&mut self, dest: u32, e: SteerEntry) -> Result<(), String> {
        if dest > MAX_DEST_ID {
            return Err(format!("destination id {dest} is above {MAX_DEST_ID}"));
        }
        let i = dest as usize;
        if self.entries.len() <= i {
            self.entries.resize(i + 1, None);
        }
        if let Some(old) = self.entries[i].replace(e) {
            self.ecmp_entries -= u32::from(old.ways > 1);
        }
        self.ecmp_entries += u32::from(e.ways > 1);
        Ok(())
    }

    /// Removes the entry for `dest`.
    pub fn remove(&mut self, dest: u32) -> Option<SteerEntry> {
        let old = self.entries.get_mut(dest as usize).and_then(Option::take);
        if let Some(o) = old {
            self.ecmp_entries -= u32::from(o.ways > 1);
        }
        old
    }

    /// True when some entry spreads flows over more than one next hop.
    #[inline]
    pub fn has_ecmp(&self) -> bool {
        self.ecmp_entries != 0
    }

    /// Looks up a destination.
    #[inline]
    pub fn get(&self, dest: u32) -> Option<SteerEntry> {
        self.entries.get(dest as usize).copied().flatten()
    }

    /// Number of installed destinations.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    /// True when no destination is installed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Installed (dest, entry) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u32, SteerEntry)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (i as u32, e)))
    }

    /// True when `epoch` is within `max_epoch_age` of the table's epoch (not in the future).
    #[inline]
    pub fn epoch_fresh(&self, epoch: u32) -> bool {
        self.epoch.wrapping_sub(epoch) <= self.max_epoch_age
    }

    /// Runs the acceptance checks (after the port-trust check, which the caller does)
    /// and returns the entry or the reason for falling back.
    #[inline]
    pub fn admit(
        &self,
        f: &TagFields,
        tag: u64,
        src: &[u8],
        dst: &[u8],
    ) -> Result<SteerEntry, Fallback> {
        let e = self.get(f.dest_id).ok_or(Fallback::UnknownDest)?;
        if !self.epoch_fresh(f.epoch) {
            return Err(Fallback::StaleEpoch);
        }
        if !self.keys.verify(f, src, dst, tag) {
            return Err(Fallback::BadTag);
        }
        Ok(e)
    }

    /// [`SteeringTable::admit`] with a per-core cache of verified tags: a header whose tag
    /// and every byte the tag covers equal a recently verified one skips the PRF.
    #[inline]
    pub fn admit_cached(
        &self,
        cache: &mut TagCache,
        f: &TagFields,
        tag: u64,
        src: &[u8],
        dst: &[u8],
    ) -> Result<SteerEntry, Fallback> {
        let e = self.get(f.dest_id).ok_or(Fallback::UnknownDest)?;
        if !self.epoch_fresh(f.epoch) {
            return Err(Fallback::StaleEpoch);
        }
        let key = TagKey::new(f, src, dst).ok_or(Fallback::BadTag)?;
        if cache.hit(tag, &key) {
            return Ok(e);
        }
        let mut buf = [0u8; MAX_TAG_INPUT];
        let n = tag_input(f, src, dst, &mut buf);
        if n == 0 || !self.keys.verify_input(&buf[..n], tag) {
            return Err(Fallback::BadTag);
        }
        cache.insert(tag, &key);
        Ok(e)
    }
}

/// What a cached tag covers, as words built from the fields and the packet's address
/// bytes, and the address length: equal keys mean equal canonical tag inputs (every
/// field has its own bits; IPv4 addresses fill one word and leave three zero, told apart
/// from IPv6 by `alen`). Comparing words read from registers and the packet avoids
/// re-reading a byte buffer just written on the stack, whose stalled store forwarding
/// cost about a fifth of the steered path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TagKey {
    w: [u64; 6],
    alen: u8,
}

impl TagKey {
    /// The key of a header's fields and inner addresses (4 or 16 bytes each, both the
    /// same); `None` for other address lengths, which no tag covers.
    #[inline(always)]
    pub fn new(f: &TagFields, src: &[u8], dst: &[u8]) -> Option<TagKey> {
        let w0 = (u64::from(f.dest_id) << 32) | u64::from(f.epoch);
        let w1 = (u64::from(f.app_class) << 56)
            | (u64::from(f.priority) << 48)
            | (u64::from(f.flags) << 32)
            | (u64::from(f.spi & 0x00ff_ffff) << 8)
            | u64::from(f.si);
        let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
        let half = |b: &[u8]| u64::from(u32::from_ne_bytes(b.try_into().unwrap_or([0; 4])));
        match (src.len(), dst.len()) {
            (4, 4) => Some(TagKey {
                w: [w0, w1, (half(src) << 32) | half(dst), 0, 0, 0],
                alen: 4,
            }),
            (16, 16) => Some(TagKey {
                w: [
                    w0,
                    w1,
                    word(&src[..8]),
                    word(&src[8..]),
                    word(&dst[..8]),
                    word(&dst[8..]),
                ],
                alen: 16,
            }),
            _ => None,
        }
    }

    /// Equality word by word, without an early exit (no `memcmp` call, no vector loads
    /// of a key just stored).
    #[inline(always)]
    fn same(&self, o: &TagKey) -> bool {
        let mut d = u64::from(self.alen ^ o.alen);
        for k in 0..6 {
            d |= self.w[k] ^ o.w[k];
        }
        d == 0
    }
}

/// A per-core, 4-way set-associative cache of verified (tag, tag input) pairs.
///
/// Security: an entry is only ever inserted after the PRF verified it, and a hit needs the
/// tag AND every byte it covers (header fields, inner addresses) to be equal, so a hit
/// accepts exactly what a full verification would accept under the keys the cache was
/// filled with. The owner must [`TagCache::clear`] it whenever the keys may have changed
/// (on every table generation change). 64 bytes a slot: 16,384 slots are 1 MiB.
pub struct TagCache {
    slots: Box<[TagSlot]>,
    set_mask: usize,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that needed the PRF.
    pub misses: u64,
}

const WAYS: usize = 4;

#[derive(Clone, Copy)]
#[repr(align(64))]
struct TagSlot {
    tag: u64,
    /// Valid (a verified key is stored).
    used: bool,
    key: TagKey,
}

const EMPTY_SLOT: TagSlot = TagSlot {
    tag: 0,
    used: false,
    key: TagKey { w: [0; 6], alen: 0 },
};

impl TagCache {
    /// A cache of about `n` slots (rounded up to a power of two, at least one set;
    /// start-up only).
    pub fn new(n: usize) -> Self {
        let sets = (n / WAYS).max(1).next_power_of_two();
        TagCache {
            slots: vec![EMPTY_SLOT; sets * WAYS].into_boxed_slice(),
            set_mask: sets - 1,
            hits: 0,
            misses: 0,
        }
    }

    #[inline]
    fn set(&mut self, tag: u64) -> &mut [TagSlot] {
        let base = ((tag as usize) & self.set_mask) * WAYS;
        &mut self.slots[base..base + WAYS]
    }

    #[inline]
    fn hit(&mut self, tag: u64, key: &TagKey) -> bool {
        let ok = self
            .set(tag)
            .iter()
            .any(|s| s.tag == tag && s.used && s.key.same(key));
        if ok {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        ok
    }

    #[inline]
    fn insert(&mut self, tag: u64, key: &TagKey) {
        // An empty way if there is one, else a way chosen by the tag's high bits.
        let victim = (tag >> 60) as usize % WAYS;
        let set = self.set(tag);
        let w = set.iter().position(|s| !s.used).unwrap_or(victim);
        set[w] = TagSlot {
            tag,
            used: true,
            key: *key,
        };
    }

    /// Forgets every entry (keys or table changed).
    pub fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            s.used = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SteeringKeys {
        SteeringKeys {
            current: Key::from_hex("000102030405060708090a0b0c0d0e0f").unwrap(),
            previous: None,
        }
    }

    fn fields() -> TagFields {
        TagFields {
            dest_id: 7,
            app_class: 2,
            priority: 3,
            flags: 0,
            epoch: 10,
            spi: 0x123456,
            si: 255,
        }
    }

    #[test]
    fn siphash_matches_reference_vector() {
        // SipHash-2-4 reference: key 00..0f, message 00..0e (15 bytes) -> bytes e5 45 be 49 61 ca 29 a1
        // (from the SipHash paper's test vectors, little-endian output).
        let k = Key::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
        let mut h = SipHasher24::new_with_keys(k.k0, k.k1);
        let msg: Vec<u8> = (0u8..15).collect();
        h.write(&msg);
        assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn ecmp_entries_spread_flows_and_keep_each_on_one_hop() {
        let e = SteerEntry::ecmp(&[4, 9, 2], 3).unwrap();
        assert_eq!((e.hops(), e.primary()), (&[4, 9, 2][..], 4));
        let mut n = [0u32; 16];
        // A spread of well-mixed hashes (splitmix64 of 0..30000).
        for i in 0..30_000u64 {
            let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let h = (z ^ (z >> 31)) as u32;
            let nh = e.pick(h);
            assert_eq!(nh, e.pick(h), "the same flow, the same hop");
            n[nh as usize] += 1;
        }
        for hop in [4, 9, 2] {
            assert!((9_000..11_000).contains(&n[hop]), "{n:?}");
        }
        assert_eq!(n.iter().sum::<u32>(), 30_000, "only the entry's hops");
        let one = SteerEntry::new(6, 2);
        assert!(
            [0, 1, u32::MAX / 2, u32::MAX]
                .iter()
                .all(|&h| one.pick(h) == 6)
        );
        assert_eq!(one.hops(), &[6]);
        assert!(SteerEntry::ecmp(&[], 3).is_err());
        assert!(SteerEntry::ecmp(&[1, 2, 3, 4, 5], 3).is_err());
        assert_eq!(
            SteerEntry::ecmp(&[1, 2, 3, 4], 3).unwrap().pick(u32::MAX),
            4
        );
        // The table knows whether any entry needs a flow hash.
        let mut t = SteeringTable::new(keys(), 1, 1);
        t.insert(1, one).unwrap();
        assert!(!t.has_ecmp());
        t.insert(2, e).unwrap();
        t.insert(3, e).unwrap();
        assert!(t.has_ecmp());
        t.insert(2, one).unwrap();
        assert!(t.has_ecmp());
        assert!(t.remove(3).is_some());
        assert!(!t.has_ecmp());
    }

    proptest::proptest! {
        /// Whatever the hash, the pick is one of the entry's hops.
        #[test]
        fn pick_is_always_a_hop(hops in proptest::collection::vec(0u16..64, 1..=4), h in proptest::num::u32::ANY) {
            let e = SteerEntry::ecmp(&hops, 3).unwrap();
            proptest::prop_assert!(hops.contains(&e.pick(h)));
        }

        /// Two headers have equal cache keys exactly when their canonical tag inputs
        /// are equal: the cache never answers for bytes the tag did not cover. The second
        /// header is the first with one of its parts changed, or none, so both outcomes
        /// are common; addresses may change family (4 ↔ 16 bytes, zeros included).
        #[test]
        fn tag_key_equality_is_tag_input_equality(
            w in proptest::array::uniform8(proptest::num::u32::ANY),
            src in proptest::collection::vec(proptest::num::u8::ANY, 16),
            dst in proptest::collection::vec(proptest::num::u8::ANY, 16),
            v6 in proptest::bool::ANY,
            what in 0usize..12,
            bit in 0u32..32,
            zeros in proptest::bool::ANY,
        ) {
            let f = TagFields {
                dest_id: w[0],
                app_class: w[1] as u8,
                priority: w[2] as u8,
                flags: w[3] as u16,
                epoch: w[4],
                spi: w[5],
                si: w[6] as u8,
            };
            let alen = if v6 { 16 } else { 4 };
            let (s1, d1) = (src[..alen].to_vec(), dst[..alen].to_vec());
            let (mut g, mut s2, mut d2) = (f, s1.clone(), d1.clone());
            let m = 1u32 << bit;
            match what {
                0 => g.dest_id ^= m,
                1 => g.app_class ^= m as u8,
                2 => g.priority ^= m as u8,
                3 => g.flags ^= m as u16,
                4 => g.epoch ^= m,
                5 => g.spi ^= m, // the top byte is not covered: may stay equal
                6 => g.si ^= m as u8,
                7 => s2[bit as usize % alen] ^= 1 << (bit % 8),
                8 => d2[bit as usize % alen] ^= 1 << (bit % 8),
                9 => {
                    // The other family, with the same leading bytes (and zeros after
                    // them when `zeros`).
                    let n = if v6 { 4 } else { 16 };
                    let pad = |a: &[u8]| (0..n).map(|k| if zeros && k >= alen { 0 } else { *a.get(k).unwrap_or(&0) }).collect::<Vec<u8>>();
                    s2 = pad(&s1);
                    d2 = pad(&d1);
                }
                _ => {}
            }
            let (ka, kb) = (TagKey::new(&f, &s1, &d1).unwrap(), TagKey::new(&g, &s2, &d2).unwrap());
            let (mut ia, mut ib) = ([0u8; MAX_TAG_INPUT], [0u8; MAX_TAG_INPUT]);
            let na = tag_input(&f, &s1, &d1, &mut ia);
            let nb = tag_input(&g, &s2, &d2, &mut ib);
            proptest::prop_assert_eq!(ka.same(&kb), ia[..na] == ib[..nb]);
            proptest::prop_assert!(ka.same(&ka));
        }
    }

    #[test]
    fn admit_checks_dest_epoch_tag() {
        let mut t = SteeringTable::new(keys(), 12, 4);
        t.insert(7, SteerEntry::new(1, 3)).unwrap();
        let f = fields();
        let src = [10, 0, 0, 1];
        let dst = [198, 18, 0, 1];
        let tag = compute_tag(&t.keys.current, &f, &src, &dst);
        assert!(t.admit(&f, tag, &src, &dst).is_ok());
        // forged tag
        assert_eq!(t.admit(&f, tag ^ 1, &src, &dst), Err(Fallback::BadTag));
        // moved to another flow
        assert_eq!(
            t.admit(&f, tag, &src, &[198, 18, 0, 2]),
            Err(Fallback::BadTag)
        );
        // unknown destination
        let g = TagFields { dest_id: 8, ..f };
        assert_eq!(t.admit(&g, tag, &src, &dst), Err(Fallback::UnknownDest));
        // stale and future epochs
        let old = TagFields { epoch: 7, ..f };
        let tag_old = compute_tag(&t.keys.current, &old, &src, &dst);
        assert_eq!(
            t.admit(&old, tag_old, &src, &dst),
            Err(Fallback::StaleEpoch)
        );
        let fut = TagFields { epoch: 13, ..f };
        let tag_fut = compute_tag(&t.keys.current, &fut, &src, &dst);
        assert_eq!(
            t.admit(&fut, tag_fut, &src, &dst),
            Err(Fallback::StaleEpoch)
        );
    }

    #[test]
    fn cache_accepts_exactly_what_verification_accepts() {
        let mut t = SteeringTable::new(keys(), 10, 4);
        t.insert(7, SteerEntry::new(1, 3)).unwrap();
        let mut c = TagCache::new(64);
        let f = fields();
        let (s, d) = ([10, 0, 0, 1], [198, 18, 0, 1]);
        let tag = compute_tag(&t.keys.current, &f, &s, &d);
        assert!(t.admit_cached(&mut c, &f, tag, &s, &d).is_ok());
        assert!(t.admit_cached(&mut c, &f, tag, &s, &d).is_ok());
        assert_eq!(c.hits, 1);
        // Same tag, different covered bytes: must not hit, must fail.
        assert_eq!(
            t.admit_cached(&mut c, &f, tag, &s, &[198, 18, 0, 9]),
            Err(Fallback::BadTag)
        );
        let g = TagFields { app_class: 9, ..f };
        assert_eq!(
            t.admit_cached(&mut c, &g, tag, &s, &d),
            Err(Fallback::BadTag)
        );
        // After a key change and clear, the old tag no longer passes.
        t.keys.current = Key::from_bytes([1; 16]);
        c.clear();
        assert_eq!(
            t.admit_cached(&mut c, &f, tag, &s, &d),
            Err(Fallback::BadTag)
        );
    }

    #[test]
    fn rotation_keeps_previous_key_valid_once() {
        let mut k = keys();
        let f = fields();
        let (s, d) = ([1, 2, 3, 4], [5, 6, 7, 8]);
        let tag1 = compute_tag(&k.current, &f, &s, &d);
        k.rotate(Key::from_bytes([9; 16]));
        assert!(k.verify(&f, &s, &d, tag1));
        k.rotate(Key::from_bytes([10; 16]));
        assert!(!k.verify(&f, &s, &d, tag1));
    }

    #[test]
    fn key_parse_errors_are_clear() {
        assert!(Key::from_hex("abc").unwrap_err().contains("32 hex digits"));
        assert!(
            Key::from_hex("zz0102030405060708090a0b0c0d0e0f")
                .unwrap_err()
                .contains("hex")
        );
    }
}
