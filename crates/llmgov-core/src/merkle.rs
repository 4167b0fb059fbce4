//! Merkle tree hashing and proofs as in RFC 9162 (Certificate Transparency v2) §2.1, with
//! SHA-256 and the RFC's domain separation: leaves hash as `SHA-256(0x00 ‖ data)`, interior
//! nodes as `SHA-256(0x01 ‖ left ‖ right)`, so no leaf can pose as a node.
//!
//! Proof generation here works over a slice of leaf hashes (O(n)); the audit trail keeps
//! subtree hashes so it can answer at any size without reading every leaf. The verifiers are
//! the part a client must get right: they recompute the root from the proof and never
//! accept a proof of the wrong length, index or size.

use aws_lc_rs::digest::{Context, SHA256, digest};

pub type Hash = [u8; 32];

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

fn to_hash(d: aws_lc_rs::digest::Digest) -> Hash {
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    // Leaves are entry hashes: one call on a stack buffer instead of a hashing context.
    if let Ok(h) = <&Hash>::try_from(data) {
        let mut m = [0u8; 33];
        m[0] = LEAF_PREFIX;
        m[1..].copy_from_slice(h);
        return to_hash(digest(&SHA256, &m));
    }
    let mut c = Context::new(&SHA256);
    c.update(&[LEAF_PREFIX]);
    c.update(data);
    to_hash(c.finish())
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut m = [0u8; 65];
    m[0] = NODE_PREFIX;
    m[1..33].copy_from_slice(left);
    m[33..].copy_from_slice(right);
    to_hash(digest(&SHA256, &m))
}

/// The root of an empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    to_hash(digest(&SHA256, b""))
}

/// Largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// A range `[start, end)` of leaves whose subtree root a proof needs.
pub type Span = (u64, u64);

/// A complete, aligned subtree: `2^level` leaves starting at `index * 2^level`. These are
/// the nodes a stored tree keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

/// The complete subtrees whose roots determine the root of `span` (RFC 9162 splits every
/// range into a complete left part and the rest, so these are aligned).
pub fn span_nodes(span: Span, out: &mut Vec<NodeId>) {
    let (start, end) = span;
    let n = end - start;
    if n == 0 {
        return;
    }
    if n.is_power_of_two() && start % n == 0 {
        out.push(NodeId {
            level: n.trailing_zeros(),
            index: start / n,
        });
        return;
    }
    let k = split(n);
    span_nodes((start, start + k), out);
    span_nodes((start + k, end), out);
}

/// Root of `span` from the roots of its complete subtrees.
pub fn span_root(span: Span, node: &impl Fn(NodeId) -> Hash) -> Hash {
    let (start, end) = span;
    let n = end - start;
    if n == 0 {
        return empty_root();
    }
    if n.is_power_of_two() && start % n == 0 {
        return node(NodeId {
            level: n.trailing_zeros(),
            index: start / n,
        });
    }
    let k = split(n);
    node_hash(
        &span_root((start, start + k), node),
        &span_root((start + k, end), node),
    )
}

/// Spans whose roots form the inclusion proof of leaf `index` in a tree of `size` leaves,
/// in proof order (RFC 9162 §2.1.3.1).
pub fn inclusion_spans(index: u64, size: u64) -> Option<Vec<Span>> {
    if index >= size {
        return None;
    }
    let mut out = Vec::new();
    fn path(m: u64, lo: u64, hi: u64, out: &mut Vec<Span>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(m, lo, lo + k, out);
            out.push((lo + k, hi));
        } else {
            path(m - k, lo + k, hi, out);
            out.push((lo, lo + k));
        }
    }
    path(index, 0, size, &mut out);
    Some(out)
}

/// Spans whose roots form the consistency proof between sizes `old_size` and `size`, in
/// proof order (RFC 9162 §2.1.4.1); empty when the sizes are equal.
pub fn consistency_spans(old_size: u64, size: u64) -> Option<Vec<Span>> {
    if old_size == 0 || old_size > size {
        return None;
    }
    let mut out = Vec::new();
    fn sub(m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<Span>) {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push((lo, hi));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            sub(m, lo, lo + k, whole, out);
            out.push((lo + k, hi));
        } else {
            sub(m - k, lo + k, hi, false, out);
            out.push((lo, lo + k));
        }
    }
    if old_size < size {
        sub(old_size, 0, size, true, &mut out);
    }
    Some(out)
}

/// Every node needed to compute the roots of `spans`, deduplicated.
pub fn nodes_for(spans: &[Span]) -> Vec<NodeId> {
    let mut out = Vec::new();
    for s in spans {
        span_nodes(*s, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// In-memory node lookup over leaf hashes (for exports and tests): O(2^level) per node.
fn slice_node(leaves: &[Hash]) -> impl Fn(NodeId) -> Hash + '_ {
    move |id: NodeId| {
        let width = 1usize << id.level;
        let start = id.index as usize * width;
        root(&leaves[start..start + width])
    }
}

/// Merkle tree head of `leaves` (already leaf-hashed), RFC 9162 §2.1.1.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Inclusion proof of leaf `index` in the tree of `leaves`.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    let node = slice_node(leaves);
    Some(
        inclusion_spans(index as u64, leaves.len() as u64)?
            .into_iter()
            .map(|s| span_root(s, &node))
            .collect(),
    )
}

/// Consistency proof between the first `old_size` leaves and all `leaves`.
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    let node = slice_node(leaves);
    Some(
        consistency_spans(old_size as u64, leaves.len() as u64)?
            .into_iter()
            .map(|s| span_root(s, &node))
            .collect(),
    )
}

/// The right edge of a tree: roots of its complete subtrees, largest first (one per set bit
/// of the size). Appending needs only this, and the tree head folds from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier(pub Vec<Hash>);

impl Frontier {
    /// Appends leaf `leaf` as leaf number `size`, keeping only the frontier (what a
    /// verifier rebuilding a tree needs; no allocation once the frontier has grown).
    pub fn push(&mut self, size: u64, leaf: Hash) {
        let (mut cur, mut index) = (leaf, size);
        while index & 1 == 1 {
            let left = self
                .0
                .pop()
                .expect("frontier holds one subtree per set bit of the size");
            cur = node_hash(&left, &cur);
            index >>= 1;
        }
        self.0.push(cur);
    }

    /// Appends leaf `leaf` as leaf number `size` (the tree's size before the append) and
    /// returns the complete nodes this creates, the new leaf first.
    pub fn append(&mut self, size: u64, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut created = vec![(
            NodeId {
                level: 0,
                index: size,
            },
            leaf,
        )];
        let (mut cur, mut level, mut index) = (leaf, 0u32, size);
        while index & 1 == 1 {
            let left = self
                .0
                .pop()
                .expect("frontier holds one subtree per set bit of the size");
            cur = node_hash(&left, &cur);
            level += 1;
            index >>= 1;
            created.push((NodeId { level, index }, cur));
        }
        self.0.push(cur);
        created
    }

    /// Tree head of the tree this frontier ends.
    pub fn root(&self) -> Hash {
        let mut it = self.0.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.concat()
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        b.len().is_multiple_of(32).then(|| {
            Frontier(
                b.chunks(32)
                    .map(|c| c.try_into().expect("32 bytes"))
                    .collect(),
            )
        })
    }
}

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// Index or sizes out of range.
    OutOfRange,
    /// The proof has the wrong number of hashes for the claimed position.
    WrongLength,
    /// The proof does not lead to the claimed root.
    RootMismatch,
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves with
/// `root`, RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with `old_root` is a prefix of the tree of
/// `new_size` leaves with `new_root`, RFC 9162 §2.1.4.2.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::OutOfRange);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let mut proof = proof.to_vec();
    // When the old size is a power of two, the old root is the proof's implicit first node.
    if old_size.is_power_of_two() {
        proof.insert(0, *old_root);
    }
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn the_frontier_tracks_the_root_and_creates_every_complete_node() {
        let l = leaves(37);
        let mut f = Frontier::default();
        let mut nodes = std::collections::HashMap::new();
        for (i, h) in l.iter().enumerate() {
            for (id, hash) in f.append(i as u64, *h) {
                assert!(
                    nodes.insert(id, hash).is_none(),
                    "node {id:?} created twice"
                );
            }
            assert_eq!(f.root(), root(&l[..=i]), "size {}", i + 1);
            assert_eq!(f.0.len(), (i + 1).count_ones() as usize);
            assert_eq!(Frontier::from_bytes(&f.to_bytes()).unwrap(), f);
            // Roots and proofs from stored nodes equal those from the leaves.
            let size = i as u64 + 1;
            let stored = |id: NodeId| nodes[&id];
            for j in 0..=i {
                let spans = inclusion_spans(j as u64, size).unwrap();
                assert!(nodes_for(&spans).iter().all(|n| nodes.contains_key(n)));
                let p: Vec<Hash> = spans.iter().map(|s| span_root(*s, &stored)).collect();
                assert_eq!(Some(p), inclusion_proof(j, &l[..=i]));
            }
            assert_eq!(span_root((0, size), &stored), root(&l[..=i]));
        }
    }

    #[test]
    fn small_trees_match_the_definition() {
        let l = leaves(3);
        assert_eq!(root(&[]), empty_root());
        assert_eq!(root(&l[..1]), l[0]);
        assert_eq!(root(&l[..2]), node_hash(&l[0], &l[1]));
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_ne!(
            leaf_hash(&[0u8; 64]),
            node_hash(&[0u8; 32], &[0u8; 32]),
            "leaves and nodes are domain-separated"
        );
    }

    #[test]
    fn every_inclusion_proof_verifies_and_every_tampering_fails() {
        for n in 1..=40usize {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = inclusion_proof(i, &l).unwrap();
                assert_eq!(
                    verify_inclusion(i as u64, n as u64, &l[i], &p, &r),
                    Ok(()),
                    "n={n} i={i}"
                );
                // A wrong leaf, index, size or root, or an edited, shortened or padded proof.
                let other = leaf_hash(b"forged");
                assert!(verify_inclusion(i as u64, n as u64, &other, &p, &r).is_err());
                if n > 1 {
                    let j = (i + 1) % n;
                    assert!(
                        verify_inclusion(j as u64, n as u64, &l[i], &p, &r).is_err(),
                        "n={n} i={i} as {j}"
                    );
                }
                // Size and root come together from a signed checkpoint: a proof for the tree of
                // n leaves must not verify against the tree of n + 1 leaves.
                let mut grown = l.clone();
                grown.push(leaf_hash(b"next"));
                assert!(
                    verify_inclusion(i as u64, n as u64 + 1, &l[i], &p, &root(&grown)).is_err(),
                    "n={n} i={i}"
                );
                assert!(
                    verify_inclusion(i as u64, n as u64, &l[i], &p, &leaf_hash(b"root")).is_err()
                );
                for k in 0..p.len() {
                    let mut bad = p.clone();
                    bad[k][0] ^= 1;
                    assert!(verify_inclusion(i as u64, n as u64, &l[i], &bad, &r).is_err());
                }
                if !p.is_empty() {
                    assert!(
                        verify_inclusion(i as u64, n as u64, &l[i], &p[..p.len() - 1], &r).is_err()
                    );
                }
                let mut padded = p.clone();
                padded.push(r);
                assert!(verify_inclusion(i as u64, n as u64, &l[i], &padded, &r).is_err());
            }
            assert!(inclusion_proof(n, &l).is_none());
            assert_eq!(
                verify_inclusion(n as u64, n as u64, &l[0], &[], &r),
                Err(ProofError::OutOfRange)
            );
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_every_tampering_fails() {
        for n in 1..=33usize {
            let l = leaves(n);
            let new_root = root(&l);
            for m in 1..=n {
                let old_root = root(&l[..m]);
                let p = consistency_proof(m, &l).unwrap();
                assert_eq!(
                    verify_consistency(m as u64, n as u64, &old_root, &new_root, &p),
                    Ok(()),
                    "m={m} n={n}"
                );
                assert!(
                    verify_consistency(m as u64, n as u64, &leaf_hash(b"x"), &new_root, &p)
                        .is_err()
                );
                assert!(
                    verify_consistency(m as u64, n as u64, &old_root, &leaf_hash(b"x"), &p)
                        .is_err()
                );
                for k in 0..p.len() {
                    let mut bad = p.clone();
                    bad[k][31] ^= 0x80;
                    assert!(
                        verify_consistency(m as u64, n as u64, &old_root, &new_root, &bad).is_err(),
                        "m={m} n={n} k={k}"
                    );
                }
                if !p.is_empty() {
                    assert!(
                        verify_consistency(m as u64, n as u64, &old_root, &new_root, &p[1..])
                            .is_err()
                    );
                }
                if m < n {
                    // A log that rewrote an old entry cannot prove consistency with its old head.
                    let mut rewritten = l.clone();
                    rewritten[m - 1] = leaf_hash(b"rewritten");
                    let forged = consistency_proof(m, &rewritten).unwrap();
                    assert!(
                        verify_consistency(
                            m as u64,
                            n as u64,
                            &old_root,
                            &root(&rewritten),
                            &forged
                        )
                        .is_err()
                    );
                }
            }
            assert!(consistency_proof(0, &l).is_none());
            assert!(consistency_proof(n + 1, &l).is_none());
        }
    }
}
