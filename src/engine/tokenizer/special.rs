//! Special tokens found in text before it is tokenized, the way llama.cpp's
//! `tokenizer_st_partition` does.

/// A piece of text to encode, or a special token found in it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// Finds special tokens in text the way llama.cpp's `tokenizer_st_partition` does: tokens are
/// taken longest text first (ties by id), each at all its leftmost non-overlapping occurrences
/// in what is still plain text.
pub(super) struct SpecialMatcher {
    /// Byte trie of the special token texts; node 0 is the root.
    nodes: Vec<TrieNode>,
    count: usize,
}

#[derive(Default)]
struct TrieNode {
    /// Children sorted by byte.
    children: Vec<(u8, u32)>,
    /// The token whose text ends here: (rank in llama.cpp's processing order, id).
    token: Option<(u32, u32)>,
}

impl SpecialMatcher {
    pub(super) fn new(pieces: &[String], ids: &[u32]) -> Self {
        let mut order = ids.to_vec();
        order.sort_by_key(|&id| (std::cmp::Reverse(pieces[id as usize].len()), id));
        let mut nodes = vec![TrieNode::default()];
        for (rank, &id) in order.iter().enumerate() {
            let mut node = 0usize;
            for &b in pieces[id as usize].as_bytes() {
                node = match nodes[node].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(k) => nodes[node].children[k].1 as usize,
                    Err(k) => {
                        let next = nodes.len();
                        nodes.push(TrieNode::default());
                        nodes[node].children.insert(k, (b, next as u32));
                        next
                    }
                };
            }
            nodes[node].token = Some((rank as u32, id));
        }
        SpecialMatcher {
            nodes,
            count: ids.len(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.count
    }

    pub(super) fn partition<'t>(&self, text: &'t str) -> Vec<Fragment<'t>> {
        let bytes = text.as_bytes();
        // Every occurrence of every special token: (rank, start, len, id).
        let mut found: Vec<(u32, usize, usize, u32)> = Vec::new();
        if self.nodes.len() > 1 {
            for start in 0..bytes.len() {
                let mut node = 0usize;
                for (k, b) in bytes[start..].iter().enumerate() {
                    let children = &self.nodes[node].children;
                    match children.binary_search_by_key(b, |c| c.0) {
                        Ok(i) => node = children[i].1 as usize,
                        Err(_) => break,
                    }
                    if let Some((rank, id)) = self.nodes[node].token {
                        found.push((rank, start, k + 1, id));
                    }
                }
            }
        }
        if found.is_empty() {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![Fragment::Text(text)]
            };
        }
        found.sort_unstable();
        let mut taken = vec![false; bytes.len()];
        let mut chosen: Vec<(usize, usize, u32)> = Vec::new();
        for (_, start, len, id) in found {
            let span = &mut taken[start..start + len];
            if span.iter().all(|t| !t) {
                span.iter_mut().for_each(|t| *t = true);
                chosen.push((start, len, id));
            }
        }
        chosen.sort_unstable();
        let mut out = Vec::with_capacity(chosen.len() * 2 + 1);
        let mut pos = 0;
        for (start, len, id) in chosen {
            if start > pos {
                out.push(Fragment::Text(&text[pos..start]));
            }
            out.push(Fragment::Token(id));
            pos = start + len;
        }
        if pos < text.len() {
            out.push(Fragment::Text(&text[pos..]));
        }
        out
    }
}
