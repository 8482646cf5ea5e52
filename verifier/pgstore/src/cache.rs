//! Per-connection caches that cut the writer's round trips: prepared statements (a string
//! query is a Parse round trip plus an Execute round trip; a prepared one is only the
//! Execute) and the audit log's Merkle frontier (so an append and its checkpoint read no
//! `audit_node` rows while no other replica appended in between).

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{GenericClient, Row, Statement};
use vigil_audit::AuditError;
use vigil_audit::merkle::{self, Hash, PerfectNodes, node_hash};

use crate::PgStoreError;

/// More distinct statements than any code path here uses; a bound all the same, so a caller
/// running ever-new SQL text through [`Conn`] cannot grow the server's memory without end.
const MAX_STATEMENTS: usize = 256;

/// Statements prepared on one connection, by SQL text. Prepared statements belong to the
/// session, not to a transaction: one prepared inside a transaction that rolls back stays
/// valid, and statements prepared on the `Client` run inside its transactions.
#[derive(Default)]
pub(crate) struct Statements {
    map: HashMap<String, Statement>,
}

/// A client (connection or transaction) with its connection's statement cache: the same
/// four calls as [`GenericClient`], by SQL text, prepared once per connection.
pub(crate) struct Conn<'c, C> {
    pub(crate) client: &'c mut C,
    pub(crate) statements: &'c mut Statements,
}

impl<C: GenericClient> Conn<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.map.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        if self.statements.map.len() >= MAX_STATEMENTS {
            self.statements.map.clear();
        }
        self.statements
            .map
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params)
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }

    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params)
    }
}

/// The right edge of the audit tree of `size` entries: the perfect subtrees its leaves split
/// into, largest first (one per set bit of `size`). Enough to append (each completed subtree
/// pairs with the last of them) and to compute the root, without reading `audit_node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The `(level, index)` of each subtree of the frontier of a tree of `size` entries.
    pub(crate) fn positions(size: u64) -> Vec<(u32, u64)> {
        let mut start = 0u64;
        (0..64u32)
            .rev()
            .filter(|level| size & (1u64 << level) != 0)
            .map(|level| {
                let position = (level, start >> level);
                start += 1u64 << level;
                position
            })
            .collect()
    }

    /// The frontier from its subtrees' hashes in [`Frontier::positions`] order.
    pub(crate) fn new(size: u64, nodes: Vec<Hash>) -> Result<Self, PgStoreError> {
        if nodes.len() != size.count_ones() as usize {
            return Err(PgStoreError::Invalid(format!(
                "an audit frontier of size {size} needs {} nodes, not {}",
                size.count_ones(),
                nodes.len()
            )));
        }
        Ok(Frontier { size, nodes })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns the `(level, index, hash)` rows `audit_node` gains: the leaf
    /// and every perfect subtree it completes, as `audit::append` stores them.
    pub(crate) fn push(&mut self, leaf: Hash) -> Result<Vec<(u32, u64, Hash)>, PgStoreError> {
        let (mut level, mut idx, mut hash) = (0u32, self.size, leaf);
        let mut rows = vec![(level, idx, hash)];
        while idx % 2 == 1 {
            let left = self.nodes.pop().ok_or(AuditError::NodeMissing {
                level,
                index: idx - 1,
            })?;
            hash = node_hash(&left, &hash);
            level += 1;
            idx /= 2;
            rows.push((level, idx, hash));
        }
        self.nodes.push(hash);
        self.size += 1;
        Ok(rows)
    }

    /// The tree head, by vigil-audit's own recursion over the frontier's subtrees.
    pub(crate) fn root(&self) -> Result<Hash, PgStoreError> {
        merkle::range_hash(&mut FrontierNodes(self), 0, self.size)
    }
}

struct FrontierNodes<'f>(&'f Frontier);

impl PerfectNodes for FrontierNodes<'_> {
    type Error = PgStoreError;
    fn perfect_node(&mut self, level: u32, index: u64) -> Result<Hash, PgStoreError> {
        Frontier::positions(self.0.size)
            .iter()
            .zip(&self.0.nodes)
            .find(|(position, _)| **position == (level, index))
            .map(|(_, hash)| *hash)
            .ok_or_else(|| AuditError::NodeMissing { level, index }.into())
    }
}

/// What a transaction knows of the audit log, to skip statements that would only repeat it.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogState {
    /// This transaction (at this savepoint level) holds the log lock.
    pub(crate) locked: bool,
    /// The last frontier this connection knew: committed by it, or read under the lock. A
    /// true state of the (append-only) log at its size, though maybe not the latest.
    pub(crate) frontier: Option<Frontier>,
    /// `frontier` is the log as this transaction sees it now: checked under the lock, and
    /// only this `PgTx` appended since (no raw access to the transaction was handed out).
    pub(crate) current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_audit::merkle::{MemoryTree, leaf_hash};

    #[test]
    fn the_frontier_appends_and_roots_as_the_full_tree_does() {
        let mut tree = MemoryTree::new();
        let mut frontier = Frontier::new(0, Vec::new()).unwrap();
        for i in 0..70u64 {
            let leaf = leaf_hash(&i.to_be_bytes());
            let rows = frontier.push(leaf).unwrap();
            tree.push(leaf);
            for (level, idx, hash) in rows {
                assert_eq!(tree.level(level as usize)[idx as usize], hash);
            }
            assert_eq!(frontier.root().unwrap(), tree.root(i + 1).unwrap());
            let positions = Frontier::positions(i + 1);
            let nodes = positions
                .iter()
                .map(|&(level, idx)| tree.level(level as usize)[idx as usize])
                .collect();
            assert_eq!(Frontier::new(i + 1, nodes).unwrap(), frontier);
        }
    }
}
