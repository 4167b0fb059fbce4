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
    let mut c = Context::new(&SHA256);
    c.update(&[LEAF_PREFIX]);
    c.update(data);
    to_hash(c.finish())
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[NODE_PREFIX]);
    c.update(left);
    c.update(right);
    to_hash(c.finish())
}

/// The root of an empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    to_hash(digest(&SHA256, b""))
}

/// Largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Merkle tree head of `leaves` (already leaf-hashed), RFC 9162 §2.1.1.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Inclusion proof of leaf `index` in the tree of `leaves`, RFC 9162 §2.1.3.1.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// Consistency proof between the tree of the first `old_size` leaves and the tree of all
/// `leaves`, RFC 9162 §2.1.4.1. Empty when the sizes are equal.
pub fn consistency_proof(old_size: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if old_size == 0 || old_size > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    if old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut proof);
    }
    Some(proof)
}

fn subproof(m: usize, d: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !whole {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], whole, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
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
