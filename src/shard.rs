//! `--shard i/n`: the i-th (0-based) of n deterministic slices of a run's item grid, so that a
//! grid can be spread over cluster nodes and the outputs combined with `hofbench merge`.
//!
//! An item (a country × prompt pair, both option orders) belongs to shard `k mod n`, where `k`
//! is its position in the canonical grid order (dimensions in their fixed order, prompts in
//! prompt-set order, countries in the built-in table's order). The assignment depends only on
//! the grid, never on batch settings, devices or what an earlier, killed run finished, and
//! shard sizes differ by at most one item. Round robin over a grid whose prompts are the outer
//! loop also spreads long and short prompts evenly, so shards take about the same time.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether the item at `grid_position` of the canonical grid order is this shard's.
    pub fn contains(&self, grid_position: usize) -> bool {
        grid_position % self.count == self.index
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
                "--shard {text:?}: expected i/n with 0 <= i < n, e.g. 0/4 (shards are 0-based)"
            ))
        };
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
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
