//! Three-way merge of record sequences (diff3 over fingerprints).
//!
//! Each side's changes against the base are hunks: base range `b0..b1` replaced by the side's
//! range `x0..x1`. Hunks of the two sides whose base ranges intersect (or that insert at the
//! same place) form a group; a group changed on one side takes that side, a group changed the
//! same way on both sides takes it once, and a group changed differently on both sides is a
//! record-level conflict.

use std::time::{Duration, Instant};

use similar::{Algorithm, DiffOp, capture_diff_slices_deadline};

use super::block::Fingerprint;

/// A side's change: base `b0..b1` became side `x0..x1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hunk {
    pub b0: usize,
    pub b1: usize,
    pub x0: usize,
    pub x1: usize,
}

/// Where a merged record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Base(usize),
    Ours(usize),
    Theirs(usize),
}

/// Both sides changed base `base.0..base.1` differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub base: (usize, usize),
    pub ours: (usize, usize),
    pub theirs: (usize, usize),
}

pub fn hunks(base: &[Fingerprint], side: &[Fingerprint], deadline: Duration) -> Vec<Hunk> {
    capture_diff_slices_deadline(
        Algorithm::Patience,
        base,
        side,
        Some(Instant::now() + deadline),
    )
    .into_iter()
    .filter_map(|op| match op {
        DiffOp::Equal { .. } => None,
        DiffOp::Delete {
            old_index,
            old_len,
            new_index,
        } => Some(Hunk {
            b0: old_index,
            b1: old_index + old_len,
            x0: new_index,
            x1: new_index,
        }),
        DiffOp::Insert {
            old_index,
            new_index,
            new_len,
        } => Some(Hunk {
            b0: old_index,
            b1: old_index,
            x0: new_index,
            x1: new_index + new_len,
        }),
        DiffOp::Replace {
            old_index,
            old_len,
            new_index,
            new_len,
        } => Some(Hunk {
            b0: old_index,
            b1: old_index + old_len,
            x0: new_index,
            x1: new_index + new_len,
        }),
    })
    .collect()
}

fn touches(h: &Hunk, g0: usize, g1: usize) -> bool {
    (h.b0 < g1 && h.b1 > g0)
        || h.b0 == g0
        || (h.b0 > g0 && h.b0 < g1)
        || (h.b0 == h.b1 && h.b0 == g1 && g0 == g1)
}

/// The side index of base position `p` (a position no hunk of the side strictly contains).
fn side_index(hs: &[Hunk], p: usize) -> usize {
    let mut shift: isize = 0;
    for h in hs {
        if h.b1 <= p && !(h.b0 == h.b1 && h.b0 == p) {
            shift += (h.x1 - h.x0) as isize - (h.b1 - h.b0) as isize;
        } else if h.b0 == h.b1 && h.b0 == p {
            // An insertion at p comes before p's base record.
            continue;
        } else {
            break;
        }
    }
    (p as isize + shift) as usize
}

/// Merges `ours` and `theirs`, both changed from `base`: the merged sequence, or every
/// conflict.
pub fn merge(
    base: &[Fingerprint],
    ours: &[Fingerprint],
    theirs: &[Fingerprint],
    deadline: Duration,
) -> Result<Vec<Pick>, Vec<Conflict>> {
    let ho = hunks(base, ours, deadline);
    let ht = hunks(base, theirs, deadline);
    let (mut i, mut j, mut pos) = (0, 0, 0);
    let mut out = Vec::with_capacity(ours.len().max(theirs.len()));
    let mut conflicts = vec![];
    while i < ho.len() || j < ht.len() {
        let first_is_ours = j >= ht.len() || (i < ho.len() && ho[i].b0 <= ht[j].b0);
        let h = if first_is_ours { ho[i] } else { ht[j] };
        let (mut g0, mut g1) = (h.b0, h.b1);
        let (si, sj) = (i, j);
        if first_is_ours {
            i += 1
        } else {
            j += 1
        }
        loop {
            if i < ho.len() && touches(&ho[i], g0, g1) {
                g0 = g0.min(ho[i].b0);
                g1 = g1.max(ho[i].b1);
                i += 1;
            } else if j < ht.len() && touches(&ht[j], g0, g1) {
                g0 = g0.min(ht[j].b0);
                g1 = g1.max(ht[j].b1);
                j += 1;
            } else {
                break;
            }
        }
        out.extend((pos..g0).map(Pick::Base));
        let (o0, o1) = (
            side_index(&ho, g0),
            side_index(&ho[..i], g1) + extra_insert(&ho[si..i], g1),
        );
        let (t0, t1) = (
            side_index(&ht, g0),
            side_index(&ht[..j], g1) + extra_insert(&ht[sj..j], g1),
        );
        let ours_changed = i > si;
        let theirs_changed = j > sj;
        if ours_changed && !theirs_changed {
            out.extend((o0..o1).map(Pick::Ours));
        } else if theirs_changed && !ours_changed {
            out.extend((t0..t1).map(Pick::Theirs));
        } else if ours[o0..o1] == theirs[t0..t1] {
            out.extend((o0..o1).map(Pick::Ours));
        } else {
            conflicts.push(Conflict {
                base: (g0, g1),
                ours: (o0, o1),
                theirs: (t0, t1),
            });
        }
        pos = g1;
    }
    out.extend((pos..base.len()).map(Pick::Base));
    if conflicts.is_empty() {
        Ok(out)
    } else {
        Err(conflicts)
    }
}

/// Records a group's insertions at its end position add after it.
fn extra_insert(group: &[Hunk], g1: usize) -> usize {
    group
        .iter()
        .filter(|h| h.b0 == h.b1 && h.b0 == g1)
        .map(|h| h.x1 - h.x0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Vec<Fingerprint> {
        s.bytes().map(|b| [b; 16]).collect()
    }

    fn run(b: &str, o: &str, t: &str) -> Result<String, Vec<Conflict>> {
        let (bb, oo, tt) = (f(b), f(o), f(t));
        merge(&bb, &oo, &tt, Duration::from_secs(5)).map(|picks| {
            picks
                .into_iter()
                .map(|p| match p {
                    Pick::Base(i) => bb[i][0] as char,
                    Pick::Ours(i) => oo[i][0] as char,
                    Pick::Theirs(i) => tt[i][0] as char,
                })
                .collect()
        })
    }

    #[test]
    fn separate_changes_merge() {
        assert_eq!(run("abcdef", "aXcdef", "abcdeY").unwrap(), "aXcdeY");
        assert_eq!(run("abcdef", "abdef", "abcdefZ").unwrap(), "abdefZ");
        assert_eq!(run("abcdef", "Pabcdef", "abcQdef").unwrap(), "PabcQdef");
        assert_eq!(run("abc", "abc", "abc").unwrap(), "abc");
        assert_eq!(run("", "x", "").unwrap(), "x");
    }

    #[test]
    fn the_same_change_on_both_sides_is_taken_once() {
        assert_eq!(run("abcdef", "abXdef", "abXdef").unwrap(), "abXdef");
        assert_eq!(run("abcdef", "abXdef", "abXdefY").unwrap(), "abXdefY");
    }

    #[test]
    fn the_same_record_changed_differently_is_a_conflict() {
        let c = run("abcdef", "abXdef", "abYdef").unwrap_err();
        assert_eq!(
            c,
            vec![Conflict {
                base: (2, 3),
                ours: (2, 3),
                theirs: (2, 3)
            }]
        );
        // Deleted on one side, edited on the other.
        assert!(run("abcdef", "abdef", "abYdef").is_err());
        // Different insertions at the same place.
        assert!(run("abcdef", "abcXdef", "abcYdef").is_err());
        // Two conflicts, both reported.
        assert_eq!(
            run("abcdefgh", "aXcdefYh", "aZcdefWh").unwrap_err().len(),
            2
        );
    }

    #[test]
    fn one_sided_and_identical_changes_give_that_side_for_random_sequences() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..300 {
            let len = rnd(12) as usize;
            let base: String = (0..len).map(|_| (b'a' + rnd(6) as u8) as char).collect();
            let mut x: Vec<char> = base.chars().collect();
            for _ in 0..rnd(4) {
                match rnd(3) {
                    0 if !x.is_empty() => {
                        let i = rnd(x.len() as u64) as usize;
                        x.remove(i);
                    }
                    1 => {
                        let i = rnd(x.len() as u64 + 1) as usize;
                        x.insert(i, (b'A' + rnd(6) as u8) as char);
                    }
                    _ if !x.is_empty() => {
                        let i = rnd(x.len() as u64) as usize;
                        x[i] = (b'A' + rnd(6) as u8) as char;
                    }
                    _ => {}
                }
            }
            let x: String = x.into_iter().collect();
            assert_eq!(run(&base, &x, &base).unwrap(), x, "ours {base} -> {x}");
            assert_eq!(run(&base, &base, &x).unwrap(), x, "theirs {base} -> {x}");
            assert_eq!(run(&base, &x, &x).unwrap(), x, "both {base} -> {x}");
        }
    }
}
