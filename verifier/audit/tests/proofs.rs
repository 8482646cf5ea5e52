//! Proof generation and verification against a naive, textbook transcription
//! of RFC 6962 §2.1 over slices, for every (index, size) and (first, second)
//! up to 200 leaves, through both the in-memory tree and the SQLite store.

use rusqlite::Connection;
use serde_json::json;
use vigil_audit::merkle::{self, MemoryTree, empty_root};
use vigil_audit::{
    AuditEntry, Hash, ProofError, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};

fn k_split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Textbook RFC 6962 recursion over index ranges of `leaves`; MTH results
/// are memoized only so the exhaustive tests stay fast in debug builds.
struct Naive<'a> {
    leaves: &'a [Hash],
    memo: std::collections::HashMap<(usize, usize), Hash>,
}

impl<'a> Naive<'a> {
    fn new(leaves: &'a [Hash]) -> Self {
        Naive {
            leaves,
            memo: Default::default(),
        }
    }

    fn mth(&mut self, a: usize, b: usize) -> Hash {
        if let Some(h) = self.memo.get(&(a, b)) {
            return *h;
        }
        let h = match b - a {
            0 => empty_root(),
            1 => self.leaves[a],
            n => {
                let k = k_split(n);
                let left = self.mth(a, a + k);
                let right = self.mth(a + k, b);
                node_hash(&left, &right)
            }
        };
        self.memo.insert((a, b), h);
        h
    }

    fn path(&mut self, m: usize, a: usize, b: usize) -> Vec<Hash> {
        let n = b - a;
        if n <= 1 {
            return vec![];
        }
        let k = k_split(n);
        if m < k {
            let mut p = self.path(m, a, a + k);
            p.push(self.mth(a + k, b));
            p
        } else {
            let mut p = self.path(m - k, a + k, b);
            p.push(self.mth(a, a + k));
            p
        }
    }

    fn subproof(&mut self, m: usize, a: usize, b: usize, whole: bool) -> Vec<Hash> {
        let n = b - a;
        if m == n {
            return if whole { vec![] } else { vec![self.mth(a, b)] };
        }
        let k = k_split(n);
        if m <= k {
            let mut p = self.subproof(m, a, a + k, whole);
            p.push(self.mth(a + k, b));
            p
        } else {
            let mut p = self.subproof(m - k, a + k, b, false);
            p.push(self.mth(a, a + k));
            p
        }
    }

    fn consistency(&mut self, m: usize, n: usize) -> Vec<Hash> {
        if m == 0 || m == n {
            vec![]
        } else {
            self.subproof(m, 0, n, true)
        }
    }
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

fn flipped(h: &Hash) -> Hash {
    let mut x = *h;
    x[7] ^= 0x40;
    x
}

#[test]
fn known_answers() {
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // RFC 9162 / CT: the leaf hash of the empty entry is SHA-256(0x00).
    assert_eq!(
        hex::encode(leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
}

#[test]
fn memory_tree_matches_naive_for_every_size_index_and_pair_up_to_200() {
    let all = leaves(200);
    let mut naive = Naive::new(&all);
    let mut tree = MemoryTree::new();
    for (n, leaf) in (1..=200).zip(all.iter()) {
        tree.push(*leaf);
        let prefix = &all[..n];
        let root = naive.mth(0, n);
        assert_eq!(tree.root(n as u64).unwrap(), root, "root n={n}");
        for (i, leaf) in prefix.iter().enumerate() {
            let path = merkle::inclusion_path(&mut tree, i as u64, n as u64).unwrap();
            assert_eq!(path, naive.path(i, 0, n), "inclusion i={i} n={n}");
            verify_inclusion(i as u64, n as u64, leaf, &path, &root).unwrap();
            // Each of these must fail.
            assert!(verify_inclusion(i as u64, n as u64, &flipped(leaf), &path, &root).is_err());
            assert!(verify_inclusion(i as u64, n as u64, leaf, &path, &flipped(&root)).is_err());
            if let Some(last) = path.last() {
                let mut bad = path.clone();
                *bad.last_mut().unwrap() = flipped(last);
                assert!(verify_inclusion(i as u64, n as u64, leaf, &bad, &root).is_err());
                assert!(
                    verify_inclusion(i as u64, n as u64, leaf, &path[..path.len() - 1], &root)
                        .is_err()
                );
                if n > 1 {
                    let other = if i == 0 { 1 } else { i - 1 };
                    assert!(verify_inclusion(other as u64, n as u64, leaf, &path, &root).is_err());
                }
            }
        }
        for m in 0..=n {
            let proof = merkle::consistency_path(&mut tree, m as u64, n as u64).unwrap();
            assert_eq!(proof, naive.consistency(m, n), "consistency m={m} n={n}");
            let old_root = naive.mth(0, m);
            verify_consistency(m as u64, n as u64, &old_root, &root, &proof).unwrap();
            if m > 0 && m < n {
                assert!(
                    verify_consistency(m as u64, n as u64, &flipped(&old_root), &root, &proof)
                        .is_err()
                );
                assert!(
                    verify_consistency(m as u64, n as u64, &old_root, &flipped(&root), &proof)
                        .is_err()
                );
                let mut bad = proof.clone();
                bad[0] = flipped(&bad[0]);
                assert!(verify_consistency(m as u64, n as u64, &old_root, &root, &bad).is_err());
                let mut longer = proof.clone();
                longer.push(root);
                assert!(verify_consistency(m as u64, n as u64, &old_root, &root, &longer).is_err());
            }
        }
    }
}

#[test]
fn store_proofs_match_naive_for_every_pair_up_to_200() {
    let conn = Connection::open_in_memory().unwrap();
    vigil_audit::migrate(&conn).unwrap();
    let mut encoded = Vec::new();
    for i in 0..200 {
        let e = AuditEntry {
            kind: "verdict".into(),
            time: i,
            subject: format!("node-{i}"),
            body: json!({"i": i}),
        };
        encoded.push(leaf_hash(&e.encode().unwrap()));
        vigil_audit::append(&conn, &e).unwrap();
    }
    let mut naive = Naive::new(&encoded);
    for n in 1..=200usize {
        let prefix = &encoded[..n];
        let root = vigil_audit::root_hash(&conn, n as u64).unwrap();
        assert_eq!(root, naive.mth(0, n));
        for (i, leaf) in prefix.iter().enumerate() {
            let proof = vigil_audit::inclusion_proof(&conn, i as u64, n as u64).unwrap();
            assert_eq!(
                proof.path,
                naive.path(i, 0, n),
                "store inclusion i={i} n={n}"
            );
            assert_eq!(&proof.leaf_hash, leaf);
            proof.verify(&root).unwrap();
        }
        for m in 0..=n {
            let proof = vigil_audit::consistency_proof(&conn, m as u64, n as u64).unwrap();
            assert_eq!(
                proof.path,
                naive.consistency(m, n),
                "store consistency m={m} n={n}"
            );
            proof.verify(&naive.mth(0, m), &root).unwrap();
        }
    }
    assert!(matches!(
        vigil_audit::inclusion_proof(&conn, 5, 201),
        Err(vigil_audit::AuditError::SizeBeyondLog {
            requested: 201,
            size: 200
        })
    ));
    assert!(matches!(
        vigil_audit::inclusion_proof(&conn, 7, 7),
        Err(vigil_audit::AuditError::IndexOutOfRange { index: 7, size: 7 })
    ));
    assert!(matches!(
        vigil_audit::consistency_proof(&conn, 8, 7),
        Err(vigil_audit::AuditError::SizesOutOfOrder {
            first: 8,
            second: 7
        })
    ));
}

/// The worked example of RFC 6962 §2.1.3: seven leaves d0..d6.
#[test]
fn rfc6962_reference_shapes() {
    let d: Vec<Hash> = (0..7).map(|i| leaf_hash(&[i as u8])).collect();
    let (a, b, c, dd, e, f, d6) = (d[0], d[1], d[2], d[3], d[4], d[5], d[6]);
    let g = node_hash(&a, &b);
    let h = node_hash(&c, &dd);
    let i = node_hash(&e, &f);
    let j = d6;
    let k = node_hash(&g, &h);
    let l = node_hash(&i, &j);
    let root = node_hash(&k, &l);
    let mut tree = MemoryTree::new();
    d.iter().for_each(|x| tree.push(*x));
    assert_eq!(tree.root(7).unwrap(), root);

    let path = |t: &mut MemoryTree, m| merkle::inclusion_path(t, m, 7).unwrap();
    assert_eq!(path(&mut tree, 0), vec![b, h, l]);
    assert_eq!(path(&mut tree, 3), vec![c, g, l]);
    assert_eq!(path(&mut tree, 4), vec![f, j, k]);
    assert_eq!(path(&mut tree, 6), vec![i, k]);

    let cons = |t: &mut MemoryTree, m| merkle::consistency_path(t, m, 7).unwrap();
    assert_eq!(cons(&mut tree, 3), vec![c, dd, g, l]);
    assert_eq!(cons(&mut tree, 4), vec![l]);
    assert_eq!(cons(&mut tree, 6), vec![i, j, k]);
    let hash0 = node_hash(&g, &c);
    verify_consistency(3, 7, &hash0, &root, &[c, dd, g, l]).unwrap();
    verify_consistency(4, 7, &k, &root, &[l]).unwrap();
    verify_consistency(6, 7, &node_hash(&k, &i), &root, &[i, j, k]).unwrap();
}

#[test]
fn verifier_edge_cases_are_typed_errors() {
    let r = leaf_hash(b"x");
    assert_eq!(
        verify_inclusion(0, 0, &r, &[], &r),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    verify_inclusion(0, 1, &r, &[], &r).unwrap();
    assert_eq!(
        verify_inclusion(0, 1, &r, &[r], &r),
        Err(ProofError::WrongLength)
    );
    let long = vec![r; 65];
    assert_eq!(
        verify_inclusion(0, 2, &r, &long, &r),
        Err(ProofError::TooLong { len: 65 })
    );
    assert_eq!(
        verify_consistency(3, 2, &r, &r, &[]),
        Err(ProofError::SizesOutOfOrder {
            first: 3,
            second: 2
        })
    );
    verify_consistency(0, 5, &empty_root(), &r, &[]).unwrap();
    assert_eq!(
        verify_consistency(0, 5, &r, &r, &[]),
        Err(ProofError::TrivialCaseMismatch)
    );
    verify_consistency(5, 5, &r, &r, &[]).unwrap();
    assert_eq!(
        verify_consistency(5, 5, &r, &empty_root(), &[]),
        Err(ProofError::TrivialCaseMismatch)
    );
    assert_eq!(
        verify_consistency(5, 5, &r, &r, &[r]),
        Err(ProofError::TrivialCaseMismatch)
    );
    assert_eq!(
        verify_consistency(3, 5, &r, &r, &[]),
        Err(ProofError::WrongLength)
    );
}
