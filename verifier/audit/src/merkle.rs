//! RFC 9162 (RFC 6962) Merkle tree hashing, proof generation and *pure*
//! proof verification.
//!
//! Generation works over any [`PerfectNodes`] source: the SQLite store keeps
//! the hash of every complete perfect subtree keyed by `(level, index)` (level
//! 0 = leaves; the node at `(level, i)` covers leaves `i·2^level ..
//! (i+1)·2^level`), so any RFC subtree hash needs O(log n) lookups and no
//! recomputation. Verification needs nothing but hashes.

use ring::digest::{Context, SHA256};
use serde::Serialize;

/// A SHA-256 output.
pub type Hash = [u8; 32];

/// Longest proof accepted by the verifiers: a tree of 2^64 leaves needs 64.
pub const MAX_PROOF_HASHES: usize = 64;

/// RFC 9162 §2.1.1 leaf hash: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(entry);
    to_hash(ctx)
}

/// RFC 9162 §2.1.1 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x01]);
    ctx.update(left);
    ctx.update(right);
    to_hash(ctx)
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    to_hash(Context::new(&SHA256))
}

pub(crate) fn sha256(data: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(data);
    to_hash(ctx)
}

fn to_hash(ctx: Context) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Largest power of two strictly smaller than `n` (`n >= 2`): the RFC split point.
pub(crate) fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// A source of perfect-subtree hashes (store or memory).
pub trait PerfectNodes {
    type Error;
    /// Hash of the perfect subtree at `level` covering leaves
    /// `index·2^level .. (index+1)·2^level`.
    fn perfect_node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// RFC 9162 `MTH(D[start:end])` for a range produced by the RFC's recursion.
pub fn range_hash<S: PerfectNodes>(src: &mut S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let size = end.saturating_sub(start);
    if size == 0 {
        return Ok(empty_root());
    }
    if size.is_power_of_two() && start.is_multiple_of(size) {
        let level = size.trailing_zeros();
        return src.perfect_node(level, start >> level);
    }
    let k = split_point(size);
    let left = range_hash(src, start, start + k)?;
    let right = range_hash(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// RFC 9162 §2.1.3.1 inclusion path of leaf `index` in the tree of the first
/// `size` leaves. Caller guarantees `index < size`.
pub fn inclusion_path<S: PerfectNodes>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut path = Vec::new();
    path_rec(src, index, 0, size, &mut path)?;
    Ok(path)
}

fn path_rec<S: PerfectNodes>(
    src: &mut S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end.saturating_sub(start);
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path_rec(src, m, start, start + k, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        path_rec(src, m - k, start + k, end, out)?;
        out.push(range_hash(src, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1 consistency proof between the trees of the first
/// `first` and `second` leaves. Caller guarantees `first <= second`. Empty
/// when `first == 0` or `first == second`.
pub fn consistency_path<S: PerfectNodes>(
    src: &mut S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut path = Vec::new();
    if first > 0 && first < second {
        subproof_rec(src, first, 0, second, true, &mut path)?;
    }
    Ok(path)
}

fn subproof_rec<S: PerfectNodes>(
    src: &mut S,
    m: u64,
    start: u64,
    end: u64,
    whole_old_tree: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end.saturating_sub(start);
    if m == n {
        if !whole_old_tree {
            out.push(range_hash(src, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof_rec(src, m, start, start + k, whole_old_tree, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        subproof_rec(src, m - k, start + k, end, false, out)?;
        out.push(range_hash(src, start, start + k)?);
    }
    Ok(())
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("proof has {len} hashes, more than the {MAX_PROOF_HASHES} any tree needs")]
    TooLong { len: usize },
    #[error("proof has the wrong number of hashes for these sizes")]
    WrongLength,
    #[error("proof does not lead to the expected root hash")]
    RootMismatch,
    #[error("proof does not lead to the expected first (older) root hash")]
    FirstRootMismatch,
    #[error("first tree size {first} exceeds second tree size {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("equal or empty first tree: proof must be empty and roots must match")]
    TrivialCaseMismatch,
}

/// RFC 9162 §2.1.3.2: does `proof` show leaf `leaf` at `index` is in the
/// tree of `size` leaves with root `root`?
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::TooLong { len: proof.len() });
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
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

/// RFC 9162 §2.1.4.2: does `proof` show the tree of `first` leaves (root
/// `first_root`) is a prefix of the tree of `second` leaves (root
/// `second_root`)? `first == 0` (empty tree) and `first == second` need an
/// empty proof (and, for equal sizes, equal roots).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::TooLong { len: proof.len() });
    }
    if first == 0 {
        return if proof.is_empty() && first_root == &empty_root() {
            Ok(())
        } else {
            Err(ProofError::TrivialCaseMismatch)
        };
    }
    if first == second {
        return if proof.is_empty() && first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::TrivialCaseMismatch)
        };
    }
    let mut hashes: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        hashes.push(first_root);
    }
    hashes.extend(proof.iter());
    let mut rest = hashes.into_iter();
    let seed = rest.next().ok_or(ProofError::WrongLength)?;
    let mut f_n = first - 1;
    let mut s_n = second - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let mut fr = *seed;
    let mut sr = *seed;
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
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
    if &fr != first_root {
        return Err(ProofError::FirstRootMismatch);
    }
    if &sr != second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// An inclusion proof as handed to auditors and relying parties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    #[serde(serialize_with = "crate::hexser::hash")]
    pub leaf_hash: Hash,
    #[serde(serialize_with = "crate::hexser::hashes")]
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks the proof against a root the caller trusts (e.g. from a verified checkpoint).
    pub fn verify(&self, root: &Hash) -> Result<(), ProofError> {
        verify_inclusion(
            self.leaf_index,
            self.tree_size,
            &self.leaf_hash,
            &self.path,
            root,
        )
    }
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyProof {
    pub first_size: u64,
    pub second_size: u64,
    #[serde(serialize_with = "crate::hexser::hashes")]
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks the proof against two roots the caller trusts.
    pub fn verify(&self, first_root: &Hash, second_root: &Hash) -> Result<(), ProofError> {
        verify_consistency(
            self.first_size,
            self.second_size,
            first_root,
            second_root,
            &self.path,
        )
    }
}

/// All perfect-subtree hashes of a log held in memory; used to rebuild the
/// tree during full verification and bundle checks (about 64 bytes a leaf).
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash, completing any perfect subtrees it closes.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                return;
            };
            row.push(hash);
            if row.len() % 2 == 1 {
                return;
            }
            let pair = row.len().checked_sub(2).and_then(|i| row.get(i..));
            let Some([left, right]) = pair else { return };
            hash = node_hash(left, right);
            level += 1;
        }
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The perfect-subtree hashes at `level`, left to right.
    pub fn level(&self, level: usize) -> &[Hash] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    pub fn height(&self) -> usize {
        self.levels.len()
    }

    /// Root of the tree of the first `size` leaves (`size <= self.size()`).
    pub fn root(&mut self, size: u64) -> Result<Hash, MissingNode> {
        range_hash(self, 0, size)
    }
}

/// A perfect subtree was asked for that the memory tree does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no tree node at level {level} index {index}")]
pub struct MissingNode {
    pub level: u32,
    pub index: u64,
}

impl PerfectNodes for MemoryTree {
    type Error = MissingNode;
    fn perfect_node(&mut self, level: u32, index: u64) -> Result<Hash, MissingNode> {
        self.levels
            .get(level as usize)
            .and_then(|row| usize::try_from(index).ok().and_then(|i| row.get(i)))
            .copied()
            .ok_or(MissingNode { level, index })
    }
}
