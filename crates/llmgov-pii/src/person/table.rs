//! Lookups in the fixed word lists, made for the scan's hot loop: a word is lower-cased
//! into a buffer on the stack and hashed eight bytes at a time, and one probe of an
//! open-addressing table (a fingerprint per slot) usually settles it; and cue phrases are
//! matched from the end of the text before a name, one byte per step, in a trie of the
//! reversed phrases.

use crate::swar;

/// The hash multiplier (FxHash's).
const K: u64 = 0x517c_c1b7_2722_0a95;

/// Longest word hashed on the stack; longer or non-ASCII words are lower-cased on the heap.
const STACK: usize = 40;

/// The hash of lower-case bytes `b[..len]`, where `b` is zero-padded to whole eight-byte
/// chunks.
fn hash(b: &[u8], len: usize) -> u64 {
    let mut h = len as u64;
    for c in b[..len.div_ceil(8) * 8].chunks_exact(8) {
        h = (h.rotate_left(5) ^ u64::from_le_bytes(c.try_into().expect("eight bytes")))
            .wrapping_mul(K);
    }
    h
}

/// Words (lower case) and the bits of the lists they are on, in one open-addressing
/// table of 64-bit slots probed linearly (0: empty). A slot holds 24 bits of the word's
/// hash, its bits, its length and where its bytes start in `arena` (all the words, one
/// after another): a lookup reads one slot, and the arena only on a likely hit.
pub(super) struct Table {
    slots: Vec<u64>,
    shift: u32,
    arena: Vec<u8>,
}

const FINGERPRINT: u32 = 40;
const BITS: u32 = 32;
const LEN: u32 = 24;
const OFFSET: u64 = (1 << LEN) - 1;

/// The 24 bits of a hash kept in a slot (not those that chose the slot).
fn fingerprint(h: u64) -> u64 {
    (h >> 16) & 0xFF_FFFF
}

impl Table {
    /// A table of `words` (lower case), each with its bits; a word listed twice gets the
    /// union of its bits.
    pub fn new(words: impl IntoIterator<Item = (&'static str, u8)>) -> Self {
        let mut merged: Vec<(&'static [u8], u8)> = vec![];
        let mut at = std::collections::HashMap::new();
        for (w, bits) in words {
            debug_assert!(!w.bytes().any(|c| c.is_ascii_uppercase()), "{w}");
            assert!(
                (1..=255).contains(&w.len()),
                "a listed word of 1 to 255 bytes: {w:?}"
            );
            let i = *at.entry(w.as_bytes()).or_insert_with(|| {
                merged.push((w.as_bytes(), 0));
                merged.len() - 1
            });
            merged[i].1 |= bits;
        }
        let size = (merged.len() * 2).next_power_of_two().max(16);
        let mut t = Self {
            slots: vec![0; size],
            shift: 64 - size.trailing_zeros(),
            arena: Vec::with_capacity(merged.iter().map(|w| w.0.len()).sum()),
        };
        for (w, bits) in merged {
            let off = t.arena.len() as u64;
            assert!(off < OFFSET, "word lists too large");
            t.arena.extend_from_slice(w);
            let mut buf = w.to_vec();
            buf.resize(w.len().div_ceil(8) * 8, 0);
            let h = hash(&buf, w.len());
            let mut s = (h >> t.shift) as usize;
            while t.slots[s] != 0 {
                s = (s + 1) & (size - 1);
            }
            t.slots[s] = fingerprint(h) << FINGERPRINT
                | u64::from(bits) << BITS
                | (w.len() as u64) << LEN
                | off;
        }
        t
    }

    /// The bits of a word, in any case (0: on no list).
    pub fn get(&self, w: &str) -> u8 {
        let b = w.as_bytes();
        if b.len() <= STACK {
            // Lower case eight bytes at a time: a capital's lower case has bit 5 set.
            let mut buf = [0u8; STACK];
            buf[..b.len()].copy_from_slice(b);
            let mut high = 0;
            for c in buf[..b.len().div_ceil(8) * 8].chunks_exact_mut(8) {
                let x = swar::load(c, 0);
                high |= x;
                c.copy_from_slice(&(x | swar::in_range(x, b'A', b'Z') >> 2).to_le_bytes());
            }
            if high & swar::HIGH == 0 {
                return self.lookup(&buf, b.len());
            }
        }
        let mut lower = w.to_lowercase().into_bytes();
        let len = lower.len();
        lower.resize(len.div_ceil(8) * 8, 0);
        self.lookup(&lower, len)
    }

    fn lookup(&self, padded: &[u8], len: usize) -> u8 {
        let h = hash(padded, len);
        let want = fingerprint(h) << FINGERPRINT | (len as u64) << LEN;
        const KEY: u64 = !0 << FINGERPRINT | 0xFF << LEN;
        let mask = self.slots.len() - 1;
        let mut s = (h >> self.shift) as usize;
        loop {
            let slot = self.slots[s];
            if slot == 0 {
                return 0;
            }
            if slot & KEY == want {
                let off = (slot & OFFSET) as usize;
                if self.arena[off..off + len] == padded[..len] {
                    return (slot >> BITS) as u8;
                }
            }
            s = (s + 1) & mask;
        }
    }
}

/// Phrases (lower case) in a trie of their reversed bytes: node 0 is the root; a node is
/// the range of its children in `edges` (by byte) and whether a phrase starts there.
pub(super) struct Cues {
    nodes: Vec<(u32, u32, bool)>,
    edges: Vec<(u8, u32)>,
}

impl Cues {
    pub fn new(phrases: &[&str]) -> Self {
        let mut trie: Vec<(Vec<(u8, u32)>, bool)> = vec![(vec![], false)];
        for p in phrases {
            let mut n = 0;
            for &c in p.as_bytes().iter().rev() {
                n = match trie[n].0.iter().find(|x| x.0 == c) {
                    Some(&(_, next)) => next as usize,
                    None => {
                        trie.push((vec![], false));
                        let next = trie.len() - 1;
                        trie[n].0.push((c, next as u32));
                        next
                    }
                };
            }
            trie[n].1 = true;
        }
        let mut c = Self {
            nodes: vec![],
            edges: vec![],
        };
        for (children, end) in trie {
            let first = c.edges.len() as u32;
            c.edges.extend(children);
            c.nodes.push((first, c.edges.len() as u32, end));
        }
        c
    }

    /// Whether `s` ends with a phrase whose first byte, at `j`, passes `starts(j)`.
    pub fn ends(&self, s: &[u8], starts: impl Fn(usize) -> bool) -> bool {
        let mut n = 0;
        for j in (0..s.len()).rev() {
            let (first, last, _) = self.nodes[n];
            match self.edges[first as usize..last as usize]
                .iter()
                .find(|x| x.0 == s[j])
            {
                Some(&(_, next)) => n = next as usize,
                None => return false,
            }
            if self.nodes[n].2 && starts(j) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_found_in_any_case_with_their_bits_merged() {
        let long = "a-word-longer-than-the-forty-bytes-kept-on-the-stack";
        let t = Table::new([
            ("smith", 2),
            ("jordan", 1),
            ("jordan", 2),
            ("josé", 1),
            (long, 4),
        ]);
        assert_eq!(t.get("Smith"), 2);
        assert_eq!(t.get("SMITH"), 2);
        assert_eq!(t.get("JORDAN"), 3);
        assert_eq!(t.get("José"), 1);
        assert_eq!(t.get("JOSÉ"), 1);
        assert_eq!(t.get(&long.to_uppercase()), 4);
        for w in ["smit", "smithx", "", "jose", "josé ", &long[1..]] {
            assert_eq!(t.get(w), 0, "{w:?}");
        }
        // Only A to Z change case; their neighbours `@`, `[`, `` ` `` and `{` do not.
        let edges = Table::new([("@[`{az09 .-", 1)]);
        assert_eq!(edges.get("@[`{AZ09 .-"), 1);
        assert_eq!(edges.get("`{@[az09 .-"), 0);
    }

    #[test]
    fn a_table_of_many_words_finds_each_and_no_other() {
        let words: Vec<&'static str> = (0..5000)
            .map(|i| &*Box::leak(format!("w{i}x").into_boxed_str()))
            .collect();
        let t = Table::new(words.iter().map(|w| (*w, 1)));
        assert!(words.iter().all(|w| t.get(w) == 1));
        assert!((5000..10000).all(|i| t.get(&format!("w{i}x")) == 0));
    }

    #[test]
    fn cues_end_the_text_only_where_they_may_start() {
        let c = Cues::new(&["my name is", "name is", "by", "dear"]);
        let any = |_| true;
        assert!(c.ends(b"hello, my name is", any));
        assert!(c.ends(b"the name is", any));
        assert!(c.ends(b"written by", any));
        assert!(!c.ends(b"my name iss", any));
        assert!(!c.ends(b"", any));
        // The caller says where a phrase may start: here, not inside a word.
        let b = b"xname is";
        assert!(!c.ends(b, |j| j == 0 || b[j - 1] == b' '));
        let b = b"my name is";
        assert!(c.ends(b, |j| j == 0 || b[j - 1] == b' '));
    }
}
