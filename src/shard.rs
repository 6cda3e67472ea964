//! `--shard i/n`: the i-th (0-based) of n deterministic slices of a run's item grid, so that a
//! grid can be spread over cluster nodes and the outputs combined with `hofbench merge`.
//!
//! A logits run cuts shards from whole batches: the whole grid (in its canonical order:
//! dimensions in their fixed order, prompts in prompt-set order, countries in the built-in
//! table's order) is batched as an unsharded run batches it (`run::batch_work`), and batch `b`
//! belongs to shard `b mod n`. Every batch is then computed with the same neighbours and
//! padding whichever shard runs it, so merged shards equal the unsharded run bit for bit at any
//! batch size (a row's probabilities depend on its batch at the float-rounding level). The
//! assignment depends only on the grid and the batch settings (which shards must share), never
//! on devices or what an earlier, killed run finished. Batches are sorted by length, so round
//! robin spreads long and short ones evenly and shards take about the same time.
//!
//! A generate run, whose replies do not depend on their batch, cuts shards by item: item `k`
//! of the canonical grid belongs to shard `k mod n`, and shard sizes differ by at most one item.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Most shards a grid may be cut into: `merge` lists the missing ones, so a manifest's count
/// must not be able to ask for 2^64 of them.
pub const MAX_SHARDS: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ShardFields")]
pub struct Shard {
    /// 0-based.
    pub index: usize,
    pub count: usize,
}

/// A shard as a manifest stores it, checked before it becomes a [`Shard`]: a count of 0
/// (which would divide by zero) or an index beyond it is a corrupt manifest, not a panic.
#[derive(Deserialize)]
struct ShardFields {
    index: usize,
    count: usize,
}

impl TryFrom<ShardFields> for Shard {
    type Error = String;

    fn try_from(s: ShardFields) -> std::result::Result<Self, String> {
        if s.count == 0 || s.index >= s.count || s.count > MAX_SHARDS {
            return Err(format!(
                "shard {{index: {}, count: {}}} is not one of count shards (0 <= index < count \
                 <= {MAX_SHARDS})",
                s.index, s.count
            ));
        }
        Ok(Shard {
            index: s.index,
            count: s.count,
        })
    }
}

impl Shard {
    /// Whether the item at `grid_position` of the canonical grid order is this shard's (generate
    /// runs).
    pub fn contains(&self, grid_position: usize) -> bool {
        grid_position % self.count == self.index
    }

    /// Whether batch `batch_index` of the whole grid's batches is this shard's (logits runs).
    pub fn contains_batch(&self, batch_index: usize) -> bool {
        batch_index % self.count == self.index
    }

    /// How many of a grid's `grid_items` fall in this shard.
    pub fn len_of(&self, grid_items: usize) -> usize {
        grid_items / self.count + usize::from(self.index < grid_items % self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Usage(format!(
                "--shard {text:?}: expected i/n with 0 <= i < n <= {MAX_SHARDS}, e.g. 0/4 (shards are 0-based)"
            ))
        };
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count || count > MAX_SHARDS {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        assert_eq!("0/1".parse::<Shard>().unwrap().to_string(), "0/1");
        for bad in ["4/4", "1/0", "1", "a/2", "-1/2", "1/2/3"] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains("0-based"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_manifest_shard_of_count_zero_is_an_error_not_a_panic() {
        for bad in [
            r#"{"index":0,"count":0}"#,
            r#"{"index":3,"count":2}"#,
            r#"{"index":0,"count":18446744073709551615}"#,
        ] {
            let err = serde_json::from_str::<Shard>(bad).unwrap_err().to_string();
            assert!(err.contains("0 <= index < count"), "{bad}: {err}");
        }
        let ok: Shard = serde_json::from_str(r#"{"index":1,"count":2}"#).unwrap();
        assert_eq!(ok, Shard { index: 1, count: 2 });
    }

    #[test]
    fn shards_partition_the_grid_evenly() {
        for grid in [0, 1, 7, 540, 9000] {
            for count in [1, 2, 3, 7, 16] {
                let mut seen = vec![0; grid];
                let mut sizes = Vec::new();
                for index in 0..count {
                    let shard = Shard { index, count };
                    let mine: Vec<usize> = (0..grid).filter(|&k| shard.contains(k)).collect();
                    assert_eq!(mine.len(), shard.len_of(grid));
                    for k in mine {
                        seen[k] += 1;
                    }
                    sizes.push(shard.len_of(grid));
                }
                assert!(seen.iter().all(|&s| s == 1), "grid {grid} / {count}");
                let (lo, hi) = (sizes.iter().min(), sizes.iter().max());
                assert!(hi.unwrap() - lo.unwrap() <= 1);
            }
        }
    }
}
